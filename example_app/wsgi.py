"""The WSGI entry point for production servers: ``gunicorn example_app.wsgi:app``.

The app is built once per process at import, from the environment (``FLASK_CONFIG``,
``SECRET_KEY``, ``DATABASE_URL``, ``PRODREADY_TOKEN`` ...); a production configuration
without ``SECRET_KEY`` stops here, before the server accepts a request.
"""

from __future__ import annotations

from . import create_app

app = create_app()
