"""Supply chain (issue 10.10): every dependency comes pinned and hash-checked from a lock file,
`make` installs from it, and the SBOM it builds stays out of git."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass
class Pin:
    version: str
    marker: str
    hashes: list[str] = field(default_factory=list)


def _lock(name: str) -> dict[str, list[Pin]]:
    """The pins of a lock file by canonical name (a name may be pinned once per marker)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        found = PIN.match(line)
        if found:
            marker = line.split(";", 1)[1].rstrip(" \\").strip() if ";" in line else ""
            current = Pin(found.group(2), marker)
            pins.setdefault(canonicalize_name(found.group(1)), []).append(current)
        elif current is not None and line.strip().startswith("--hash="):
            assert HASH.search(line), line
            current.hashes.append(line.strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{name}: unexpected line {line!r}")
    return pins


def _project() -> dict[str, list[Requirement]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"": [Requirement(r) for r in data["dependencies"]]}
    for extra, reqs in data.get("optional-dependencies", {}).items():
        groups[extra] = [Requirement(r) for r in reqs]
    return groups


def _check_covers(lock: dict[str, list[Pin]], requirements: list[Requirement], name: str) -> None:
    for req in requirements:
        pins = lock.get(canonicalize_name(req.name))
        assert pins, f"{req.name} (pyproject.toml) is not pinned in {name}"
        for pin in pins:
            assert req.specifier.contains(pin.version, prereleases=True), (
                f"{name} pins {req.name}=={pin.version}, outside {req.specifier}"
            )


def test_the_runtime_lock_covers_every_runtime_dependency_with_hashes() -> None:
    lock = _lock("requirements.lock")
    _check_covers(lock, _project()[""], "requirements.lock")
    for name, pins in lock.items():
        for pin in pins:
            assert pin.hashes, f"requirements.lock: {name}=={pin.version} has no hash"


def test_the_dev_lock_adds_the_extras_with_the_same_runtime_pins() -> None:
    runtime, dev = _lock("requirements.lock"), _lock("requirements-dev.lock")
    for extra, requirements in _project().items():
        _check_covers(dev, requirements, f"requirements-dev.lock ({extra or 'runtime'})")
    for name, pins in dev.items():
        for pin in pins:
            assert pin.hashes, f"requirements-dev.lock: {name}=={pin.version} has no hash"
    for name, pins in runtime.items():
        assert {p.version for p in pins} == {p.version for p in dev.get(name, [])}, name


def test_make_installs_from_the_locks_with_hashes_and_keeps_the_sbom_out_of_git() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps" in makefile
    assert "--upgrade pip setuptools" in makefile
    sbom = re.search(r"^SBOM \?= (\S+)$", makefile, re.MULTILINE)
    assert sbom is not None
    assert re.search(r"^test:.*\bsbom\b", makefile, re.MULTILINE), "make test builds the SBOM"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert sbom.group(1) in ignored
