"""The audit trail's command: ``contigo audit verify``."""

from __future__ import annotations

import click

from contigo.clikit import app_for, fail, read_secret
from contigo.errors import ContigoError


@click.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--as", "as_user", default=None, help="A user whose password unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def audit_verify_command(
    ctx: click.Context, as_user: str | None, as_password_file: str | None
) -> None:
    """Check the audit trail's hash chain; name the first broken entry and exit 1 if it is not
    intact. On central it needs no password (the chain holds ids and codes, no secret); a
    laptop's database is encrypted, so there a user's password (``--as``) opens it."""
    from contigo.audit.services import verify
    from contigo.db import session_scope, uses_cipher
    from contigo.i18n import translate, translate_plural
    from contigo.vault import get_vault

    app = app_for(ctx)
    lang = app.config["DEFAULT_LANGUAGE"]
    try:
        if uses_cipher(app) and as_user:
            from contigo.unlock import unlock_as

            password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
            unlock_as(app, as_user, password)
        with session_scope(app) as s:
            verdict = verify(s)
    except ContigoError as exc:
        fail(exc)
    finally:
        if as_user:
            get_vault(app).lock()
    if verdict.problem is not None:
        reason = translate(verdict.problem, lang, **verdict.params)
        entry = verdict.broken_id or translate("auditchain.no_entry", lang)
        message = "auditchain.broken"
        verified = translate_plural("auditchain.verified_before", verdict.verified, lang)
        raise click.ClickException(
            translate(message, lang, entry=entry, verified=verified, reason=reason)
        )
    click.echo(translate_plural("auditchain.intact", verdict.verified, lang))
