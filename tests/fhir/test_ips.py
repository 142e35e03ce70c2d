"""The FHIR International Patient Summary: valid against the R4B models, downloadable from the
person page and the API (scope checked, audited), its shape pinned by a golden file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.encounters import services as encounters
from contigo.fhir import ips
from contigo.vault import get_vault
from tests.conftest import PASSWORD
from tests.factories import VISIT

GOLDEN = Path(__file__).parent / "golden" / "ips_child.json"


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _loinc(resources: list[dict[str, Any]]) -> set[str]:
    return {c["code"] for r in resources for c in r["code"]["coding"] if "loinc" in c["system"]}


def _child_with_mother(app: Flask, unlocked: Any, make_person: Callable[..., str]) -> str:
    s = unlocked
    sup = s.scalar(select(User).where(User.username == "sup"))
    mother = make_person(s, sup, kind="woman", given_names="Rosa", sex="F",
                         birth_date=date(1998, 3, 1))  # fmt: skip
    child = make_person(s, sup, mother_id=mother, birth_date=date.today() - timedelta(days=420))
    plan = ((60, 95.0, ["rutf", "vitamin_a"]), (30, 92.0, ["rutf"]), (2, 121.0, []))
    for days, hb, products in plan:
        data = {**VISIT, "occurred_on": date.today() - timedelta(days=days), "hb_g_l": hb,
                "supplements": products}  # fmt: skip
        encounters.record(s, get_vault(app), sup, child, sup.home_site_id, data)
    s.commit()
    return child


def test_the_ips_download_validates_against_r4b(
    app: Flask,
    unlocked: Any,
    make_person: Callable[..., str],
    login: Callable[..., FlaskClient],
) -> None:
    child = _child_with_mother(app, unlocked, make_person)
    client = login()
    resp = client.get(f"/fhir/persons/{child}/ips.json", base_url="http://localhost")
    assert resp.status_code == 200
    assert resp.mimetype == "application/fhir+json"
    assert "attachment" in resp.headers["Content-Disposition"]
    bundle = json.loads(resp.data)
    Bundle.model_validate(bundle)  # raises on anything R4B does not allow
    assert bundle["type"] == "document"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    patient = _resources(bundle, "Patient")[0]
    assert patient["id"].replace("-", "") == child
    assert _resources(bundle, "RelatedPerson")[0]["relationship"][0]["coding"][0]["code"] == "MTH"
    observations = _resources(bundle, "Observation")
    assert {"29463-7", "8306-3", "56072-2", "718-7"} <= _loinc(observations)
    assert len(_resources(bundle, "Encounter")) == 3
    anaemia = _resources(bundle, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in anaemia] == ["D64.9"]
    assert anaemia[0]["clinicalStatus"]["coding"][0]["code"] == "resolved"  # the last Hb is fine
    given = _resources(bundle, "MedicationStatement")
    products = [m["medicationCodeableConcept"]["coding"][0]["code"] for m in given]
    assert sorted(products) == ["rutf", "rutf", "vitamin_a"]
    with app.app_context():
        from contigo.db import session_scope

        with session_scope(app) as s:
            assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "fhir_export"))


def test_the_ips_comes_from_the_api_with_a_token(
    app: Flask, unlocked: Any, make_person: Callable[..., str], client: FlaskClient
) -> None:
    child = _child_with_mother(app, unlocked, make_person)
    token = client.post(
        "/api/v1/auth/token",
        json={"username": "sup", "password": PASSWORD},
        base_url="http://localhost",
    ).get_json()["token"]
    resp = client.get(
        f"/api/v1/persons/{child}/ips",
        headers={"Authorization": f"Bearer {token}"},
        base_url="http://localhost",
    )
    assert resp.status_code == 200, resp.data[:300]
    Bundle.model_validate(resp.get_json())
    missing = client.get(
        "/api/v1/persons/nobody/ips",
        headers={"Authorization": f"Bearer {token}"},
        base_url="http://localhost",
    )
    assert missing.status_code == 404


def golden_bundle() -> dict[str, Any]:
    """A fixed child with two visits, an episode and a mother, exported at a fixed time."""
    site = ips.Site("0" * 31 + "1", "Necoclí", "CO")
    person = ips.Identity(
        "a" * 32, "ABCD1234X", "child", "Ana Lucía", "Pérez", "F", date(2024, 5, 1), "month"
    )
    z1 = {"waz": -2.41, "haz": -1.9, "whz": -2.2, "muacz": -1.5}
    visits = [
        ips.Visit("b" * 32, date(2025, 5, 1), site.id,
                  {"weight_kg": 7.1, "lenhei_cm": 70.0, "measure": "l", "muac_mm": 118,
                   "hb_g_l": 95.0, "supplements": ["rusf"]},
                  {"zscores": z1, "anaemia": {"severity": "moderate"}}),
        ips.Visit("c" * 32, date(2025, 6, 1), site.id,
                  {"weight_kg": 7.6, "lenhei_cm": 71.2, "measure": "l", "muac_mm": 124,
                   "headc_cm": 44.5, "supplements": []},
                  {"zscores": {"waz": -1.8, "whz": -1.4}}),
    ]  # fmt: skip
    episode = ips.Episode("d" * 32, "mam_tsfp", "closed", date(2025, 5, 1), date(2025, 6, 1))
    now = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
    mother = ("e" * 32, "MOMM0001Z")
    return ips.bundle(person, visits, [episode], {site.id: site}, site, now, mother)


def test_the_ips_shape_is_pinned_by_a_golden_file() -> None:
    bundle = golden_bundle()
    Bundle.model_validate(bundle)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    referenced = {r["reference"] for sec in composition["section"] for r in sec.get("entry", [])}
    assert referenced <= full_urls  # every section entry is in the document
    assert bundle == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_the_bundle_round_trips_the_measurements_on_another_instance(
    app: Flask, unlocked: Any, make_person: Callable[..., str], tmp_path: Path
) -> None:
    from contigo.fhir.bundle_import import import_bundle
    from contigo.fhir.services import person_bundle
    from tests.card.helpers import as_sup, make_laptop

    child = _child_with_mother(app, unlocked, make_person)
    sup = unlocked.scalar(select(User).where(User.username == "sup"))
    exported = json.loads(json.dumps(person_bundle(unlocked, get_vault(app), sup, child,
                                                   sup.home_site_id)))  # fmt: skip
    other = make_laptop(tmp_path / "other", "PE-TUM", "Tumbes", "PE")
    try:
        with as_sup(other) as (s, user):
            new_id = import_bundle(s, get_vault(other), user, user.home_site_id, exported)
        with as_sup(other) as (s, user):
            again = person_bundle(s, get_vault(other), user, new_id, user.home_site_id)
    finally:
        get_vault(other).lock()
        other.extensions["contigo.engine"].dispose()

    def measured(bundle: dict[str, Any]) -> list[tuple[str, str, float]]:
        out = []
        for o in _resources(bundle, "Observation"):
            code = o["code"]["coding"][0]["code"]
            out.append((o["effectiveDateTime"], code, o["valueQuantity"]["value"]))
        return sorted(out)

    assert measured(again) == measured(exported)  # measurements and z-scores alike
    patient = _resources(again, "Patient")[0]
    assert patient["name"] == _resources(exported, "Patient")[0]["name"]
    assert patient["birthDate"] == _resources(exported, "Patient")[0]["birthDate"]
    given = sorted(m["medicationCodeableConcept"]["coding"][0]["code"]
                   for m in _resources(again, "MedicationStatement"))  # fmt: skip
    assert given == ["rutf", "rutf", "vitamin_a"]


def test_the_commands_export_and_import_a_bundle(
    app: Flask, unlocked: Any, make_person: Callable[..., str], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from contigo.cli import main
    from tests.card.helpers import make_laptop

    child = _child_with_mother(app, unlocked, make_person)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    out = tmp_path / "ips.json"
    get_vault(app).lock()
    runner = CliRunner()
    login = ["--username", "sup", "--password-file", str(secret)]
    result = runner.invoke(
        main, ["--instance", app.instance_path, "fhir", "export", child, str(out), *login]
    )
    assert result.exit_code == 0, result.output
    Bundle.model_validate(json.loads(out.read_text(encoding="utf-8")))
    other = make_laptop(tmp_path / "other", "PE-TUM", "Tumbes", "PE")
    get_vault(other).lock()
    other.extensions["contigo.engine"].dispose()
    result = runner.invoke(
        main, ["--instance", str(tmp_path / "other"), "fhir", "import", str(out), *login]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Imported as person ")
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Patient"}', encoding="utf-8")
    result = runner.invoke(
        main, ["--instance", str(tmp_path / "other"), "fhir", "import", str(bad), *login]
    )
    assert result.exit_code != 0 and "bundle" in result.output
