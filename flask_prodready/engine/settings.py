"""The ``PRODREADY_*`` configuration keys: their defaults and their validation.

Every key is documented once, in ``docs/configuration.md``. ``init_app`` sets the
defaults with ``setdefault`` and then reads all keys through :func:`load_settings`,
so a wrong type or range fails start-up with a ``ValueError`` naming the key.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .silences import Silence, parse_silence

#: Shortest bearer token accepted: a guessable token would expose the report.
MIN_TOKEN_LENGTH = 16
#: RFC 6750's b64token: what a client can send after ``Bearer`` in a header.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: Upper bound for the per-check timeout; a report slower than this is no health check.
MAX_CHECK_TIMEOUT = 300.0
#: Longest evidence window: a day of traffic is already more than a verdict should carry.
MAX_EVIDENCE_WINDOW = 86400.0

_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$")


@dataclass(frozen=True)
class Settings:
    """The validated ``PRODREADY_*`` values of one app."""

    token: str | None
    healthz_path: str
    readiness_path: str
    healthz_checks: tuple[str, ...]
    #: ``{check_id: Silence}``: each reason and, when it ends, its ``until`` date.
    silenced: Mapping[str, Silence]
    check_timeout: float
    cache_seconds: float
    upload_folder: str | None
    backup_path: str | None
    backup_max_age: float
    pip_audit_args: tuple[str, ...]
    evidence_window: float = 900.0
    #: The host's nginx configuration and the server's systemd unit file, for the
    #: ``nginx.*`` and ``supervision.*`` checks (``None``: found by the checks).
    nginx_config: str | None = None
    systemd_unit: str | None = None


def set_defaults(config: MutableMapping[str, Any]) -> None:
    """Give every key its documented default without overriding what the app set."""
    config.setdefault("PRODREADY_TOKEN", os.environ.get("PRODREADY_TOKEN") or None)
    config.setdefault("PRODREADY_HEALTHZ_PATH", "/healthz")
    config.setdefault("PRODREADY_READINESS_PATH", "/_readiness")
    config.setdefault("PRODREADY_HEALTHZ_CHECKS", [])
    config.setdefault("PRODREADY_SILENCED", {})
    config.setdefault("PRODREADY_CHECK_TIMEOUT", 2.0)
    config.setdefault("PRODREADY_CACHE_SECONDS", 5.0)
    config.setdefault("PRODREADY_UPLOAD_FOLDER", None)
    config.setdefault("PRODREADY_BACKUP_PATH", None)
    config.setdefault("PRODREADY_BACKUP_MAX_AGE", 26)
    config.setdefault("PRODREADY_PIP_AUDIT_ARGS", [])
    config.setdefault("PRODREADY_EVIDENCE_WINDOW", 900)
    # Facts of the host, so the environment may give them (a unit's Environment=).
    config.setdefault("PRODREADY_NGINX_CONFIG", os.environ.get("PRODREADY_NGINX_CONFIG") or None)
    config.setdefault("PRODREADY_SYSTEMD_UNIT", os.environ.get("PRODREADY_SYSTEMD_UNIT") or None)


def _fail(key: str, expected: str, value: Any) -> ValueError:
    # Never echo a token: the message may end up in a log.
    shown = "<hidden>" if key == "PRODREADY_TOKEN" else repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(f"{key} must be {expected}, got {shown}")


def _number(
    config: Mapping[str, Any], key: str, *, minimum: float, allow_zero: bool, unit: str = "seconds"
) -> float:
    value = config[key]
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, f"a number of {unit} {bound}", value)
    number = float(value)
    if not math.isfinite(number) or number < minimum or (number == minimum and not allow_zero):
        raise _fail(key, f"a finite number {bound}", value)
    return number


def _path(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    if (
        not isinstance(value, str)
        or not _PATH_PATTERN.match(value)
        or "//" in value
        or value.endswith("/")
    ):
        raise _fail(
            key, "a URL path starting with '/', without a trailing '/' (like '/healthz')", value
        )
    return value


def _optional_folder(config: Mapping[str, Any], key: str, what: str = "folder") -> str | None:
    value = config[key]
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"None or a {what} path", value)
    return value


def _string_list(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = config[key]
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise _fail(key, "a list of strings", value)
    for item in value:
        if not isinstance(item, str) or not item:
            raise _fail(key, "a list of non-empty strings", value)
    return tuple(value)


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Read and validate every ``PRODREADY_*`` key; raise ``ValueError`` naming a bad one."""
    token = config["PRODREADY_TOKEN"]
    if token is not None:
        if not isinstance(token, str):
            raise _fail("PRODREADY_TOKEN", "None or a string", token)
        if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
            raise ValueError(
                f"PRODREADY_TOKEN must be at least {MIN_TOKEN_LENGTH} characters without "
                "surrounding spaces; make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not TOKEN_PATTERN.fullmatch(token):
            # A client sends the token in a header: outside RFC 6750's token characters
            # (non-ASCII, spaces, quotes) it could be configured but never presented.
            raise ValueError(
                "PRODREADY_TOKEN must use only the characters of an RFC 6750 bearer token "
                "(ASCII letters, digits, '-', '.', '_', '~', '+', '/', then '=' at the end); "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )

    silenced = config["PRODREADY_SILENCED"]
    if not isinstance(silenced, Mapping):
        raise _fail("PRODREADY_SILENCED", "a dict of {check_id: reason}", silenced)
    silences: dict[str, Silence] = {}
    for check_id, reason in silenced.items():
        if (
            not isinstance(check_id, str)
            or not isinstance(reason, (str, Mapping))
            or (isinstance(reason, str) and not reason.strip())
        ):
            raise _fail(
                "PRODREADY_SILENCED",
                "a dict of {check_id: reason} with a non-empty reason for each id "
                "(or {check_id: {'reason': '...', 'until': 'YYYY-MM-DD'}})",
                {check_id: reason},
            )
        # A dict form's errors name the entry and its key: PRODREADY_SILENCED['x']['until'].
        silences[check_id] = parse_silence(reason, f"PRODREADY_SILENCED[{check_id!r}]")

    healthz_path = _path(config, "PRODREADY_HEALTHZ_PATH")
    readiness_path = _path(config, "PRODREADY_READINESS_PATH")
    if healthz_path == readiness_path:
        raise ValueError(
            "PRODREADY_HEALTHZ_PATH and PRODREADY_READINESS_PATH must differ, "
            f"both are {healthz_path!r}"
        )

    timeout = _number(config, "PRODREADY_CHECK_TIMEOUT", minimum=0.0, allow_zero=False)
    if timeout > MAX_CHECK_TIMEOUT:
        raise _fail("PRODREADY_CHECK_TIMEOUT", f"at most {MAX_CHECK_TIMEOUT:g} seconds", timeout)

    window = _number(config, "PRODREADY_EVIDENCE_WINDOW", minimum=0.0, allow_zero=False)
    if window > MAX_EVIDENCE_WINDOW:
        raise _fail("PRODREADY_EVIDENCE_WINDOW", f"at most {MAX_EVIDENCE_WINDOW:g} seconds", window)

    return Settings(
        token=token,
        healthz_path=healthz_path,
        readiness_path=readiness_path,
        healthz_checks=_string_list(config, "PRODREADY_HEALTHZ_CHECKS"),
        silenced=silences,
        check_timeout=timeout,
        cache_seconds=_number(config, "PRODREADY_CACHE_SECONDS", minimum=0.0, allow_zero=True),
        upload_folder=_optional_folder(config, "PRODREADY_UPLOAD_FOLDER"),
        backup_path=_optional_folder(config, "PRODREADY_BACKUP_PATH"),
        backup_max_age=_number(
            config, "PRODREADY_BACKUP_MAX_AGE", minimum=0.0, allow_zero=False, unit="hours"
        ),
        pip_audit_args=_string_list(config, "PRODREADY_PIP_AUDIT_ARGS"),
        evidence_window=window,
        nginx_config=_optional_folder(config, "PRODREADY_NGINX_CONFIG", "file"),
        systemd_unit=_optional_folder(config, "PRODREADY_SYSTEMD_UNIT", "file"),
    )
