"""The Portuguese is Brazilian and every counted message is a real plural (issue 15.8): the
glossary's Portugal-only words never appear in the Portuguese catalogue or the clinical labels,
and a message whose count is followed by a word goes through ``key.one`` / ``key.other``."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from contigo.i18n import LANGUAGES, catalogue, plural_category, translate_plural
from contigo.nutrition.labels import LABELS

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary-pt-BR.md"
I18N = ROOT / "contigo" / "i18n"
#: Placeholders that hold a count of something.
COUNTS = ("n", "count", "days", "weeks", "months", "years", "y", "m", "total", "shown", "sent",
          "already", "refused", "hours", "minutes")  # fmt: skip
#: What may follow a count without making it a counted noun: a unit symbol or a little word
#: ("5 h", "3 de 20", "2 semanas y 3 días", "7 días o más").
NOT_NOUNS = ("h", "min", "s", "kg", "g", "mm", "cm", "m", "de", "of", "y", "e", "and", "o", "ou",
             "or")  # fmt: skip
COUNTED = re.compile(
    r"\{(" + "|".join(COUNTS) + r")\}\s+(?!(?:" + "|".join(NOT_NOUNS) + r")\b)[^\W\d_]"
)
#: Counted messages not yet in plural form, each with why. The growth charts' texts are
#: rewritten with the charts themselves (issue 15.7, another branch: contigo/charts.py).
NOT_YET: set[str] = set()


def portugal_only() -> list[tuple[str, re.Pattern[str]]]:
    """The first column of the glossary's table of Portugal-only terms, as word patterns."""
    text = GLOSSARY.read_text(encoding="utf-8")
    table = text.split("## Portugal-only terms", 1)[1].split("\n## ", 1)[0]
    terms: list[str] = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0].startswith(("pt-PT", "---")):
            continue
        terms += [t.strip() for t in cells[0].split(",") if t.strip()]
    assert len(terms) > 30, "the glossary table was not read"
    out = []
    for term in terms:
        stem = term.endswith("*")
        body = re.escape(term.rstrip("*"))
        tail = r"\w*" if stem else ""
        out.append((term, re.compile(rf"(?<![\w-]){body}{tail}(?![\w-])", re.IGNORECASE)))
    return out


def portuguese_texts() -> dict[str, str]:
    texts = {f"i18n:{k}": v for k, v in catalogue("pt").items()}
    texts.update({f"label:{k}": v.pt for k, v in LABELS.items()})
    return texts


def test_no_portugal_only_word_in_the_portuguese_texts() -> None:
    found = [
        f"{key}: «{term}» in {text!r}"
        for key, text in portuguese_texts().items()
        for term, pattern in portugal_only()
        if pattern.search(text)
    ]
    assert not found, "\n".join(found)


def test_the_glossary_catches_what_it_lists() -> None:
    patterns = dict(portugal_only())
    assert patterns["registo"].search("Eliminar registo")
    assert patterns["registad*"].search("Óbito registado.")
    assert not patterns["registo"].search("Registro de pessoa")
    assert not patterns["guardar"].search("Guarde este cartão")


def _files(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((I18N / lang).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_counted_message_is_a_plural_form(lang: str) -> None:
    singular = [
        f"{key}: {text!r}"
        for key, text in _files(lang).items()
        if COUNTED.search(text)
        and key.rsplit(".", 1)[-1] not in ("one", "other")
        and key not in NOT_YET
    ]
    assert not singular, "\n".join(singular)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_text_hedges_its_plural(lang: str) -> None:
    """ "visita(s)" is what a plural form replaces."""
    hedged = [k for k, text in _files(lang).items()
              if re.search(r"[^\W\d_]\((?:s|es)\)", text) and k not in NOT_YET]  # fmt: skip
    assert not hedged


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_plural_has_both_forms(lang: str) -> None:
    texts = _files(lang)
    for key, text in texts.items():
        stem, _, form = key.rpartition(".")
        if form in ("one", "other") and "{n}" in text:
            assert {f"{stem}.one", f"{stem}.other"} <= set(texts), key


def test_plurals_read_as_people_say_them() -> None:
    assert translate_plural("page.age.days", 1, "es") == "1 día"
    assert translate_plural("page.age.days", 2, "es") == "2 días"
    assert translate_plural("page.age.days", 0, "pt") == "0 dia"
    assert plural_category("en", 0) == "other"


@pytest.mark.parametrize(
    ("lang", "days", "said"),
    [
        ("es", 1, "1 día"), ("es", 45, "1 mes"), ("es", 790, "2 años 1 mes"),
        ("es", 731, "2 años"), ("pt", 1, "1 dia"), ("pt", 400, "13 meses"),
        ("pt", 1130, "3 anos 1 mês"), ("en", 3, "3 days"),
    ],
)  # fmt: skip
def test_ages_are_said_with_real_plurals(lang: str, days: int, said: str) -> None:
    from flask import Flask

    from contigo.display import age_text

    app = Flask(__name__)
    with app.test_request_context(headers={"Accept-Language": lang}):
        today = date(2026, 12, 6)
        assert age_text(today - timedelta(days=days), today) == said


def test_composite_counts_read_as_people_say_them() -> None:
    one = {k: translate_plural(f"field2.ops.{k}", 1, "es") for k in ("sent", "already", "refused")}
    assert one == {"sent": "1 operación enviada", "already": "1 ya estaba en el central",
                   "refused": "1 rechazada"}  # fmt: skip
    assert translate_plural("transfers.nav.waiting", 1, "en") == "1 transfer waiting"
    assert translate_plural("card.qr_size", 1, "pt", version=5, shown=1).endswith("1 de 1 visita.")
