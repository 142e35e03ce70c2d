"""The signed-in page session and registration of tests/test_pages.py, for the visit form."""

from tests.test_pages import pages, register  # noqa: F401
