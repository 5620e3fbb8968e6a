"""nginx.*: the nginx configuration in front of the app, parsed with crossplane (unit level
on configurations written here; the deploy kit's site and its variants through the real
`flask readiness` command; real nginx and gunicorn in tests/integration/test_nginx_live.py)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_prodready.checks import nginx as nginx_checks
from flask_prodready.checks._nginx_config import (
    Endpoint,
    bind_endpoint,
    human_size,
    parse_config,
    parse_size,
    passes,
    reaches,
    select_location,
    set_headers,
    walk,
)
from flask_prodready.engine.server import GunicornSettings

from ..stacks import EXAMPLE_APP_NEEDS_SQLALCHEMY_2, SQLALCHEMY
from ..support import messages_of, outcome_of, results_of
from ..test_cli import run_flask

MakeApp = Callable[..., Flask]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SITE = PROJECT_ROOT / "deploy" / "nginx-example-app.conf"
DEPLOY_GUNICORN = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
NGINX_IDS = {
    "nginx.invalid",
    "nginx.upstream",
    "nginx.forwarded_headers",
    "nginx.static",
    "nginx.body_size",
    "nginx.server_name",
}

#: A site file (as in sites-available) proxying to gunicorn on 127.0.0.1:8000.
SITE = """\
upstream app {{
    server 127.0.0.1:8000 fail_timeout=0;
}}
server {{
    listen 443 ssl;
    server_name localhost;
    client_max_body_size 16m;
    location /static/ {{
        alias {static}/;
    }}
    location / {{
        proxy_pass http://app;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""

#: The deploy kit's tests load the example app, written for SQLAlchemy 2.0.
example_app_stack = pytest.mark.skipif(SQLALCHEMY < (2, 0), reason=EXAMPLE_APP_NEEDS_SQLALCHEMY_2)


def gunicorn(
    bind: str = "127.0.0.1:8000", forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
) -> GunicornSettings:
    """gunicorn's settings as the checks receive them, with ``bind``."""
    return GunicornSettings(
        workers=3,
        threads=1,
        worker_class="sync",
        worker_connections=1000,
        timeout=30,
        bind=(bind,),
        max_requests=0,
        max_requests_jitter=0,
        forwarded_allow_ips=forwarded_allow_ips,
        preload_app=False,
        source="gunicorn.conf.py",
    )


@pytest.fixture
def app(make_app: MakeApp, tmp_path: Path) -> Flask:
    """An app with a static folder, 16 MiB bodies, localhost hosts and ProxyFix(1, 1)."""
    made = make_app()
    static = Path(made.root_path) / "static"
    static.mkdir(exist_ok=True)
    (static / "style.css").write_text("body { color: black; }\n")
    made.wsgi_app = ProxyFix(made.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    return made


def site(tmp_path: Path, app: Flask, text: str = SITE, name: str = "site.conf") -> str:
    """The site ``text`` written to a file, the app's static folder filled in."""
    path = tmp_path / name
    path.write_text(text.format(static=app.static_folder))
    return str(path)


def judged(app: Flask, check_id: str, config: str, **kwargs: Any) -> list[tuple[str, str]]:
    """(level, message) of one nginx check on ``config``, gunicorn on 127.0.0.1:8000."""
    kwargs.setdefault("gunicorn", gunicorn())
    return messages_of(app, check_id, nginx_config=config, **kwargs)


def parsed_chain(text: str, tmp_path: Path, directive: str = "proxy_pass") -> Any:
    """The blocks around the first ``directive`` of ``text``."""
    (tmp_path / "t.conf").write_text(text)
    config = parse_config(str(tmp_path / "t.conf"))
    return next(chain for chain, node in walk(config.root) if node.name == directive)


# --- the pieces ----------------------------------------------------------------------------


class TestSizes:
    @pytest.mark.parametrize(
        ("written", "size"),
        [("1m", 1024**2), ("16M", 16 * 1024**2), ("0", 0), ("512k", 512 * 1024), ("2g", 2**31)],
    )
    def test_parses_nginx_sizes(self, written: str, size: int) -> None:
        """nginx's sizes: bytes, k, m, g in either case; 0 is 0 (unlimited)."""
        assert parse_size(written) == size

    def test_refuses_what_is_no_size(self) -> None:
        """A value nginx would refuse parses to None, never to a guess."""
        assert [parse_size(v) for v in ("16mb", "-1", "m", "1.5m")] == [None] * 4

    def test_human_sizes(self) -> None:
        """Sizes read in the largest whole unit."""
        assert [human_size(s) for s in (16 * 1024**2, 1024, 1000)] == [
            "16 MiB",
            "1 KiB",
            "1000 bytes",
        ]


class TestAddresses:
    @pytest.mark.parametrize(
        ("target", "bind"),
        [
            ("proxy_pass http://127.0.0.1:8000;", "127.0.0.1:8000"),
            ("proxy_pass http://127.0.0.1:8000/prefix/;", "127.0.0.1:8000"),
            ("proxy_pass http://localhost:8000;", "127.0.0.1:8000"),
            ("proxy_pass http://127.0.0.1:8000;", "localhost:8000"),
            ("proxy_pass http://127.0.0.1:8000;", "0.0.0.0:8000"),
            ("proxy_pass http://[::1]:8000;", "[::]:8000"),
            ("proxy_pass http://unix:/run/app.sock:;", "unix:/run/app.sock"),
            ("proxy_pass http://unix:/run/app.sock:/api/;", "unix:///run/app.sock"),
            ("uwsgi_pass unix:/run/app.sock;", "unix:/run/app.sock"),
            ("proxy_pass http://backend;", "127.0.0.1:8000"),
            ("proxy_pass http://backend;", "unix:/run/app.sock"),
        ],
    )
    def test_target_reaches_bind(self, tmp_path: Path, target: str, bind: str) -> None:
        """A proxy_pass or uwsgi_pass (an address, a unix socket, an upstream block by
        name) reaches gunicorn's bind, as nginx and gunicorn read them."""
        config = (
            "upstream backend { server 127.0.0.1:8000; server unix:/run/app.sock; }\n"
            f"server {{ listen 80; location / {{ {target} }} }}\n"
        )
        (tmp_path / "t.conf").write_text(config)
        (found,) = passes(parse_config(str(tmp_path / "t.conf")))
        endpoint = bind_endpoint(bind)
        assert endpoint is not None
        assert any(reaches(t, endpoint) for t in found.targets)

    @pytest.mark.parametrize(
        ("target", "bind"),
        [
            ("proxy_pass http://127.0.0.1:8001;", "127.0.0.1:8000"),
            ("proxy_pass http://127.0.0.2:8000;", "127.0.0.1:8000"),
            ("proxy_pass http://[::1]:8000;", "0.0.0.0:8000"),
            ("proxy_pass http://unix:/run/other.sock:;", "unix:/run/app.sock"),
            ("proxy_pass http://127.0.0.1:8000;", "unix:/run/app.sock"),
            ("proxy_pass http://127.0.0.1;", "127.0.0.1:8000"),
        ],
    )
    def test_target_misses_bind(self, tmp_path: Path, target: str, bind: str) -> None:
        """Another port, another loopback address, another socket, or nginx's default port
        80 do not reach the bind."""
        (tmp_path / "t.conf").write_text(f"server {{ listen 80; location / {{ {target} }} }}\n")
        (found,) = passes(parse_config(str(tmp_path / "t.conf")))
        endpoint = bind_endpoint(bind)
        assert endpoint is not None
        assert not any(reaches(t, endpoint) for t in found.targets)

    def test_binds_as_gunicorn_reads_them(self) -> None:
        """A host alone gets gunicorn's port 8000; fd:// has no address to compare."""
        assert bind_endpoint("localhost") == Endpoint("localhost", 8000)
        assert bind_endpoint("tcp://[::1]:9000") == Endpoint("::1", 9000)
        assert bind_endpoint(":8000") == Endpoint("", 8000)
        assert bind_endpoint("fd://3") is None


class TestInheritance:
    def test_location_without_headers_inherits_the_server_ones(self, tmp_path: Path) -> None:
        """proxy_set_header lines of the server (and http) level apply to a location that
        sets none."""
        chain = parsed_chain(
            "server { listen 80; proxy_set_header X-Forwarded-Proto $scheme;\n"
            "  location / { proxy_pass http://127.0.0.1:8000; } }\n",
            tmp_path,
        )
        assert {k: v for k, (v, _) in set_headers(chain).items()} == {
            "x-forwarded-proto": "$scheme"
        }

    def test_location_with_one_header_inherits_none(self, tmp_path: Path) -> None:
        """A single proxy_set_header in the location replaces all of the server's."""
        chain = parsed_chain(
            "server { listen 80; proxy_set_header X-Forwarded-Proto $scheme;\n"
            "  location / { proxy_pass http://127.0.0.1:8000; proxy_set_header Host $host; } }\n",
            tmp_path,
        )
        assert {k: v for k, (v, _) in set_headers(chain).items()} == {"host": "$host"}

    def test_uwsgi_params_read_as_headers(self, tmp_path: Path) -> None:
        """uwsgi_param HTTP_X_FORWARDED_PROTO is the X-Forwarded-Proto header of uwsgi."""
        chain = parsed_chain(
            "server { listen 80; location / { uwsgi_pass unix:/run/a.sock;\n"
            "  uwsgi_param HTTP_X_FORWARDED_PROTO $scheme; uwsgi_param QUERY_STRING $q; } }\n",
            tmp_path,
            "uwsgi_pass",
        )
        assert set(set_headers(chain, "uwsgi_param")) == {"x-forwarded-proto"}


class TestLocationSelection:
    def test_longest_prefix_regex_and_stop(self, tmp_path: Path) -> None:
        """nginx's order: exact, longest prefix unless a regex matches, ^~ stops regexes."""
        (tmp_path / "t.conf").write_text(
            "server { listen 80;\n"
            "  location / { proxy_pass http://127.0.0.1:8000; }\n"
            "  location /static/ { root /a; }\n"
            "  location ~* \\.css$ { root /b; }\n"
            "  location ^~ /media/ { root /c; }\n"
            "  location = /media/x.css { root /d; }\n"
            "}\n"
        )
        config = parse_config(str(tmp_path / "t.conf"))
        (server,) = config.root.children("server")

        def chosen(uri: str) -> tuple[str, ...]:
            return select_location(server, uri, ())[-1].args

        assert chosen("/static/x.js") == ("/static/",)
        assert chosen("/static/x.css") == ("~*", "\\.css$")
        assert chosen("/media/y.css") == ("^~", "/media/")
        assert chosen("/media/x.css") == ("=", "/media/x.css")
        assert chosen("/page") == ("/",)


# --- the checks ------------------------------------------------------------------------------


class TestFindingTheConfig:
    def test_skipped_when_none_is_found(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """No named configuration and no readable /etc/nginx/nginx.conf: skipped, saying so."""
        monkeypatch.setattr(nginx_checks, "DEFAULT_CONFIG", str(tmp_path / "missing.conf"))
        outcome = outcome_of(app, "nginx.invalid", gunicorn=gunicorn())
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith("no nginx configuration was found")

    def test_default_config_proxying_nothing_fronts_no_app(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A default nginx.conf that proxies nothing (a distribution's own) is not the app's
        proxy: its checks are skipped, not failed, and it is set aside by its text before
        the parser is loaded."""
        conf = tmp_path / "nginx.conf"
        conf.write_text("events {}\nhttp { server { listen 80; root /var/www/html; } }\n")
        monkeypatch.setattr(nginx_checks, "DEFAULT_CONFIG", str(conf))
        for check_id in ("nginx.upstream", "nginx.invalid"):
            outcome = outcome_of(app, check_id, gunicorn=gunicorn())
            assert outcome.status.value == "skipped"
            assert "proxies to nothing" in (outcome.reason or "")

    def test_a_default_config_proxying_through_an_include_is_judged(self, tmp_path: Path) -> None:
        """proxy_pass in a file the default config includes (sites-enabled/*, relative to
        its folder) is found, so that config is parsed and judged; a config whose includes
        proxy nothing is set aside."""
        (tmp_path / "sites-enabled").mkdir()
        (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include sites-enabled/*;\n}\n")
        assert not nginx_checks.mentions_a_proxy(str(tmp_path / "nginx.conf"))
        (tmp_path / "sites-enabled" / "app").write_text(
            "server { location / { proxy_pass http://127.0.0.1:8000; } }\n"
        )
        assert nginx_checks.mentions_a_proxy(str(tmp_path / "nginx.conf"))

    def test_skipped_with_an_install_hint_without_crossplane(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Without crossplane the checks are skipped, naming the extra to install."""
        monkeypatch.setitem(sys.modules, "crossplane", None)
        outcome = outcome_of(app, "nginx.invalid", nginx_config=site(tmp_path, app))
        assert outcome.status.value == "skipped"
        assert outcome.reason == "crossplane is not installed: pip install 'flask-prodready[nginx]'"


class TestInvalid:
    def test_fires_on_a_missing_brace(self, app: Flask, tmp_path: Path) -> None:
        """A block never closed is reported with crossplane's error, file and line."""
        path = site(tmp_path, app, SITE.rstrip().removesuffix("}}"))
        assert judged(app, "nginx.invalid", path) == [
            (
                "error",
                f"The nginx configuration {path} does not parse: {path}:16: unexpected end of "
                'file, expecting "}". nginx refuses to start or reload with it.',
            )
        ]

    def test_fires_on_a_directive_in_the_wrong_block(self, app: Flask, tmp_path: Path) -> None:
        """A site file is read from the http context: a location outside a server is refused."""
        path = site(tmp_path, app, SITE + "location /x/ {{ return 404; }}\n")
        [(_, message)] = judged(app, "nginx.invalid", path)
        assert f'{path}:18: "location" directive is not allowed here' in message

    def test_follows_includes(self, app: Flask, tmp_path: Path) -> None:
        """An error in an included file names that file; includes are relative to the main
        file's folder."""
        (tmp_path / "sites").mkdir()
        (tmp_path / "sites" / "app.conf").write_text("server { listen 80 }\n")
        main = tmp_path / "nginx.conf"
        main.write_text("events {}\nhttp { include sites/*.conf; }\n")
        [(_, message)] = judged(app, "nginx.invalid", str(main))
        assert (
            f'{tmp_path}/sites/app.conf:1: directive "listen" is not terminated by ";"' in message
        )

    def test_quiet_on_a_valid_site(self, app: Flask, tmp_path: Path) -> None:
        """A site file that parses passes."""
        assert judged(app, "nginx.invalid", site(tmp_path, app)) == []


class TestUpstream:
    def test_fires_on_another_port(self, app: Flask, tmp_path: Path) -> None:
        """An upstream on 127.0.0.1:8001 while gunicorn binds 127.0.0.1:8000 is an error."""
        path = site(tmp_path, app, SITE.replace("127.0.0.1:8000", "127.0.0.1:8001"))
        assert judged(app, "nginx.upstream", path) == [
            (
                "error",
                f"No proxy_pass or uwsgi_pass of {path} reaches the app, served on "
                f"127.0.0.1:8000 (from gunicorn.conf.py): nginx sends requests to location / "
                f"({path}:12) to 127.0.0.1:8001 (upstream app), so visitors get 502 Bad "
                "Gateway or another app.",
            )
        ]

    def test_fires_on_uwsgi_pass_to_gunicorn(self, app: Flask, tmp_path: Path) -> None:
        """uwsgi_pass to gunicorn's bind speaks the wrong protocol."""
        path = site(tmp_path, app, SITE.replace("proxy_pass http://app", "uwsgi_pass app"))
        [(level, message)] = judged(app, "nginx.upstream", path)
        assert level == "error"
        assert "uwsgi_pass speaks the uwsgi protocol, and gunicorn speaks HTTP" in message

    def test_quiet_when_a_location_reaches_the_bind(self, app: Flask, tmp_path: Path) -> None:
        """The upstream block's server is gunicorn's bind: passes."""
        assert judged(app, "nginx.upstream", site(tmp_path, app)) == []

    def test_quiet_on_a_unix_socket(self, app: Flask, tmp_path: Path) -> None:
        """proxy_pass http://unix:PATH: reaches gunicorn's unix:PATH bind."""
        text = SITE.replace("proxy_pass http://app", "proxy_pass http://unix:/run/app.sock:")
        settings = gunicorn("unix:/run/app.sock")
        assert judged(app, "nginx.upstream", site(tmp_path, app, text), gunicorn=settings) == []

    def test_skipped_without_a_bind_from_the_cli(self, app: Flask, tmp_path: Path) -> None:
        """Without --gunicorn-config the bind is unknown: skipped, saying how to give it."""
        outcome = outcome_of(app, "nginx.upstream", nginx_config=site(tmp_path, app))
        assert outcome.status.value == "skipped"
        assert outcome.reason == (
            "pass --gunicorn-config FILE to know the address the app is served on"
        )


class TestForwardedHeaders:
    def test_fires_without_x_forwarded_proto(self, app: Flask, tmp_path: Path) -> None:
        """A proxying location without X-Forwarded-Proto is an error."""
        text = SITE.replace("        proxy_set_header X-Forwarded-Proto $scheme;\n", "")
        path = site(tmp_path, app, text)
        assert judged(app, "nginx.forwarded_headers", path) == [
            (
                "error",
                f"The location / ({path}:12) that proxies to the app does not set "
                "X-Forwarded-Proto: the app cannot tell HTTPS from HTTP.",
            )
        ]

    def test_fires_when_the_location_replaces_inherited_headers(
        self, app: Flask, tmp_path: Path
    ) -> None:
        """Headers set on the server block do not reach a location with its own
        proxy_set_header lines: the message says why."""
        text = SITE.replace("        proxy_set_header X-Forwarded-Proto $scheme;\n", "").replace(
            "    client_max_body_size 16m;\n",
            "    client_max_body_size 16m;\n    proxy_set_header X-Forwarded-Proto $scheme;\n",
        )
        [(_, message)] = judged(app, "nginx.forwarded_headers", site(tmp_path, app, text))
        assert "does not set X-Forwarded-Proto (X-Forwarded-Proto set around it do not count" in (
            message
        )

    def test_fires_when_the_app_trusts_two_hops(self, app: Flask, tmp_path: Path) -> None:
        """ProxyFix(x_for=2) behind one nginx lets clients choose their address."""
        app.wsgi_app = ProxyFix(app.wsgi_app.app, x_for=2, x_proto=1)  # type: ignore[attr-defined,method-assign]
        path = site(tmp_path, app)
        assert judged(app, "nginx.forwarded_headers", path) == [
            (
                "error",
                f"The location / ({path}:12) that proxies to the app adds one X-Forwarded-For "
                "entry (nginx is one hop), but ProxyFix trusts x_for=2: unless 1 more proxies "
                "in front of nginx add theirs, clients choose the address the app sees.",
            )
        ]

    def test_fires_when_nothing_trusts_the_headers(self, app: Flask, tmp_path: Path) -> None:
        """Without ProxyFix, and gunicorn not trusting nginx's address, both are ignored."""
        app.wsgi_app = app.wsgi_app.app  # type: ignore[attr-defined,method-assign]
        settings = gunicorn(forwarded_allow_ips=("10.0.0.1",))
        [(_, message)] = judged(
            app, "nginx.forwarded_headers", site(tmp_path, app), gunicorn=settings
        )
        assert "nothing in the app trusts it (no ProxyFix with x_for=1)" in message
        assert "gunicorn's forwarded_allow_ips (10.0.0.1, from gunicorn.conf.py)" in message

    def test_quiet_with_all_three_and_one_hop(self, app: Flask, tmp_path: Path) -> None:
        """Host, X-Forwarded-For and -Proto set, ProxyFix(x_for=1, x_proto=1): passes."""
        assert judged(app, "nginx.forwarded_headers", site(tmp_path, app)) == []


class TestStatic:
    def test_fires_on_an_alias_elsewhere(self, app: Flask, tmp_path: Path) -> None:
        """An alias to another folder names both folders."""
        text = SITE.replace("alias {static}/;", f"alias {tmp_path}/elsewhere/;")
        path = site(tmp_path, app, text)
        assert judged(app, "nginx.static", path) == [
            (
                "warning",
                f"Location /static/ ({path}:8) of the server block localhost ({path}:4) serves "
                f"/static/ from {tmp_path}/elsewhere (`alias {tmp_path}/elsewhere/`), not from "
                f"the app's static folder {app.static_folder}: visitors get 404s or stale "
                "files.",
            )
        ]

    def test_fires_when_static_files_go_to_the_app(self, app: Flask, tmp_path: Path) -> None:
        """Without a static location, /static/ is proxied to the app."""
        text = SITE.replace("    location /static/ {{\n        alias {static}/;\n    }}\n", "")
        [(_, message)] = judged(app, "nginx.static", site(tmp_path, app, text))
        assert "location / (" in message
        assert "sends those requests to the app" in message

    def test_quiet_with_root_pointing_at_the_app(self, app: Flask, tmp_path: Path) -> None:
        """root PARENT serves /static/ from PARENT/static: the app's folder."""
        text = SITE.replace("alias {static}/;", f"root {app.root_path};")
        assert judged(app, "nginx.static", site(tmp_path, app, text)) == []

    def test_quiet_with_the_alias_of_the_app(self, app: Flask, tmp_path: Path) -> None:
        """alias to the app's static folder passes."""
        assert judged(app, "nginx.static", site(tmp_path, app)) == []

    def test_quiet_without_a_static_folder(self, make_app: MakeApp, tmp_path: Path) -> None:
        """An app with no static folder has nothing for nginx to serve."""
        bare = make_app()
        assert bare.static_folder is not None
        assert not os.path.isdir(bare.static_folder)
        text = SITE.replace("    location /static/ {{\n        alias {static}/;\n    }}\n", "")
        assert judged(bare, "nginx.static", site(tmp_path, bare, text)) == []


class TestBodySize:
    def test_fires_when_nginx_is_smaller(self, app: Flask, tmp_path: Path) -> None:
        """client_max_body_size 1m against 16 MiB: uploads the app accepts get a 413."""
        path = site(tmp_path, app, SITE.replace("16m", "1m"))
        assert judged(app, "nginx.body_size", path) == [
            (
                "warning",
                f"At location / ({path}:12), client_max_body_size 1m ({path}:7) means 1 MiB, "
                "smaller than the app's MAX_CONTENT_LENGTH 16777216 (16 MiB): uploads between "
                "1 MiB and 16 MiB, which the app accepts, get nginx's 413.",
            )
        ]

    def test_fires_on_nginx_default(self, app: Flask, tmp_path: Path) -> None:
        """No level sets it: nginx's default of 1m is judged."""
        path = site(tmp_path, app, SITE.replace("    client_max_body_size 16m;\n", ""))
        [(_, message)] = judged(app, "nginx.body_size", path)
        assert "nginx's default client_max_body_size of 1m means 1 MiB, smaller" in message

    def test_fires_when_nginx_is_unlimited(self, app: Flask, tmp_path: Path) -> None:
        """0 lifts nginx's limit: the app is the only guard."""
        path = site(tmp_path, app, SITE.replace("16m", "0"))
        assert judged(app, "nginx.body_size", path) == [
            (
                "warning",
                f"At location / ({path}:12), client_max_body_size 0 ({path}:7) lifts nginx's "
                "limit, while the app allows MAX_CONTENT_LENGTH 16777216 (16 MiB): the app is "
                "the only guard, so bigger bodies tie up a gunicorn worker before it refuses "
                "them.",
            )
        ]

    def test_location_level_wins(self, app: Flask, tmp_path: Path) -> None:
        """The location's own value overrides the server's: 16m there passes."""
        text = SITE.replace("16m", "1m").replace(
            "proxy_pass http://app;", "proxy_pass http://app;\n        client_max_body_size 16M;"
        )
        assert judged(app, "nginx.body_size", site(tmp_path, app, text)) == []

    def test_quiet_when_equal(self, app: Flask, tmp_path: Path) -> None:
        """16m and MAX_CONTENT_LENGTH 16 MiB agree."""
        assert judged(app, "nginx.body_size", site(tmp_path, app)) == []


class TestServerName:
    def test_fires_on_the_catch_all_name(self, app: Flask, tmp_path: Path) -> None:
        """server_name _ is the catch-all."""
        path = site(tmp_path, app, SITE.replace("server_name localhost;", "server_name _;"))
        assert judged(app, "nginx.server_name", path) == [
            (
                "warning",
                f"The app's server block ({path}:4) is the catch-all: its server_name is _, so "
                "requests for any host name reach the app, and only the app's TRUSTED_HOSTS "
                "stands between them and a forged Host header.",
            )
        ]

    def test_fires_on_default_server(self, app: Flask, tmp_path: Path) -> None:
        """listen ... default_server makes the block the catch-all whatever its name."""
        path = site(
            tmp_path, app, SITE.replace("listen 443 ssl;", "listen 443 ssl default_server;")
        )
        [(_, message)] = judged(app, "nginx.server_name", path)
        assert "it is the default_server of listen 443 ssl default_server" in message

    def test_fires_on_names_the_app_does_not_answer_to(self, app: Flask, tmp_path: Path) -> None:
        """A server_name outside TRUSTED_HOSTS is named with the app's hosts."""
        path = site(tmp_path, app, SITE.replace("server_name localhost;", "server_name app.test;"))
        [(_, message)] = judged(app, "nginx.server_name", path)
        assert "is named app.test, none of the hosts the app answers to (localhost, 127.0.0.1" in (
            message
        )

    def test_quiet_when_named_for_a_trusted_host(self, app: Flask, tmp_path: Path) -> None:
        """server_name localhost, in TRUSTED_HOSTS: passes; wildcards match subdomains."""
        assert judged(app, "nginx.server_name", site(tmp_path, app)) == []
        app.config["TRUSTED_HOSTS"] = [".example.com"]
        text = SITE.replace("server_name localhost;", "server_name *.example.com;")
        assert judged(app, "nginx.server_name", site(tmp_path, app, text, "w.conf")) == []


# --- the deploy kit, through the real command ------------------------------------------------


def kit_environment(tmp_path: Path) -> dict[str, str]:
    """The example app's production settings, for the kit's host names."""
    return {
        "FLASK_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "TRUSTED_HOSTS": "example.com,www.example.com",
        "EXAMPLE_INSTANCE_PATH": str(tmp_path / "instance"),
    }


def kit_findings(tmp_path: Path, nginx_config: Path) -> tuple[int, dict[str, Any]]:
    """`flask readiness --tag nginx` on the example app with the kit's gunicorn file."""
    done = run_flask(
        PROJECT_ROOT,
        "example_app",
        *("--tag", "nginx", "--format", "json"),
        *("--nginx-config", str(nginx_config), "--gunicorn-config", str(DEPLOY_GUNICORN)),
        env=kit_environment(tmp_path),
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


#: Variants of the kit's site, each with the one id it must raise: (old, new) text edits.
KIT_VARIANTS = {
    "nginx.upstream": ("server 127.0.0.1:8000 fail_timeout=0;", "server 127.0.0.1:8001;"),
    "nginx.forwarded_headers": ("proxy_set_header X-Forwarded-Proto $scheme;\n", ""),
    "nginx.static": (
        "alias /srv/example-app/example_app/static/;",
        "alias /srv/example-app/example_app/assets/;",
    ),
    "nginx.body_size": ("client_max_body_size 16m;", "client_max_body_size 1m;"),
    "nginx.server_name": (
        "server_name example.com www.example.com;\n\n    # Placeholders",
        "server_name _;\n\n    # Placeholders",
    ),
    "nginx.invalid": ("proxy_redirect off;", "proxy_redirect off"),
}


def kit_variant(check_id: str) -> str:
    """The kit's site with the one edit of ``check_id``."""
    old, new = KIT_VARIANTS[check_id]
    text = DEPLOY_SITE.read_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


@example_app_stack
def test_deploy_kit_site_is_quiet(tmp_path: Path) -> None:
    """The kit's nginx site with the kit's gunicorn file: every nginx check passes."""
    code, report = kit_findings(tmp_path, DEPLOY_SITE)
    assert report["findings"] == []
    assert results_of(report) == dict.fromkeys(NGINX_IDS, "pass")
    assert code == 0


@example_app_stack
@pytest.mark.parametrize("check_id", sorted(KIT_VARIANTS))
def test_deploy_kit_variant_raises_its_id(tmp_path: Path, check_id: str) -> None:
    """Each edit of the kit's site raises its own id, and only it."""
    variant = tmp_path / "site.conf"
    variant.write_text(kit_variant(check_id))
    code, report = kit_findings(tmp_path, variant)
    assert {f["id"] for f in report["findings"]} == {check_id}
    assert code == (
        1 if check_id in {"nginx.upstream", "nginx.invalid", "nginx.forwarded_headers"} else 0
    )
