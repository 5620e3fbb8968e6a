"""The engine: findings, the check registry, the runner, redaction, the report cache,
settings, live observation, server introspection and the per-app state.

It knows no front end (no view, no command, no renderer) and no check by name: the
front ends (:mod:`flask_prodready.web`, :mod:`flask_prodready.cli`) and the checks
(:mod:`flask_prodready.checks`) import it, never the other way round.
"""
