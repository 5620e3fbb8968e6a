"""config.secret_key_in_source: how files are classified, what advice each gets, which
matches count, and bytes keys, against real git checkouts in temporary folders."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.checks._source_scan import (
    METHOD_GIT,
    METHOD_NO_GIT,
    clear_cache,
    find_secret_in_files,
    reads_as_words,
)
from flask_prodready.engine.findings import CheckOutcome

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
CHECK = "config.secret_key_in_source"
#: An owner no account of the machine has: the checkout is someone else's.
OTHER_UID = 54321
#: A key written by the app itself: 64 random bytes, a NUL among them.
BYTES_KEY = os.urandom(20) + b"\0" + os.urandom(43)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def _project(app: Flask) -> Path:
    root = Path(app.root_path).parent
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    return root


def _checkout(app: Flask) -> Path:
    root = _project(app)
    _git(root, "init", "-q")
    return root


def _details(outcome: CheckOutcome) -> list[tuple[str, str, str | None, object]]:
    return [(f.level.value, f.message, f.hint, f.observed) for f in outcome.findings]


def _never_shown(outcome: CheckOutcome, key: str | bytes) -> None:
    shown = repr(outcome)
    if isinstance(key, bytes):
        assert repr(key)[2:-1] not in shown
        assert key.hex() not in shown
    else:
        assert key not in shown


class TestClassification:
    key = "scan-" + secrets.token_hex(24)

    @pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files another owner")
    def test_checkout_of_another_user_is_still_read_with_git(self, make_app: MakeApp) -> None:
        """A checkout owned by another user is classified by git: tracked is an error."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        (root / "settings.cfg").write_text(f"SECRET_KEY = {self.key!r}\n")
        _git(root, "add", "settings.cfg")
        os.chown(root.parent, OTHER_UID, OTHER_UID)
        for folder, dirs, files in os.walk(root):
            for name in [".", *dirs, *files]:
                os.lchown(Path(folder, name), OTHER_UID, OTHER_UID)
        refused = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True)
        assert b"dubious ownership" in refused.stderr  # what plain git says here
        outcome = outcome_of(app, CHECK)
        assert _details(outcome) == [
            (
                "error",
                "SECRET_KEY's value is written in settings.cfg (tracked by git).",
                outcome.findings[0].hint,
                {"file": "settings.cfg", "method": METHOD_GIT},
            )
        ]
        assert "chmod" not in (outcome.findings[0].hint or "")
        _never_shown(outcome, self.key)

    def test_tracked_file_git_also_ignores_gets_no_chmod_advice(self, make_app: MakeApp) -> None:
        """A tracked file is source even when .gitignore names it: error, rotate, no chmod."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        held = root / "secrets.cfg"
        held.write_text(f"SECRET_KEY = {self.key!r}\n")
        held.chmod(0o644)
        _git(root, "add", "secrets.cfg")
        (root / ".gitignore").write_text("secrets.cfg\n")
        [finding] = outcome_of(app, CHECK).findings
        assert (finding.level.value, finding.observed) == (
            "error",
            {"file": "secrets.cfg", "method": METHOD_GIT},
        )
        assert "rotate" in (finding.hint or "")
        assert "chmod" not in (finding.hint or "")

    def test_ignored_secrets_file_gets_chmod_advice(self, make_app: MakeApp) -> None:
        """An ignored secrets file readable by others: a warning with chmod 600, method git."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        (root / ".gitignore").write_text("local.cfg\n")
        held = root / "local.cfg"
        held.write_text(f"SECRET_KEY = {self.key!r}\n")
        held.chmod(0o640)
        assert _details(outcome_of(app, CHECK)) == [
            (
                "warning",
                "SECRET_KEY is kept in local.cfg (ignored by git), but its mode is 0640: "
                "other users of the host can read it.",
                "Run: chmod 600 local.cfg",
                {"file": "local.cfg", "mode": "0640", "method": METHOD_GIT},
            )
        ]

    def test_checkout_git_cannot_read_says_why(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """When git cannot be used on a checkout, the finding names the method and why."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        (root / "app" / "settings.py").write_text(f"SECRET_KEY = {self.key!r}\n")
        empty = tmp_path / "no-git-here"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        assert _details(outcome_of(app, CHECK)) == [
            (
                "error",
                "SECRET_KEY's value is written in app/settings.py (a .py file of the app).",
                outcome_of(app, CHECK).findings[0].hint,
                {
                    "file": "app/settings.py",
                    "method": METHOD_NO_GIT,
                    "git_problem": "git is not installed",
                },
            )
        ]

    def test_scan_out_of_time_names_its_method(self, make_app: MakeApp) -> None:
        """A scan cut short by its deadline is incomplete and says how it classified."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        (root / "app" / "settings.py").write_text("SECRET_KEY = None\n")
        result = find_secret_in_files(
            self.key, root, Path(app.instance_path), deadline=time.monotonic() - 1
        )
        assert (result.complete, result.hits, result.method) == (False, (), METHOD_GIT)


class TestBytesKey:
    def test_key_file_the_app_wrote_readable_by_others(self, make_app: MakeApp) -> None:
        """64 random bytes in a git-ignored .app_secret_key at 0644: a warning; at 0600, quiet."""
        app = make_app(SECRET_KEY=BYTES_KEY)
        root = _checkout(app)
        (root / ".gitignore").write_text(".app_secret_key\n")
        held = root / ".app_secret_key"
        held.write_bytes(BYTES_KEY)
        held.chmod(0o644)
        outcome = outcome_of(app, CHECK)
        assert _details(outcome) == [
            (
                "warning",
                "SECRET_KEY is kept in .app_secret_key (ignored by git), but its mode is "
                "0644: other users of the host can read it.",
                "Run: chmod 600 .app_secret_key",
                {"file": ".app_secret_key", "mode": "0644", "method": METHOD_GIT},
            )
        ]
        _never_shown(outcome, BYTES_KEY)
        held.chmod(0o600)
        assert messages_of(app, CHECK) == []

    def test_key_file_in_an_ignored_folder(self, make_app: MakeApp) -> None:
        """A key file of any name inside a folder git ignores is found by its bytes."""
        app = make_app(SECRET_KEY=BYTES_KEY)
        root = _checkout(app)
        (root / ".gitignore").write_text("var/\n")
        (root / "var").mkdir()
        held = root / "var" / "session.key"
        held.write_bytes(BYTES_KEY)
        held.chmod(0o604)
        assert messages_of(app, CHECK) == [
            (
                "warning",
                "SECRET_KEY is kept in var/session.key (ignored by git), but its mode is "
                "0604: other users of the host can read it.",
            )
        ]

    def test_tracked_binary_file_is_source(self, make_app: MakeApp) -> None:
        """The raw key inside a tracked binary file is an error, NUL bytes and all."""
        app = make_app(SECRET_KEY=BYTES_KEY)
        root = _checkout(app)
        (root / "key.bin").write_bytes(b"\0\1\2" + BYTES_KEY + b"\xff")
        _git(root, "add", "key.bin")
        assert messages_of(app, CHECK) == [
            ("error", "SECRET_KEY's value is written in key.bin (tracked by git).")
        ]

    def test_key_file_without_git(self, make_app: MakeApp) -> None:
        """Without git, a key file of any name is judged by its mode, method named."""
        app = make_app(SECRET_KEY=BYTES_KEY)
        root = _project(app)
        held = root / "secret.key"
        held.write_bytes(BYTES_KEY)
        held.chmod(0o644)
        [finding] = outcome_of(app, CHECK).findings
        assert (finding.level.value, finding.observed) == (
            "warning",
            {"file": "secret.key", "mode": "0644", "method": METHOD_NO_GIT},
        )

    def test_hex_of_a_bytes_key(self, make_app: MakeApp) -> None:
        """A bytes key written as hex in tracked code is found."""
        app = make_app(SECRET_KEY=BYTES_KEY)
        root = _checkout(app)
        (root / "config.py").write_text(f"SECRET_KEY = bytes.fromhex({BYTES_KEY.hex()!r})\n")
        _git(root, "add", "config.py")
        assert messages_of(app, CHECK) == [
            ("error", "SECRET_KEY's value is written in config.py (tracked by git).")
        ]

    def test_str_key_in_its_bytes_form(self, make_app: MakeApp) -> None:
        """A text key written as a bytes literal (escaped UTF-8) is found."""
        key = "clé-" + secrets.token_hex(20)
        app = make_app(SECRET_KEY=key)
        root = _checkout(app)
        (root / "config.py").write_text(f"SECRET_KEY = {key.encode()!r}.decode()\n")
        _git(root, "add", "config.py")
        assert messages_of(app, CHECK) == [
            ("error", "SECRET_KEY's value is written in config.py (tracked by git).")
        ]


class TestKeyOfCommonWords:
    key = "secret key"

    def prose(self, root: Path) -> None:
        (root / "README.md").write_text(f"Keep the {self.key} out of git.\n'{self.key}'\n")
        (root / "app" / "views.py").write_text(
            f'# signs cookies with the {self.key}\n# SECRET_KEY = "{self.key}"\nx = 1\n'
        )
        (root / "app" / "templates").mkdir()
        (root / "app" / "templates" / "help.html").write_text(f'<p>"{self.key}"</p>\n')

    def test_prose_and_comments_are_no_leak(self, make_app: MakeApp) -> None:
        """The phrase in a README, a template and .py comments: nothing is reported."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        self.prose(root)
        _git(root, "add", ".")
        assert messages_of(app, CHECK) == []

    def test_prose_without_git_is_no_leak(self, make_app: MakeApp) -> None:
        """Without git too, the phrase in prose or a comment is no finding."""
        app = make_app(SECRET_KEY=self.key)
        self.prose(_project(app))
        assert messages_of(app, CHECK) == []

    def test_string_literal_in_tracked_config_is_found(self, make_app: MakeApp) -> None:
        """The phrase as a string literal in a tracked config.py is an error; prose is not."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        self.prose(root)
        (root / "config.py").write_text(f'DEBUG = False  # "x"\nSECRET_KEY = "{self.key}"\n')
        _git(root, "add", ".")
        outcome = outcome_of(app, CHECK)
        assert messages_of(app, CHECK) == [
            ("error", "SECRET_KEY's value is written in config.py (tracked by git).")
        ]
        _never_shown(outcome, self.key)

    @pytest.mark.parametrize(
        ("name", "text"),
        [
            (".env", f"SECRET_KEY={key}\n"),
            ("deploy.env", f"export SECRET_KEY={key}  # for now\n"),
            ("app.ini", f"[app]\nsecret_key = {key}\n"),
            ("settings.yaml", f"secret_key: {key}\n"),
            ("app.py", f"app.secret_key = '{key}'\n"),
        ],
    )
    def test_assignments_are_found(self, make_app: MakeApp, name: str, text: str) -> None:
        """KEY=phrase, key = phrase, key: phrase and 'phrase' in code or config count."""
        app = make_app(SECRET_KEY=self.key)
        root = _checkout(app)
        (root / name).write_text(text)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"SECRET_KEY's value is written in {name} (not ignored by git, so the next "
                "`git add` commits it).",
            )
        ]

    def test_long_passphrase_counts_only_as_a_literal(self, make_app: MakeApp) -> None:
        """A long key of words is matched as a literal, not in a README's prose."""
        key = "correct horse battery staple and a quiet river"
        app = make_app(SECRET_KEY=key)
        root = _checkout(app)
        (root / "README.md").write_text(f"We say: {key}.\n")
        _git(root, "add", ".")
        assert messages_of(app, CHECK) == []
        (root / "config.py").write_text(f"SECRET_KEY = {key!r}\n")
        clear_cache()  # a running app's files do not change; these did
        assert [m for _, m in messages_of(app, CHECK)] == [
            "SECRET_KEY's value is written in config.py (not ignored by git, so the next "
            "`git add` commits it)."
        ]

    def test_strong_key_is_found_in_prose_too(self, make_app: MakeApp) -> None:
        """A random key is a leak wherever it stands, a README included."""
        key = secrets.token_urlsafe(48)
        app = make_app(SECRET_KEY=key)
        root = _checkout(app)
        (root / "README.md").write_text(f"The key is {key} for now.\n")
        _git(root, "add", ".")
        assert messages_of(app, CHECK) == [
            ("error", "SECRET_KEY's value is written in README.md (tracked by git).")
        ]


@pytest.mark.parametrize(
    ("key", "wordy"),
    [
        ("correct horse battery staple", True),
        ("Secret Key For The Production App", True),
        ("thisismysupersecretkeyforthisapp", True),
        ("8c1f0f6b3b1d4e0a9f7e6d5c4b3a291807f6e5d4c3b2a19", False),
        ("qR7-xKp2_ZmWv9LtYbNc4HsJdE6uFgA0iOoPe3", False),
        ("kJhGfDsAqWeRtYuIoPlMnBvCxZaSdFgHjKlQwErT", False),
        (b"\x00\x01binary", False),
    ],
)
def test_reads_as_words(key: str | bytes, wordy: bool) -> None:
    """Keys of words (any case pattern a word has) read as words; random keys do not."""
    assert reads_as_words(key) is wordy
