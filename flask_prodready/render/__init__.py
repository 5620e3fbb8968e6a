"""Renderers: the same :class:`~flask_prodready.findings.Report` for people and machines."""
