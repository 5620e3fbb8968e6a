"""Silences: a finding id accepted on purpose, with a reason and, optionally, an end date.

A silence comes from ``PRODREADY_SILENCED`` (the app's config) or from
``[tool.prodready.silenced]`` of the project's ``pyproject.toml`` (``flask readiness``).
Both spell one the same way: ``"reason"``, or ``{"reason": "...", "until": date}``
where ``until`` is a :class:`datetime.date` (what TOML makes of ``2027-03-31``) or the
string ``"YYYY-MM-DD"``. A silence silences through its ``until`` day; from the next
day it silences nothing and ``prodready.silence_expired`` reports it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Where a silence comes from unless said otherwise (the app's config).
CONFIG_ORIGIN = "PRODREADY_SILENCED"
#: The keys of a silence written as a dict.
SILENCE_KEYS = ("reason", "until")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXPECTED_DATE = "a date (datetime.date or 'YYYY-MM-DD')"


class SilenceError(ValueError):
    """A silence that cannot be read: the message names it and what it must be."""

    @classmethod
    def expecting(cls, where: str, expected: str, value: Any) -> SilenceError:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return cls(f"{where} must be {expected}, got {shown}")


@dataclass(frozen=True)
class Silence:
    """Why a finding id is accepted, until when (``None``: for good), and who said so."""

    reason: str
    until: datetime.date | None = None
    origin: str = CONFIG_ORIGIN

    def expired(self, today: datetime.date) -> bool:
        """Whether the silence no longer silences: its ``until`` day is over."""
        return self.until is not None and self.until < today

    @property
    def text(self) -> str:
        """The reason as a silenced finding carries it (``silence_reason``): with the date
        when there is one, so every format shows how long the acceptance lasts."""
        if self.until is None:
            return self.reason
        return f"{self.reason} (until {self.until.isoformat()})"


def parse_date(value: object, where: str) -> datetime.date:
    """``value`` (a date, or ``'YYYY-MM-DD'``) as a date; :class:`SilenceError` otherwise."""
    if isinstance(value, datetime.datetime):  # a date and a time: say which day is meant
        raise SilenceError.expecting(where, _EXPECTED_DATE + " without a time", value)
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass  # 2027-02-30: the right shape, no such day
    raise SilenceError.expecting(where, _EXPECTED_DATE, value)


def parse_silence(value: object, where: str, *, origin: str = CONFIG_ORIGIN) -> Silence:
    """One silence, ``"reason"`` or ``{"reason": ..., "until": ...}``, checked.

    ``where`` names it in errors (``PRODREADY_SILENCED['config.debug']``).
    """
    if isinstance(value, str):
        if not value.strip():
            raise SilenceError.expecting(where, "a non-empty reason", value)
        return Silence(value, origin=origin)
    if not isinstance(value, Mapping):
        raise SilenceError.expecting(
            where, "a reason (a string) or {'reason': '...', 'until': 'YYYY-MM-DD'}", value
        )
    for key in value:
        if key not in SILENCE_KEYS:
            raise SilenceError(
                f"{where} has an unknown key {key!r}: a silence has only 'reason' and 'until'"
            )
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise SilenceError.expecting(f"{where}['reason']", "a non-empty string", reason)
    until = value.get("until")
    return Silence(
        reason,
        None if until is None else parse_date(until, f"{where}['until']"),
        origin=origin,
    )


def active(silenced: Mapping[str, Silence], today: datetime.date) -> dict[str, str]:
    """``{id: reason}`` of the silences that still silence ``today``: what the runner applies."""
    return {cid: s.text for cid, s in silenced.items() if not s.expired(today)}
