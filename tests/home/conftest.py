"""The signed-in page session and registration of tests/test_pages.py, for the home page."""

from tests.test_pages import pages, register  # noqa: F401
