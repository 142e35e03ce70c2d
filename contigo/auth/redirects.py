"""Where to go after signing in: only a path on this site, never another origin.

A browser reads far more than ``//host`` as "another site": it drops tabs and newlines before
parsing (``/\\t/evil`` becomes ``//evil``), treats ``\\`` like ``/``, and follows any scheme. So the
target is checked against an allow-list of plain URL characters rather than a deny-list: a path
that starts with one ``/`` followed by unreserved characters, then an optional query and
fragment. Percent escapes are refused in the path (``/%2F/evil`` is harmless today, but nothing
the app links to needs one there, and a proxy that decodes it would make it ``//evil``).
"""

from __future__ import annotations

import re

_PATH = r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/]*"
_TAIL = r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*"
_SAME_SITE = re.compile(rf"{_PATH}(?:\?{_TAIL})?(?:#{_TAIL})?")


def is_same_site_path(target: str | None) -> bool:
    """True when ``target`` can only mean a page of this site (see the module docstring)."""
    if not target or len(target) > 2000:
        return False
    return _SAME_SITE.fullmatch(target) is not None and "//" not in target.split("?", 1)[0]


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a same-site path, else ``default``."""
    return target if target is not None and is_same_site_path(target) else default
