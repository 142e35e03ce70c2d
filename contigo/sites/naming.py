"""Sites as people know them: by name, with the code only as a detail (issue 15.5). Transfers,
grants and referrals store a site's code; pages show its name."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy import select

from contigo import db
from contigo.sites.models import Site


def names_by_code() -> dict[str, str]:
    """Every site's name by code, read once per request (a handful of sites)."""
    cached: dict[str, str] | None = g.get("site_names_by_code")
    if cached is None:
        cached = {code: name for code, name in db.session().execute(select(Site.code, Site.name))}
        g.site_names_by_code = cached
    return cached


def site_name(code: str | None) -> str:
    """The name of the site coded ``code`` (the code itself for a site this database does not
    know yet)."""
    if not code:
        return ""
    return names_by_code().get(code, code)


def install(app: Flask) -> None:
    """Give templates ``site_name(code)``."""
    app.jinja_env.globals["site_name"] = site_name
