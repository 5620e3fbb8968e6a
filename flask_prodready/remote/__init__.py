"""The remote client: fetch a live instance's ``/_readiness`` and read the JSON body back
into a :class:`~flask_prodready.engine.findings.Report`.

It only fetches and parses: every way the report cannot be had is a
:class:`~flask_prodready.remote.client.RemoteError` with a one-line message, and the
command line (:mod:`flask_prodready.cli`) decides what to print and how to exit.
"""
