"""The scan of the app's source that the use-aware checks read (checks/_code_use.py)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from flask_prodready.checks import _code_use
from flask_prodready.checks._code_use import CLI, MODULE, REQUEST, TASK, CodeUse, code_use


def scan(root: Path, files: dict[str, str]) -> CodeUse:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return _code_use._scan(root, time.monotonic() + 10)


def places(found: CodeUse) -> list[tuple[str, str, list[str]]]:
    """(function, file, contexts) of each external url_for call."""
    return [(p.function, p.path, sorted(p.contexts)) for p in found.external_urls]


class TestWhereUrlsAreBuilt:
    def test_each_kind_of_place(self, tmp_path: Path) -> None:
        """Routes, view classes, CLI commands, Celery and RQ jobs, threads and module level
        are told apart."""
        found = scan(
            tmp_path,
            {
                "app/views.py": """
                    from flask import url_for
                    from flask.views import MethodView

                    @bp.route("/")
                    def index():
                        return url_for("index", _external=True)

                    class Feed(MethodView):
                        def get(self):
                            return url_for("feed", _external=True)

                    @app.cli.command("digest")
                    def digest():
                        url_for("index", _external=True)

                    @shared_task
                    def remind():
                        url_for("index", _external=True)

                    def export():
                        url_for("index", _external=True)

                    def notify():
                        url_for("index", _external=True)

                    queue.enqueue(export)
                    threading.Thread(target=notify).start()
                    HOME = url_for("index", _external=True)
                """,
            },
        )
        assert places(found) == [
            ("", "app/views.py", [MODULE]),
            ("index", "app/views.py", [REQUEST]),
            ("Feed.get", "app/views.py", [REQUEST]),
            ("digest", "app/views.py", [CLI]),
            ("remind", "app/views.py", [TASK]),
            ("export", "app/views.py", [TASK]),
            ("notify", "app/views.py", [TASK]),
        ]

    def test_helpers_take_the_places_of_their_callers(self, tmp_path: Path) -> None:
        """A helper in another module is placed where the functions calling it run, and
        knows it sends mail."""
        found = scan(
            tmp_path,
            {
                "app/email.py": """
                    from flask import url_for
                    from flask_mail import Message

                    def send_reset_email(user):
                        link = url_for("reset", token=user.token, _external=True)
                        mail.send(Message("Reset", recipients=[user.email], body=link))
                """,
                "app/auth.py": """
                    from . import email

                    @bp.post("/reset")
                    def reset():
                        email.send_reset_email(current_user)

                    @click.command()
                    @with_appcontext
                    def resend():
                        email.send_reset_email(admin)
                """,
            },
        )
        [place] = found.external_urls
        assert (place.function, sorted(place.contexts), place.sends_mail) == (
            "send_reset_email",
            [CLI, REQUEST],
            True,
        )

    def test_external_false_and_literal_schemes(self, tmp_path: Path) -> None:
        """_external=False is not external; _scheme="https" is recorded as a literal scheme."""
        found = scan(
            tmp_path,
            {
                "a.py": """
                    url_for("a", _external=False)
                    url_for("b")
                    url_for("c", _external=True, _scheme="https")
                """
            },
        )
        assert [(p.line, p.literal_scheme) for p in found.external_urls] == [(4, True)]


class TestRememberAndHost:
    def test_remember_arguments(self, tmp_path: Path) -> None:
        """remember=True, a positional True and an expression count; False and None do not."""
        found = scan(
            tmp_path,
            {
                "auth.py": """
                    login_user(user)
                    login_user(user, remember=False)
                    login_user(user, remember=None)
                    login_user(user, remember=True)
                    login_user(user, True)
                    login_user(user, remember=form.remember_me.data)
                """
            },
        )
        assert [p.line for p in found.remember_logins] == [5, 6, 7]

    def test_request_host_reads(self, tmp_path: Path) -> None:
        """request.host_url and url_root are recorded, and request.host put after a scheme;
        request.host alone (an audit log's server name) and other attributes are not."""
        found = scan(
            tmp_path,
            {
                "views.py": """
                    from flask import request
                    a = request.host_url
                    b = request.url_root
                    c = f"https://{request.host}/reset"
                    d = "http://" + request.host + "/reset"
                    e = "%s://%s" % (scheme, request.host)
                    f = "https://{}/".format(request.host)
                    g = audit(server=request.host)
                    h = request.path
                """
            },
        )
        assert [p.line for p in found.request_hosts] == [3, 4, 5, 6, 7, 8]


class TestBounds:
    def test_skips_tests_virtualenvs_and_broken_files(self, tmp_path: Path) -> None:
        """Tests folders, test files, virtualenvs and unparsable files are not read."""
        (tmp_path / "venv").mkdir()
        (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
        found = scan(
            tmp_path,
            {
                "tests/test_views.py": "login_user(u, remember=True)\n",
                "app/test_x.py": "login_user(u, remember=True)\n",
                "venv/lib/site.py": "login_user(u, remember=True)\n",
                "app/broken.py": "def login_user(:\n",
                "app/views.py": "x = 1\n",
            },
        )
        assert (found.remember_logins, found.files, found.complete) == ((), 2, True)

    def test_stops_at_the_file_limit(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """More files than MAX_FILES: the result says it is incomplete."""
        monkeypatch.setattr(_code_use, "MAX_FILES", 2)
        found = scan(tmp_path, {f"m{i}.py": "x = 1\n" for i in range(4)})
        assert (found.files, found.complete) == (2, False)

    def test_result_is_reused(self, tmp_path: Path) -> None:
        """A complete scan is kept: a file added afterwards is not seen until it expires."""
        _code_use.clear_cache()
        try:
            (tmp_path / "a.py").write_text("login_user(u)\n")
            first = code_use(tmp_path, wait=10)
            (tmp_path / "b.py").write_text("login_user(u, remember=True)\n")
            assert code_use(tmp_path, wait=10) is first
        finally:
            _code_use.clear_cache()
