"""The Spanish, Portuguese and English catalogues stay complete and consistent, and every message
id the code and templates use exists."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from contigo.encounters.schemas import (
    APPETITE,
    COUNSELLING,
    PREGNANCY_STATUS,
    REFERRALS,
    SUPPLEMENTS,
)
from contigo.i18n import LANGUAGES
from contigo.persons.models import DOB_PRECISION, PERSON_KINDS, POPULATION_TYPES
from contigo.persons.schemas import DOCUMENT_TYPES, NATIONALITIES, SEXES

ROOT = Path(__file__).resolve().parent.parent / "contigo"
I18N = ROOT / "i18n"
#: ``_('id')`` / ``translate("id", …)``: a literal id directly followed by ``)`` or ``,``.
LITERAL_ID = re.compile(r"""\b(?:_|translate)\(\s*(['"])([A-Za-z0-9_.\-]+)\1\s*[,)]""")

#: Ids built at run time from a prefix and a closed set of values.
DYNAMIC_FAMILIES: dict[str, tuple[str, ...]] = {
    "page.person.kind.": PERSON_KINDS,
    "page.person.sex.": SEXES,
    "page.person.precision.": DOB_PRECISION,
    "page.person.population.": POPULATION_TYPES,
    "page.country.": NATIONALITIES,
    "page.document.": DOCUMENT_TYPES,
    "page.supplement.": SUPPLEMENTS,
    "page.counselling.": COUNSELLING,
    "page.encounter.referral.": REFERRALS,
    "page.encounter.appetite.": APPETITE,
    "page.encounter.pregnancy.": PREGNANCY_STATUS,
    "page.encounter.measure.": ("l", "h"),
    "page.encounter.oedema.": ("0", "1", "2", "3"),
    "page.language.": LANGUAGES,
    "page.month.": tuple(str(m) for m in range(1, 13)),
    "page.appointment.": ("follow_up", "episode_visit"),
    "page.appointment.status.": ("due", "done", "cancelled"),
    "page.warning.": ("standing_under_9_months", "trimester_unknown", "remeasure"),
}


def load(lang: str) -> dict[str, str]:
    """One language's catalogue, merged from its files, refusing an id defined twice."""
    merged: dict[str, str] = {}
    for path in sorted((I18N / lang).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        twice = set(merged) & set(data)
        assert not twice, f"{lang}/{path.name} redefines {sorted(twice)}"
        merged.update(data)
    return merged


CATALOGUES = {lang: load(lang) for lang in LANGUAGES}


def placeholders(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def used_ids() -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    files = [*ROOT.rglob("*.py"), *(ROOT / "templates").rglob("*.html")]
    for path in files:
        for match in LITERAL_ID.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group(2), set()).add(path.relative_to(ROOT))
    return found


def test_every_language_has_the_same_ids() -> None:
    reference = set(CATALOGUES["es"])
    for lang, catalogue in CATALOGUES.items():
        assert set(catalogue) == reference, (
            f"{lang}: missing {sorted(reference - set(catalogue))}, "
            f"extra {sorted(set(catalogue) - reference)}"
        )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_text_is_empty(lang: str) -> None:
    empty = [key for key, text in CATALOGUES[lang].items() if not str(text).strip()]
    assert not empty


def test_placeholders_agree_across_languages() -> None:
    for key, text in CATALOGUES["es"].items():
        expected = placeholders(text)
        for lang in LANGUAGES:
            assert placeholders(CATALOGUES[lang].get(key, "")) == expected, f"{lang}: {key}"


def test_every_literal_id_in_code_and_templates_exists() -> None:
    ids = used_ids()
    assert len(ids) > 100, "the scan found suspiciously few ids"
    missing = {key: sorted(map(str, paths)) for key, paths in ids.items()
               if key not in CATALOGUES["es"]}  # fmt: skip
    assert not missing, f"ids used but not in the catalogues: {missing}"


@pytest.mark.parametrize("prefix", sorted(DYNAMIC_FAMILIES))
def test_every_id_built_at_run_time_exists(prefix: str) -> None:
    missing = [prefix + v for v in DYNAMIC_FAMILIES[prefix] if prefix + v not in CATALOGUES["es"]]
    assert not missing


def test_the_scanner_sees_both_call_styles() -> None:
    sample = "_('page.a') translate(\"page.b\", n=1) _('page.c.' ~ x) translate(key)"
    assert [m.group(2) for m in LITERAL_ID.finditer(sample)] == ["page.a", "page.b"]
