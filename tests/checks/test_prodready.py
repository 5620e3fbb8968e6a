"""prodready.*: the extension's own configuration."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from ..support import messages_of

MakeApp = Callable[..., Flask]


class TestUnknownSilence:
    def test_fires_with_a_suggestion(self, make_app: MakeApp) -> None:
        """A misspelt id in PRODREADY_SILENCED is a warning that suggests the real id."""
        app = make_app(PRODREADY_SILENCED={"config.degub": "typo"})
        assert messages_of(app, "prodready.unknown_silence") == [
            (
                "warning",
                "PRODREADY_SILENCED names 'config.degub', which is not a check id. "
                "Did you mean 'config.debug'?",
            )
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """Known ids (planned and engine ids included) are fine."""
        app = make_app(
            PRODREADY_SILENCED={
                "config.debug": "r",
                "server.dev_server": "r",
                "prodready.check_timeout": "r",
            }
        )
        assert messages_of(app, "prodready.unknown_silence") == []
