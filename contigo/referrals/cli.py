"""Commands of the facility directory (``contigo facility …``), run on the central server: add or
change an outside facility (sent to every site's laptops on their next pull), list the
directory, and send the whole directory to a site added later."""

from __future__ import annotations

import click
from sqlalchemy import select

from contigo.clikit import app_for, fail
from contigo.db import session_scope
from contigo.errors import ContigoError, ValidationFailed
from contigo.referrals.directory import facilities, publish, save_facility, serves
from contigo.referrals.models import FACILITY_KINDS
from contigo.sites.models import Site


@click.group("facility")
def facility_group() -> None:
    """The directory of outside facilities referrals go to (central server)."""


@facility_group.command("add")
@click.option("--code", required=True, help="A short unique code, e.g. CO-HOSP-APARTADO.")
@click.option("--country", required=True, help="Two letters: CO, EC, PE …")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(FACILITY_KINDS), required=True)
@click.option("--inpatient/--no-inpatient", default=False, help="Admits complicated SAM.")
@click.option("--place", default="", help="Town or municipality.")
@click.option(
    "--serves", "served", default="", help="Site codes it is nearest to, comma-separated."
)
@click.option("--priority", default=100, show_default=True, type=int, help="Lower comes first.")
@click.option("--inactive", is_flag=True, help="Withdraw it from the directory.")
@click.pass_context
def facility_add_command(
    ctx: click.Context,
    code: str,
    country: str,
    name: str,
    kind: str,
    inpatient: bool,
    place: str,
    served: str,
    priority: int,
    inactive: bool,
) -> None:
    """Add or change a facility; every site's laptops receive it on their next pull."""
    app = app_for(ctx, CONTIGO_MODE="central")
    desc = {
        "code": code,
        "country": country.upper(),
        "name": name,
        "kind": kind,
        "inpatient": inpatient,
        "place": place,
        "serves": [c.strip() for c in served.split(",") if c.strip()],
        "priority": priority,
        "active": not inactive,
    }
    try:
        with app.app_context(), session_scope(app) as s:
            facility = save_facility(s, desc, actor_id=None)
            click.echo(f"Facility {facility.code} saved ({facility.country}).")
    except ValidationFailed as exc:
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
        raise click.ClickException(fields) from exc
    except ContigoError as exc:
        fail(exc)


@facility_group.command("list")
@click.option("--country", default=None)
@click.pass_context
def facility_list_command(ctx: click.Context, country: str | None) -> None:
    """List the directory: code, country, kind, inpatient, the sites it serves, name."""
    app = app_for(ctx)
    with app.app_context(), session_scope(app) as s:
        rows = facilities(s, country.upper() if country else None, active=False)
        for f in rows:
            flag = "inpatient" if f.inpatient else "-"
            state = "" if f.active else " (inactive)"
            click.echo(
                f"{f.code:<24} {f.country} {f.kind:<20} {flag:<9} "
                f"{','.join(serves(f)) or '-':<20} {f.name}{state}"
            )
        click.echo(f"{len(rows)} facilities.", err=True)


@facility_group.command("send")
@click.option("--site", "site_code", required=True, help="The code of a site added later.")
@click.pass_context
def facility_send_command(ctx: click.Context, site_code: str) -> None:
    """Send the whole directory to one site's laptops (a site created after the facilities)."""
    app = app_for(ctx, CONTIGO_MODE="central")
    with app.app_context(), session_scope(app) as s:
        site_id = s.scalar(select(Site.id).where(Site.code == site_code))
        if site_id is None:
            raise click.ClickException(f"unknown site {site_code}")
        written = publish(s, facilities(s, active=False), [site_id])
    click.echo(f"{written} directory entries sent to {site_code}.")
