"""Two concurrent corrections of one visit with real processes: a gunicorn central over
PostgreSQL and two laptops provisioned and synced through the ``contigo`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.exchange.corrections import run_two_corrections
from tests.exchange.live import (
    Central,
    enrolled_laptops,
    module_central,
    record_visit,
    register_child,
    site_for,
)

pytestmark = pytest.mark.slow


central = module_central("live")


def test_two_corrections_of_one_visit_converge_after_a_decision(
    central: Central, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    site = site_for(request)
    with enrolled_laptops(tmp_path, central) as make:
        a, b = make("a", site), make("b", site)
        pid = register_child(a.app)
        visit = record_visit(a.app, pid)
        assert a.sync().exit_code == 0
        assert b.sync().exit_code == 0
        by_app = {id(a.app): a, id(b.app): b}

        def sync(app: Flask) -> None:
            result = by_app[id(app)].sync()
            assert result.exit_code == 0, result.output

        run_two_corrections(a.app, b.app, central.app, sync, pid, visit)
