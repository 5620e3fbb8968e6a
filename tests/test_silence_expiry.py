"""Silences with an end date: `until` in PRODREADY_SILENCED and in [tool.prodready.silenced].

Past its date a silence silences nothing and `prodready.silence_expired` says so; up to
and including its date it silences, and the date travels with the silence's reason.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine.silences import Silence, active
from flask_prodready.engine.state import get_state

from .support import messages_of
from .test_cli import BAD_APP, run_flask

MakeApp = Callable[..., Flask]

TODAY = datetime.date.today()
YESTERDAY = TODAY - datetime.timedelta(days=1)
NEXT_YEAR = TODAY + datetime.timedelta(days=365)


def finding(app: Flask, check_id: str) -> dict[str, object]:
    """The (single) finding of ``check_id`` in a CLI report of ``app``, as a dict."""
    report = get_state(app).build_report(app, mode="cli")
    (found,) = [f for f in report.findings if f.id == check_id]
    return {"silenced": found.silenced, "silence_reason": found.silence_reason}


class TestConfigSilences:
    def test_expired_silence_no_longer_silences(self, make_app: MakeApp) -> None:
        """A silence whose `until` was yesterday leaves the finding unsilenced, and
        prodready.silence_expired names the id and the date."""
        app = make_app(
            DEBUG=True,
            PRODREADY_SILENCED={"config.debug": {"reason": "a demo box", "until": str(YESTERDAY)}},
        )
        assert finding(app, "config.debug") == {"silenced": False, "silence_reason": None}
        assert messages_of(app, "prodready.silence_expired") == [
            (
                "warning",
                f"The silence of 'config.debug' in PRODREADY_SILENCED expired on {YESTERDAY}: "
                "'config.debug' is no longer silenced.",
            )
        ]

    def test_silence_until_later_silences(self, make_app: MakeApp) -> None:
        """A silence until next year silences, and its reason carries the date."""
        app = make_app(
            DEBUG=True,
            PRODREADY_SILENCED={"config.debug": {"reason": "a demo box", "until": NEXT_YEAR}},
        )
        assert finding(app, "config.debug") == {
            "silenced": True,
            "silence_reason": f"a demo box (until {NEXT_YEAR})",
        }
        assert messages_of(app, "prodready.silence_expired") == []

    def test_silence_holds_through_its_last_day(self, make_app: MakeApp) -> None:
        """`until` is the last day the silence holds: today it still silences."""
        app = make_app(
            DEBUG=True,
            PRODREADY_SILENCED={"config.debug": {"reason": "a demo box", "until": TODAY}},
        )
        assert finding(app, "config.debug")["silenced"] is True
        assert messages_of(app, "prodready.silence_expired") == []

    def test_plain_reason_never_expires(self, make_app: MakeApp) -> None:
        """A silence without a date (a string, or a dict without `until`) is for good."""
        app = make_app(
            DEBUG=True,
            TESTING=True,
            PRODREADY_SILENCED={"config.debug": "a demo box", "config.testing": {"reason": "ci"}},
        )
        assert finding(app, "config.debug") == {"silenced": True, "silence_reason": "a demo box"}
        assert finding(app, "config.testing") == {"silenced": True, "silence_reason": "ci"}
        assert messages_of(app, "prodready.silence_expired") == []

    def test_expired_alias_still_named_as_written(self, make_app: MakeApp) -> None:
        """An expired silence written with a former id is reported under that id, and
        silences neither the old nor the new id."""
        app = make_app(
            PRODREADY_SILENCED={
                "monitoring.sentry_missing": {"reason": "journald", "until": YESTERDAY}
            }
        )
        assert finding(app, "monitoring.error_tracking")["silenced"] is False
        (message,) = messages_of(app, "prodready.silence_expired")
        assert "'monitoring.sentry_missing'" in message[1]

    def test_json_shows_the_date(self, make_app: MakeApp) -> None:
        """The JSON report shows the date in the finding's silence_reason."""
        app = make_app(
            DEBUG=True,
            PRODREADY_SILENCED={"config.debug": {"reason": "demo", "until": "2999-12-31"}},
        )
        report = get_state(app).build_report(app, mode="cli")
        (shown,) = [f.to_dict() for f in report.findings if f.id == "config.debug"]
        assert shown["silence_reason"] == "demo (until 2999-12-31)"


@pytest.mark.parametrize(
    ("silence", "message"),
    [
        (
            {"reason": "x", "until": "2027-13-01"},
            "PRODREADY_SILENCED['config.debug']['until'] must be a date "
            "(datetime.date or 'YYYY-MM-DD'), got '2027-13-01'",
        ),
        (
            {"reason": "x", "until": "31/03/2027"},
            "PRODREADY_SILENCED['config.debug']['until'] must be a date",
        ),
        (
            {"reason": "x", "until": datetime.datetime(2027, 3, 31, 12, 0)},
            "PRODREADY_SILENCED['config.debug']['until'] must be a date "
            "(datetime.date or 'YYYY-MM-DD') without a time",
        ),
        (
            {"reason": "x", "until": 20270331},
            "PRODREADY_SILENCED['config.debug']['until'] must be a date",
        ),
        (
            {"until": "2027-03-31"},
            "PRODREADY_SILENCED['config.debug']['reason'] must be a non-empty string, got None",
        ),
        (
            {"reason": "  ", "until": "2027-03-31"},
            "PRODREADY_SILENCED['config.debug']['reason'] must be a non-empty string",
        ),
        (
            {"reason": "x", "expires": "2027-03-31"},
            "PRODREADY_SILENCED['config.debug'] has an unknown key 'expires': a silence has "
            "only 'reason' and 'until'",
        ),
        (
            3,
            "PRODREADY_SILENCED must be a dict of {check_id: reason} with a non-empty reason "
            "for each id (or {check_id: {'reason': '...', 'until': 'YYYY-MM-DD'}})",
        ),
    ],
)
def test_bad_silence_fails_init_app(silence: object, message: str) -> None:
    """A malformed silence fails init_app with a ValueError naming the key and the value
    expected."""
    app = Flask("bad")
    app.config["PRODREADY_SILENCED"] = {"config.debug": silence}
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        ProdReady(app)


def test_active_silences() -> None:
    """`active` keeps what silences on a day, with the date in the reason."""
    silences = {
        "a.b": Silence("r"),
        "c.d": Silence("r", YESTERDAY),
        "e.f": Silence("r", TODAY),
    }
    assert active(silences, TODAY) == {"a.b": "r", "e.f": f"r (until {TODAY})"}


APP_SILENCING_DEBUG = BAD_APP.replace(
    "SESSION_COOKIE_HTTPONLY=False)",
    'SESSION_COOKIE_HTTPONLY=False, PRODREADY_SILENCED={"config.debug": "the app says so"})',
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "badapp.py").write_text(textwrap.dedent(BAD_APP))
    (folder / "silencingapp.py").write_text(textwrap.dedent(APP_SILENCING_DEBUG))
    return folder


def pyproject(project: Path, silenced: str) -> None:
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'proj'\n\n[tool.prodready.silenced]\n" + textwrap.dedent(silenced)
    )


def findings(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    """{id: finding} of a `--format json` run."""
    body = json.loads(done.stdout)
    return {f["id"]: f for f in body["findings"]}


def test_pyproject_silence_expired_yesterday(project: Path) -> None:
    """`flask readiness`: a file's silence that ended yesterday silences nothing, and
    prodready.silence_expired names the id, the date and the file."""
    pyproject(project, f'"config.debug" = {{ reason = "demo", until = {YESTERDAY} }}\n')
    done = run_flask(project, "badapp", "--format", "json")
    assert done.returncode == 1, done.stderr
    found = findings(done)
    assert found["config.debug"]["silenced"] is False
    expired = found["prodready.silence_expired"]
    assert expired["level"] == "warning"
    assert expired["message"] == (
        f"The silence of 'config.debug' in [tool.prodready.silenced] of pyproject.toml "
        f"expired on {YESTERDAY}: 'config.debug' is no longer silenced."
    )
    assert expired["observed"] == {"id": "config.debug", "until": str(YESTERDAY)}


def test_pyproject_silence_until_next_year(project: Path) -> None:
    """A file's silence until next year silences, with its date in the reason; a string
    date is read too."""
    pyproject(
        project,
        f"""
        "config.debug" = {{ reason = "demo", until = {NEXT_YEAR} }}
        "config.secret_key_weak" = {{ reason = "demo", until = "{NEXT_YEAR}" }}
        "cookies.session_httponly" = "demo"
        """,
    )
    done = run_flask(project, "badapp", "--format", "json", "--fail-level", "critical")
    assert done.returncode == 0, done.stdout
    found = findings(done)
    assert found["config.debug"]["silenced"] is True
    assert found["config.debug"]["silence_reason"] == f"demo (until {NEXT_YEAR})"
    assert found["config.secret_key_weak"]["silenced"] is True
    assert found["cookies.session_httponly"]["silence_reason"] == "demo"
    assert "prodready.silence_expired" not in found


def test_app_config_wins_over_the_file(project: Path) -> None:
    """On the same id, PRODREADY_SILENCED beats the file (here: the file's has expired)."""
    pyproject(project, f'"config.debug" = {{ reason = "file", until = {YESTERDAY} }}\n')
    found = findings(run_flask(project, "silencingapp", "--format", "json"))
    assert found["config.debug"]["silenced"] is True
    assert found["config.debug"]["silence_reason"] == "the app says so"
    assert "prodready.silence_expired" not in found


def test_unknown_id_in_the_file_names_the_file(project: Path) -> None:
    """prodready.unknown_silence says a misspelt id came from the file."""
    pyproject(project, '"config.degub" = "typo"\n')
    found = findings(run_flask(project, "badapp", "--format", "json"))
    assert found["prodready.unknown_silence"]["message"] == (
        "[tool.prodready.silenced] of pyproject.toml names 'config.degub', which is not a "
        "check id. Did you mean 'config.debug'?"
    )


def test_bad_date_in_the_file_is_one_line(project: Path) -> None:
    """A date that is not a day exits 2 with one line naming the id and the file."""
    pyproject(project, '"config.debug" = { reason = "demo", until = "2027-02-30" }\n')
    done = run_flask(project, "badapp")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "'config.debug'['until'] must be a date" in line
    assert str(project / "pyproject.toml") in line
