"""Helpers shared by the HTML views: turning a posted form into schema input, and keeping what
was typed together with the translated message of each wrong field for the re-rendered page.

Views stay thin: parse with :func:`form_input`, call one service, and on
:class:`~contigo.errors.ValidationFailed` render again with a :class:`FormState`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from contigo.errors import ContigoError

#: Form controls that are never schema fields (they steer the view, not the record).
CONTROL_FIELDS = frozenset({"csrf_token", "confirm", "action"})


#: A date as people write it in Spanish and Portuguese (and as Contigo shows it): day, month,
#: year, whatever the browser's own locale (issue 15.8).
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
#: Fields that hold a calendar date (besides every ``*_on``).
DATE_FIELDS = frozenset({"birth_date", "date"})


def is_date_field(name: str) -> bool:
    return name in DATE_FIELDS or name.endswith("_on")


def iso_date(typed: str) -> str:
    """``dd/mm/aaaa`` (also with ``.`` or ``-``) as ISO ``aaaa-mm-dd`` for the schema, which then
    says whether the day exists; anything else (ISO itself) is passed on as typed."""
    found = _DMY.match(typed.strip())
    if not found:
        return typed
    day, month, year = (int(part) for part in found.groups())
    return f"{year:04d}-{month:02d}-{day:02d}"


def dmy_date(value: Any) -> str:
    """An ISO date (or a :class:`datetime.date`) as ``dd/mm/aaaa`` for a date box; what a
    person typed otherwise is shown back as typed."""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value or "")
    if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        return f"{text[8:10]}/{text[5:7]}/{text[0:4]}"
    return text


def form_input(
    form: MultiDict[str, str],
    *,
    lists: Iterable[str] = (),
    skip: Iterable[str] = (),
) -> dict[str, Any]:
    """The posted fields as schema input.

    Blank inputs are left out so the schema's defaults apply (an empty number box means "not
    measured", not zero); fields named in ``lists`` (checkbox groups) become lists; control
    fields and ``skip`` are dropped so that ``unknown = RAISE`` schemas see only their fields.
    """
    list_names = set(lists)
    dropped = CONTROL_FIELDS | set(skip)
    out: dict[str, Any] = {}
    for name in form:
        if name in dropped:
            continue
        if name in list_names:
            out[name] = [v for v in form.getlist(name) if v.strip()]
            continue
        value = form.get(name, "").strip()
        if value:
            out[name] = iso_date(value) if is_date_field(name) else value
    for name in list_names - dropped:
        out.setdefault(name, [])
    return out


@dataclass
class FormState:
    """What a form page shows: the typed values and the errors per field.

    ``values`` keeps strings as typed (and lists for checkbox groups), so a rejected form comes
    back exactly as the user left it.
    """

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str | None = None

    @classmethod
    def from_form(cls, form: MultiDict[str, str], lists: Iterable[str] = ()) -> FormState:
        """The posted values, unparsed."""
        list_names = set(lists)
        values: dict[str, Any] = {}
        for name in form:
            values[name] = form.getlist(name) if name in list_names else form.get(name, "")
        return cls(values=values)

    def fail(self, exc: ContigoError, renames: Mapping[str, str] | None = None) -> FormState:
        """Attach the errors of ``exc``; ``renames`` maps schema field paths to form names."""
        renames = renames or {}
        for name, messages in exc.fields.items():
            self.errors.setdefault(renames.get(name, name), []).extend(messages)
        self.message = exc.message()
        return self

    def value(self, name: str, default: Any = "") -> Any:
        """The typed value of ``name``."""
        return self.values.get(name, default)

    def checked(self, name: str, option: str = "1") -> bool:
        """Whether checkbox ``name`` (or option ``option`` of a checkbox group) was ticked."""
        value = self.values.get(name)
        if isinstance(value, list):
            return option in value
        return value is not None and value not in ("", "0", "false")

    def unplaced_errors(self, placed: Iterable[str]) -> list[str]:
        """Messages of fields that have no place of their own on the form."""
        names = set(placed)
        return [m for name, msgs in self.errors.items() if name not in names for m in msgs]
