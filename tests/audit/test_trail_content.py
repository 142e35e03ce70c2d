"""Audit entries hold ids and codes, never personal data; and the app's own writes keep the
chain intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.audit.services import verify
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import session_scope


def test_registering_and_viewing_a_person_audits_ids_only(
    app: Flask, unlocked: Any, make_person: Callable[..., str]
) -> None:
    from contigo.persons import services
    from contigo.vault import get_vault

    sup = unlocked.scalar(select(User).where(User.username == "sup"))
    pid = make_person(unlocked, sup, given_names="Yolanda", family_names="Quintero Bermúdez")
    services.get(unlocked, get_vault(app), sup, pid)
    unlocked.commit()
    with session_scope(app) as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.chain_seq)))
        assert {e.action for e in entries} >= {"create", "view"}
        columns = [c.name for c in AuditEntry.__table__.columns]
        text = " ".join(str(getattr(e, c)) for e in entries for c in columns).lower()
        for personal in ("yolanda", "quintero", "bermúdez", "2024-05-01"):
            assert personal not in text
        verdict = verify(s)
    assert verdict.ok and verdict.verified == len(entries)


def test_a_demo_instance_has_an_intact_chain(tmp_path: Path) -> None:
    runner = CliRunner()
    inst = ["--instance", str(tmp_path / "demo")]
    env = {"CONTIGO_SCRYPT_N": "1024", "CONTIGO_DEFAULT_LANGUAGE": "en"}
    built = runner.invoke(main, [*inst, "demo", "--persons", "12", "--women", "3"], env=env)
    assert built.exit_code == 0, built.output
    checked = runner.invoke(main, [*inst, "audit", "verify"], env=env)
    assert checked.exit_code == 0, checked.output
    assert "audit entries verified" in checked.output
