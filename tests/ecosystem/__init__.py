"""The ecosystem check: flask-prodready on real open-source Flask applications.

Each application in :mod:`tests.ecosystem.apps` is installed from PyPI into a
virtualenv of its own (cached under ``.ecosystem/``), configured for production the way
its own documentation says, served by gunicorn behind a TLS-terminating nginx on
loopback, given some ordinary traffic, and asked for its readiness report, live
(``/_readiness``) and from the command line (``flask readiness``). The reports are
compared with the reviewed expectations in ``tests/ecosystem/expected/<app>.toml``.

``python -m tests.ecosystem`` prints the difference for every application;
``tests/ecosystem/test_ecosystem.py`` (marker ``ecosystem``) fails on it.
"""
