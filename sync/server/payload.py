"""The sealed payload of a change (``sync_changes.payload_enc``) as JSON text whose parts a pull
page can lift out without parsing it.

A change's payload is ``{"body": …, "fields": …}``. A pull page used to parse every payload and
serialise it again into the page: for a first pull (a thousand encounters of about 1.5 KB each
per page) that was the largest part of central's time. The payload is written as::

    {"body":<body>,"fields":<fields>,"n":<length of <body> in bytes>}

which is still plain JSON (every reader that parses it finds ``body`` and ``fields``), and whose
trailing length tells exactly where ``<body>`` ends, whatever the body and fields hold: the page
embeds both texts as they are (:func:`split`). Payloads written before, without the length, are
split only when they cannot be read two ways (their fields empty); any other is parsed.
"""

from __future__ import annotations

_HEAD = b'{"body":'
_MID = b',"fields":'
_LENGTH = b',"n":'
_NO_FIELDS = _MID + b"{}}"


def pack(body_json: bytes, fields_json: bytes) -> bytes:
    """The payload text of a change whose body and fields are the JSON texts given."""
    return b"".join(
        (_HEAD, body_json, _MID, fields_json, _LENGTH, str(len(body_json)).encode(), b"}")
    )


def split(plain: bytes) -> tuple[bytes, bytes] | None:
    """The JSON texts of the body and the fields of a payload, as written; ``None`` when the
    payload has another shape (it is then parsed).

    Keeps: the texts returned are exactly the payload's ``body`` and ``fields`` values, for a
    payload made by :func:`pack` (the trailing length is the last member, so no text inside the
    body or fields can be taken for it), and for an older payload of exactly ``body`` and empty
    ``fields`` in that order, compact (every writer of changes wrote those two members only)."""
    if not plain.startswith(_HEAD):
        return None
    if plain.endswith(b"}") and plain[-2:-1].isdigit():
        at = plain.rfind(_LENGTH)
        digits = plain[at + len(_LENGTH) : -1]
        if at < 0 or not digits.isdigit():
            return None
        end = len(_HEAD) + int(digits)
        if plain[end : end + len(_MID)] != _MID or end + len(_MID) > at:
            return None
        return plain[len(_HEAD) : end], plain[end + len(_MID) : at]
    if plain.endswith(_NO_FIELDS):
        return plain[len(_HEAD) : -len(_NO_FIELDS)], b"{}"
    return None
