"""``column IN (…)`` for the batched reads of sync, one statement text whatever the count.

A push batch reads its ledger rows, access rows, persons and visits with ``IN`` lists of up to
200 ids. SQLAlchemy renders such a list as one parameter per value, so each batch's statement
is new text: compiled again, converted again by the driver, planned again by the server. On
PostgreSQL the list goes as one array parameter (``= ANY(%s)``) instead, so the text is the same
for every batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.orm import QueryableAttribute, Session


def among(
    s: Session, column: QueryableAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column IN values`` for the database of ``s`` (an empty ``values`` matches nothing)."""
    items = list(values)
    if s.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, items, type_=ARRAY(column.type)))
    return column.in_(items)
