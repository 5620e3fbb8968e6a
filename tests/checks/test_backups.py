"""backups.stale: real files whose modification times are set with os.utime."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.checks import backups
from flask_prodready.checks.backups import describe_age

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
CHECK = "backups.stale"
HOUR = 3600.0
DAY = 24 * HOUR


def backup(folder: Path, name: str, age: float) -> Path:
    """A file ``age`` seconds old under ``folder``."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"-- dump --\n")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


class TestStale:
    def test_fires_when_the_newest_file_is_too_old(self, make_app: MakeApp, tmp_path: Path) -> None:
        """The newest file, searched recursively, is five days old: an error naming its age."""
        root = tmp_path / "backups"
        backup(root, "weekly/db-1.sql.gz", 12 * DAY)
        backup(root, "daily/db-2.sql.gz", 5 * DAY)
        outcome = outcome_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The newest backup under {root} is 120 hours (5.0 days) old "
                "(daily/db-2.sql.gz); the limit is 26 hours (PRODREADY_BACKUP_MAX_AGE).",
            )
        ]
        assert outcome.findings[0].observed == {
            "path": str(root),
            "newest": "daily/db-2.sql.gz",
            "age_hours": 120.0,
        }

    def test_quiet_when_a_recent_file_exists(self, make_app: MakeApp, tmp_path: Path) -> None:
        """One file younger than the limit, however deep, is enough."""
        root = tmp_path / "backups"
        backup(root, "old.sql.gz", 40 * DAY)
        backup(root, "2026/11/27/db.sql.gz", 2 * HOUR)
        assert messages_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK) == []

    def test_honours_the_max_age(self, make_app: MakeApp, tmp_path: Path) -> None:
        """PRODREADY_BACKUP_MAX_AGE = 2: a three-hour-old backup is stale."""
        root = tmp_path / "backups"
        backup(root, "db.sql.gz", 3 * HOUR)
        app = make_app(PRODREADY_BACKUP_PATH=str(root), PRODREADY_BACKUP_MAX_AGE=2)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The newest backup under {root} is 3.0 hours old (db.sql.gz); the limit is 2 "
                "hours (PRODREADY_BACKUP_MAX_AGE).",
            )
        ]

    def test_hidden_files_do_not_count(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A fresh lock file (.lock) does not hide a stale backup."""
        root = tmp_path / "backups"
        backup(root, "db.sql.gz", 3 * DAY)
        backup(root, ".lock", 0)
        [(_, message)] = messages_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK)
        assert message.startswith(f"The newest backup under {root} is 72 hours (3.0 days) old")

    def test_a_single_file(self, make_app: MakeApp, tmp_path: Path) -> None:
        """The path may be the backup file itself (a "latest" link): judged by its own age."""
        latest = backup(tmp_path, "latest.sql.gz", 3 * DAY)
        assert messages_of(make_app(PRODREADY_BACKUP_PATH=str(latest)), CHECK) == [
            (
                "error",
                f"The backup file {latest} (PRODREADY_BACKUP_PATH) is 72 hours (3.0 days) old; "
                "the limit is 26 hours (PRODREADY_BACKUP_MAX_AGE).",
            )
        ]
        os.utime(latest)
        assert messages_of(make_app(PRODREADY_BACKUP_PATH=str(latest)), CHECK) == []


class TestNoBackup:
    def test_fires_on_an_empty_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A folder without any (visible) file: no backup was ever made there."""
        root = tmp_path / "backups"
        backup(root, ".keep", 0)
        (root / "empty-subfolder").mkdir()
        assert messages_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK) == [
            (
                "error",
                f"The backup folder {root} (PRODREADY_BACKUP_PATH) holds no file: no backup has "
                "been made there.",
            )
        ]

    def test_fires_on_a_missing_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A folder that does not exist is reported."""
        root = tmp_path / "nowhere"
        assert messages_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK) == [
            (
                "error",
                f"The backup folder {root} (PRODREADY_BACKUP_PATH) does not exist: no backup can "
                "be found.",
            )
        ]


class TestSkipped:
    def test_without_a_backup_path(self, make_app: MakeApp) -> None:
        """PRODREADY_BACKUP_PATH unset: skipped with that reason."""
        outcome = outcome_of(make_app(), CHECK)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "PRODREADY_BACKUP_PATH is not set: no backup folder to judge",
        )

    def test_when_the_walk_stops_before_a_recent_file(
        self, make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Out of files to look at with only old ones seen: skipped, never passed or failed."""
        monkeypatch.setattr(backups, "MAX_BACKUP_FILES", 3)
        root = tmp_path / "backups"
        for index in range(5):
            backup(root, f"db-{index}.sql.gz", 10 * DAY)
        outcome = outcome_of(make_app(PRODREADY_BACKUP_PATH=str(root)), CHECK)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"looked at 3 files under {root} without finding one younger than 26 hours before "
            "the limit (3 files or the check timeout); a newer one may exist",
        )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1800, "0.5 hours"),
        (26 * HOUR, "26.0 hours"),
        (47.9 * HOUR, "47.9 hours"),
        (5 * DAY, "120 hours (5.0 days)"),
    ],
)
def test_describe_age(seconds: float, text: str) -> None:
    """Ages read in hours, with days added from two days on."""
    assert describe_age(seconds) == text
