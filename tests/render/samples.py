"""Reports built by hand, so each renderer can be pinned down exactly."""

from __future__ import annotations

from flask_prodready.engine.findings import CheckOutcome, Finding, Level, Report, Status, WorkerInfo

GENERATED_AT = "2026-11-27T10:00:00Z"
#: 2026-11-27T10:00:00Z in Unix seconds.
GENERATED_TIMESTAMP = 1795773600.0

DEBUG_ON = Finding(
    "config.debug",
    Level.CRITICAL,
    "The app runs in debug mode (DEBUG is true).",
    hint="Set DEBUG = False.",
    tags=("config", "security"),
    observed=True,
)
NO_BODY_LIMIT = Finding(
    "config.max_content_length",
    Level.WARNING,
    "MAX_CONTENT_LENGTH is not set: request bodies are unbounded.",
    hint="Set MAX_CONTENT_LENGTH.",
    tags=("config",),
)
INSECURE_SESSION = Finding(
    "cookies.session_secure",
    Level.ERROR,
    "SESSION_COOKIE_SECURE is off: the session cookie travels over HTTP.",
    hint="Set SESSION_COOKIE_SECURE = True.",
    tags=("cookies", "security"),
    silenced=True,
    silence_reason="TLS ends at the load balancer",
)
KEY_IN_SOURCE = Finding(
    "config.secret_key_in_source",
    Level.ERROR,
    "SECRET_KEY's value is written in myapp/settings.py (tracked by git).",
    hint="Move the key to the environment.",
    tags=("config", "security"),
    observed={"file": "myapp/settings.py"},
)
CRASHED = Finding(
    "prodready.check_crashed",
    Level.ERROR,
    "check demo.crashes raised ZeroDivisionError: division by zero",
    hint="A bug in the check or in what it inspects.",
    tags=("prodready", "demo"),
    observed={"check": "demo.crashes", "exception": "ZeroDivisionError"},
)


def sample_report(*outcomes: CheckOutcome, hostname: str = "web-1") -> Report:
    """A live report from pid 1234 on ``hostname`` holding ``outcomes``."""
    return Report(
        outcomes={outcome.check_id: outcome for outcome in outcomes},
        worker=WorkerInfo(pid=1234, hostname=hostname, server="gunicorn/23.0.0"),
        generated_at=GENERATED_AT,
        mode="live",
    )


def mixed_report() -> Report:
    """One check of each kind: passed, failing, below the default gate, silenced,
    skipped, crashed."""
    return sample_report(
        CheckOutcome("config.testing", Status.PASS, duration=0.001),
        CheckOutcome("config.debug", Status.FAIL, (DEBUG_ON,), duration=0.002),
        CheckOutcome("config.max_content_length", Status.FAIL, (NO_BODY_LIMIT,)),
        CheckOutcome("cookies.session_secure", Status.FAIL, (INSECURE_SESSION,)),
        CheckOutcome("server.workers", Status.SKIPPED, reason="not under gunicorn"),
        CheckOutcome("demo.crashes", Status.ERROR, (CRASHED,), reason="raised ZeroDivisionError"),
    )
