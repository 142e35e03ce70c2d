"""Translations: Spanish, Portuguese and English catalogues, chosen per user.

Catalogues are flat JSON files of message ids to text with ``{name}`` placeholders, one folder per
language (``es/``, ``pt/``, ``en/``) and one file per area (``core.json``, ``pages.json`` …), merged
on load. A test keeps the three complete. Clinical labels (classification bands)
live with their profiles in :mod:`contigo.nutrition` and are looked up the same way.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, g, has_request_context, request, session

LANGUAGES = ("es", "pt", "en")
DEFAULT = "es"
_DIR = Path(__file__).parent


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of one language."""
    data: dict[str, str] = {}
    for path in sorted((_DIR / lang).glob("*.json")):
        data.update(json.loads(path.read_text(encoding="utf-8")))
    return data


def current_language() -> str:
    """The language of the current user, else the session's choice, else the browser's."""
    if has_request_context():
        lang = g.get("lang")
        if lang in LANGUAGES:
            return str(lang)
        chosen = session.get("lang")
        if chosen in LANGUAGES:
            return str(chosen)
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
    return DEFAULT


def translate(key: str, lang: str | None = None, **params: Any) -> str:
    """Translate ``key``; clinical labels come from the nutrition engine's own catalogue. An
    unknown id shows itself (a test keeps that from shipping)."""
    language = lang or current_language()
    text = catalogue(language).get(key)
    if text is None:
        from contigo.nutrition.labels import LABELS

        found = LABELS.get(key)
        text = found.get(language) if found is not None else key  # type: ignore[arg-type]
    return text.format(**params) if params else text


def plural_category(lang: str, n: int) -> str:
    """The CLDR plural category of ``n`` in ``lang`` (``one`` or ``other`` for our three
    languages; Brazilian Portuguese counts 0 as singular too: "0 dia", "1 dia", "2 dias")."""
    if lang == "pt":
        return "one" if n in (0, 1) else "other"
    return "one" if n == 1 else "other"


def translate_plural(key: str, n: int, lang: str | None = None, **params: Any) -> str:
    """Translate a counted message: ``key.one`` or ``key.other`` by the language's plural rule,
    with ``{n}`` filled in (a test keeps every counted message in both forms)."""
    language = lang or current_language()
    return translate(f"{key}.{plural_category(language, n)}", language, n=n, **params)


def init_app(app: Flask) -> None:
    """Expose ``_``, ``_n`` (counted messages) and the current language to templates."""
    app.jinja_env.globals["_"] = translate
    app.jinja_env.globals["_n"] = translate_plural
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
