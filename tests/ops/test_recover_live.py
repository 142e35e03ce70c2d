"""A dead laptop's outbox recovered from a copy of its instance folder (issue 17.2), over a
real central (gunicorn, PostgreSQL).

The laptop pushed two visits whose answer was lost (central has them, the laptop still holds
them as unsent), recorded a third, was revoked, and recorded a fourth before it learnt so; then
it died. ``contigo recover --from COPY`` brings its ops to central as that device's: the third
visit arrives, the first two are not applied twice, the fourth (recorded after the revocation)
is refused. Running it again changes nothing; the copy is never written; a replacement laptop
enrolled at the site gets the whole record by its first pull.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import engine_for
from sync.client.transport import FaultyTransport, TransportError
from sync.models import SyncOp
from tests.exchange.live import (
    Central,
    central_server,
    encounter_ids,
    enrolled_laptops,
    record_visit,
    register_child,
    transport,
)

pytestmark = pytest.mark.slow
SITE = "DEAD-1"


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    with central_server(tmp_path) as server:
        yield server


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _on_central(central: Central, visits: list[str]) -> list[str]:
    """The visits central holds among ``visits``, duplicates kept."""
    return sorted(v for v in visits for _ in range(central.count(Encounter, Encounter.id == v)))


def test_recover_from_a_copy_brings_unsent_visits_once_as_the_device(
    central: Central, tmp_path: Path
) -> None:
    with enrolled_laptops(tmp_path / "laptops", central) as make:
        a = make("a", SITE)
        pid = register_child(a.app)
        assert a.sync().exit_code == 0
        arrived = [record_visit(a.app, pid, 4), record_visit(a.app, pid, 3)]
        http = transport(a)
        faulty = FaultyTransport(http)
        faulty.drop_responses = 1  # central commits the push; the laptop never hears
        with pytest.raises(TransportError):
            engine_for(a.app, faulty).run()
        http.session.close()
        assert {op.entity_id for op in a.outbox()} >= set(arrived)
        unsent = record_visit(a.app, pid, 2)
        device = a.device_id
        assert central.cli("device", "revoke", device).exit_code == 0
        late = record_visit(a.app, pid, 1)  # before the laptop learns it was revoked
        a.close()
        copy = tmp_path / "dead-disk"
        shutil.copytree(a.instance, copy)
        before = _digest(copy)

        recovered = central.cli("recover", "--from", str(copy))
        assert recovered.exit_code == 0, recovered.output
        visits = [*arrived, unsent, late]
        assert _on_central(central, visits) == sorted([*arrived, unsent])
        assert central.count(SyncOp, SyncOp.entity_id == unsent, SyncOp.device_id == device) == 1
        assert central.count(SyncOp, SyncOp.entity_id == late) == 0

        again = central.cli("recover", "--from", str(copy))
        assert again.exit_code == 0, again.output
        assert _on_central(central, visits) == sorted([*arrived, unsent])
        assert central.count(Encounter, Encounter.person_id == pid) == 3
        assert _digest(copy) == before  # the copy is read, never written

        replacement = make("r", SITE)
        assert replacement.sync().exit_code == 0
        assert encounter_ids(replacement.app, pid) == sorted([*arrived, unsent])


def test_recover_refuses_a_folder_without_a_laptop(central: Central, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = central.cli("recover", "--from", str(empty))
    assert result.exit_code != 0
    assert str(empty) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert central.count(SyncOp) == 0  # nothing applied
