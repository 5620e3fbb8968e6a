"""static.upload_folder: real folders around a temporary app (root tmp/project/app)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import ProdReady

from ..support import GOOD_CONFIG, messages_of, outcome_of

MakeApp = Callable[..., Flask]
CHECK = "static.upload_folder"
#: A user without rights on root's files (nobody on Debian).
UNPRIVILEGED_UID = 65534


class TestInsideTheCode:
    def test_fires_inside_the_app_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Uploads under app.root_path are lost or served on the next deploy."""
        root = tmp_path / "project" / "app"
        (root / "uploads").mkdir(parents=True)
        app = make_app(UPLOAD_FOLDER=str(root / "uploads"))
        assert messages_of(app, CHECK) == [
            (
                "warning",
                f"The upload folder {root / 'uploads'} (UPLOAD_FOLDER) is inside the app's code "
                f"folder {root}: uploads are lost or served when the next deploy replaces the "
                "code.",
            )
        ]

    def test_fires_inside_the_project_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Uploads in the project folder (beside pyproject.toml) count as inside the code."""
        project = tmp_path / "project"
        (project / "media").mkdir(parents=True)
        (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
        app = make_app(MEDIA_ROOT=str(project / "media"))
        assert messages_of(app, CHECK) == [
            (
                "warning",
                f"The upload folder {project / 'media'} (MEDIA_ROOT) is inside the project "
                f"folder {project}: uploads are lost or served when the next deploy replaces "
                "the code.",
            )
        ]

    def test_fires_inside_the_static_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Uploads in the static folder are served to anyone, scripts included."""
        static = tmp_path / "project" / "app" / "static"
        (static / "uploads").mkdir(parents=True)
        app = make_app(PRODREADY_UPLOAD_FOLDER=str(static / "uploads"))
        assert messages_of(app, CHECK) == [
            (
                "warning",
                f"The upload folder {static / 'uploads'} (PRODREADY_UPLOAD_FOLDER) is inside the "
                f"static folder {static}: every upload is served publicly as a static file, "
                "HTML and scripts included.",
            )
        ]

    def test_relative_folder_is_read_from_the_working_directory(
        self, make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A relative path means what open() makes of it: relative to the working directory."""
        root = tmp_path / "project" / "app"
        (root / "uploads").mkdir(parents=True)
        monkeypatch.chdir(root)
        [(_, message)] = messages_of(make_app(UPLOAD_FOLDER="uploads"), CHECK)
        assert message.startswith(f"The upload folder {root / 'uploads'} (UPLOAD_FOLDER) is inside")

    def test_quiet_outside_the_code(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A writable folder of its own outside the project: no finding."""
        uploads = tmp_path / "data" / "uploads"
        uploads.mkdir(parents=True)
        assert messages_of(make_app(UPLOAD_FOLDER=str(uploads)), CHECK) == []

    def test_quiet_through_a_symlink_out_of_the_code(
        self, make_app: MakeApp, tmp_path: Path
    ) -> None:
        """A symlink in the code to a folder outside it (a shared folder kept across
        deploys) is judged where it points."""
        shared = tmp_path / "shared" / "uploads"
        shared.mkdir(parents=True)
        root = tmp_path / "project" / "app"
        root.mkdir(parents=True)
        (root / "uploads").symlink_to(shared, target_is_directory=True)
        assert messages_of(make_app(UPLOAD_FOLDER=str(root / "uploads")), CHECK) == []

    def test_quiet_in_the_instance_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Flask's instance folder holds deployment data, not code: accepted."""
        app = make_app()
        uploads = Path(app.instance_path) / "uploads"
        uploads.mkdir(parents=True)
        app.config["UPLOAD_FOLDER"] = str(uploads)
        assert messages_of(app, CHECK) == []

    def test_setting_wins_over_the_app_keys(self, make_app: MakeApp, tmp_path: Path) -> None:
        """PRODREADY_UPLOAD_FOLDER is judged instead of UPLOAD_FOLDER when both are set."""
        uploads = tmp_path / "data"
        uploads.mkdir()
        app = make_app(
            PRODREADY_UPLOAD_FOLDER=str(uploads), UPLOAD_FOLDER=str(tmp_path / "project" / "app")
        )
        assert messages_of(app, CHECK) == []


class TestWritable:
    def test_fires_when_missing(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A folder that does not exist: saving an upload fails."""
        missing = tmp_path / "data" / "uploads"
        outcome = outcome_of(make_app(UPLOAD_FOLDER=missing), CHECK)
        assert [(f.level.value, f.message, f.hint) for f in outcome.findings] == [
            (
                "warning",
                f"The upload folder {missing} (UPLOAD_FOLDER) does not exist: saving an upload "
                "fails.",
                f"Create it, writable by the app's user: mkdir -p {missing}",
            )
        ]

    def test_fires_on_a_file(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A file where the folder should be is reported."""
        path = tmp_path / "uploads"
        path.write_text("")
        assert messages_of(make_app(UPLOAD_FOLDER=str(path)), CHECK) == [
            ("warning", f"The upload folder {path} (UPLOAD_FOLDER) is not a folder.")
        ]

    def test_fires_when_not_writable(self) -> None:
        """A folder the process's user cannot write to is reported, naming the uid.

        As root every folder is writable, so the check then runs while the process's real
        and effective uid are those of an unprivileged user, in a world-readable temporary
        tree; the uid is restored at once.
        """
        with world_readable_tree() as base:
            uploads = base / "data" / "uploads"
            uploads.mkdir(parents=True, mode=0o755)
            uploads.chmod(0o555)
            app = Flask("testapp", root_path=str(base / "app"), instance_path=str(base / "inst"))
            app.config.update(GOOD_CONFIG, UPLOAD_FOLDER=str(uploads))
            ProdReady(app)
            with unprivileged() as uid:
                found = messages_of(app, CHECK)
        assert found == [
            (
                "warning",
                f"The upload folder {uploads} (UPLOAD_FOLDER) is not writable by this process "
                f"(uid {uid}): saving an upload fails.",
            )
        ]


class TestSkipped:
    def test_without_an_upload_folder(self, make_app: MakeApp) -> None:
        """No folder configured: skipped with a reason naming the settings."""
        outcome = outcome_of(make_app(), CHECK)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "no upload folder is configured (PRODREADY_UPLOAD_FOLDER, UPLOAD_FOLDER or MEDIA_ROOT)",
        )

    def test_with_a_value_that_is_no_path(self, make_app: MakeApp) -> None:
        """UPLOAD_FOLDER = 42 cannot be judged: skipped, naming the type."""
        outcome = outcome_of(make_app(UPLOAD_FOLDER=42), CHECK)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "UPLOAD_FOLDER is a int, not a folder path",
        )


@contextlib.contextmanager
def world_readable_tree() -> Iterator[Path]:
    """A temporary folder (mode 755) anyone can read, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="prodready-static-"))
    try:
        base.chmod(0o755)
        (base / "app").mkdir(mode=0o755)
        yield base
    finally:
        for folder, _, _ in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base)


@contextlib.contextmanager
def unprivileged() -> Iterator[int]:
    """As root, run the block with real and effective uid of an unprivileged user (the
    saved uid stays 0 so it can come back); as any other user, as that user."""
    if os.geteuid() != 0:
        yield os.getuid()
        return
    os.setresuid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, 0)
    try:
        yield UNPRIVILEGED_UID
    finally:
        os.setresuid(0, 0, 0)


class TestServedByApp:
    def app_with_static(self, make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
        app = make_app()
        static = Path(app.root_path) / "static"
        static.mkdir(exist_ok=True)
        (static / "site.css").write_text("body {}\n")
        return app

    def test_fires_when_flask_serves_a_static_file(
        self, make_app: Callable[..., Flask], tmp_path: Path
    ) -> None:
        """/static files served through Flask a few times among pages: a warning."""
        app = self.app_with_static(make_app, tmp_path)
        client = app.test_client()
        for _ in range(3):
            with client.get("/static/site.css") as response:  # closes the file it streams
                assert response.status_code == 200
        for _ in range(20):
            client.get("/nowhere")
        assert messages_of(app, "static.served_by_app", "live") == [
            (
                "warning",
                "The app itself served 3 of 23 responses to 127.0.0.1 from its static folder "
                "(e.g. /static/site.css): every file holds a worker that could serve a page.",
            )
        ]

    def test_one_stray_static_request_raises_nothing(
        self, make_app: Callable[..., Flask], tmp_path: Path
    ) -> None:
        """One static file among 20 pages could be a stray request: no finding."""
        app = self.app_with_static(make_app, tmp_path)
        client = app.test_client()
        client.get("/static/site.css").close()
        for _ in range(20):
            client.get("/nowhere")
        assert messages_of(app, "static.served_by_app", "live") == []

    def test_quiet_when_only_pages_are_served(
        self, make_app: Callable[..., Flask], tmp_path: Path
    ) -> None:
        """Pages only (static left to the proxy): no finding; a missing file is no serving."""
        app = self.app_with_static(make_app, tmp_path)
        client = app.test_client()
        for _ in range(12):
            client.get("/nowhere")
            client.get("/static/missing.css").close()
        assert messages_of(app, "static.served_by_app", "live") == []

    def test_skipped_without_traffic(self, make_app: Callable[..., Flask]) -> None:
        """No request seen: skipped."""
        assert outcome_of(make_app(), "static.served_by_app", "live").status.value == "skipped"
