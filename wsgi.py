"""The central server's WSGI entry point: ``gunicorn wsgi:app`` with ``CONTIGO_MODE=central``.

The only module-level app in the project (STYLE.md §1).
"""

from contigo import create_app

app = create_app()
