"""The reports' demo fixtures serve the caseload tests too."""

from tests.reports.conftest import client, demo_app, demo_folder  # noqa: F401
