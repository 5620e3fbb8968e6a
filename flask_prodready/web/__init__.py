"""The web front end: ``/healthz``, the ``/_readiness`` report and the WSGI middleware that
answers them in front of the app and observes the rest of the traffic.

It reads an app's :class:`~flask_prodready.engine.state.AppState` and renders with
:mod:`flask_prodready.render`; it never imports a check or the extension object.
"""
