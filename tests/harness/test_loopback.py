"""The loopback guard (tests/loopback.py) and its small copies in the demo and benchmarks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.stacks import EXAMPLE_APP_NEEDS_SQLALCHEMY_2, SQLALCHEMY

if SQLALCHEMY < (2, 0):
    pytest.skip(EXAMPLE_APP_NEEDS_SQLALCHEMY_2, allow_module_level=True)

from example_app import demo
from tests.conftest import PROXY_VARIABLES
from tests.loopback import (
    NotLoopback,
    is_loopback_host,
    require_gunicorn_arguments,
    require_gunicorn_bind,
    require_nginx_config,
    require_postgres_listen_addresses,
)
from tests.stub_server import Canned, StubServer

#: Hosts the guard accepts: all of 127.0.0.0/8, ::1 and the name reserved for loopback.
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "localhost", "LOCALHOST"]
#: Hosts it refuses: every address, public and private addresses, other names, and
#: spellings that only some resolvers read as loopback.
OTHER_HOSTS = [
    "0.0.0.0",
    "::",
    "*",
    "",
    "8.8.8.8",
    "203.0.113.7",
    "10.0.0.1",
    "192.168.1.10",
    "2001:db8::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "128.0.0.1",
    "127.1",
    "example.com",
    "localhost.example.com",
    "db",
]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_hosts_are_accepted(host: str) -> None:
    """127.0.0.0/8, ::1 and localhost (any case) are loopback."""
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", OTHER_HOSTS)
def test_other_hosts_are_refused(host: str) -> None:
    """Every address, public and private IPs, host names and odd spellings are not."""
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    "bind",
    [
        "127.0.0.1:8000",
        "127.0.0.2",
        "[::1]:80",
        "[::1]",
        "localhost:8000",
        "tcp://127.0.0.1:8000",
        "unix:/tmp/x.sock",
        "unix:///run/app/gunicorn.sock",
    ],
)
def test_gunicorn_loopback_binds_are_accepted(bind: str) -> None:
    """A gunicorn bind on a loopback address, or a unix socket, passes as it is."""
    assert require_gunicorn_bind(bind) == bind


@pytest.mark.parametrize(
    ("bind", "named"),
    [
        ("0.0.0.0:8000", "'0.0.0.0' means every address"),
        ("0.0.0.0", "'0.0.0.0' means every address"),
        ("[::]:8000", "'::' means every address"),
        (":8000", "an empty host means every address"),
        ("", "'0.0.0.0' means every address"),
        ("80", "'80' is not a loopback address"),
        ("8.8.8.8:80", "'8.8.8.8' is not a loopback address"),
        ("example.com:8000", "'example.com' is not a loopback address"),
        ("tcp://0.0.0.0:8000", "'0.0.0.0' means every address"),
        ("fd://3", "an inherited socket"),
        ("127.0.0.1:http", "gunicorn cannot read it"),
    ],
)
def test_gunicorn_other_binds_are_refused_by_name(bind: str, named: str) -> None:
    """Every address (0.0.0.0, ::, a bare :8000), a port alone, a public IP, another
    host name and an inherited fd are refused, the error naming the bind and why."""
    with pytest.raises(NotLoopback, match=re.escape(named)) as refused:
        require_gunicorn_bind(bind)
    assert repr(bind) in str(refused.value)


def test_gunicorn_arguments_are_read_as_gunicorn_reads_them() -> None:
    """Every -b, --bind, --bind= and abbreviated --bin counts, and one public bind among
    loopback ones is refused."""
    loopback = ["-b", "127.0.0.1:1", "--bind=[::1]:2", "--bin", "unix:/tmp/g.sock", "app:app"]
    assert require_gunicorn_arguments(loopback) == ["127.0.0.1:1", "[::1]:2", "unix:/tmp/g.sock"]
    for extra in (["-b", "0.0.0.0:3"], ["--bind=:3"], ["--bin", "203.0.113.7:3"], ["-b:3"]):
        with pytest.raises(NotLoopback):
            require_gunicorn_arguments([*loopback[:-1], *extra, "app:app"])


def test_gunicorn_cmd_args_in_the_environment_count() -> None:
    """A bind in GUNICORN_CMD_ARGS, which gunicorn adds to its arguments, is judged too."""
    arguments = ["-b", "127.0.0.1:1", "app:app"]
    assert require_gunicorn_arguments(arguments, {"GUNICORN_CMD_ARGS": "--bind 127.0.0.2:2"}) == [
        "127.0.0.1:1",
        "127.0.0.2:2",
    ]
    with pytest.raises(NotLoopback, match=re.escape("'0.0.0.0:2'")):
        require_gunicorn_arguments(arguments, {"GUNICORN_CMD_ARGS": "--workers 2 -b 0.0.0.0:2"})


def test_gunicorn_without_a_bind_is_refused() -> None:
    """Without any bind gunicorn takes its config file's, or 0.0.0.0:$PORT: refused."""
    with pytest.raises(NotLoopback, match="without --bind"):
        require_gunicorn_arguments(["-c", "deploy/gunicorn.conf.py", "app:app"], {"PORT": "80"})


@pytest.mark.parametrize("value", ["127.0.0.1", "localhost,::1", "127.0.0.1, 127.0.0.2", ""])
def test_postgres_loopback_listen_addresses_are_accepted(value: str) -> None:
    """listen_addresses of loopback addresses only, or none (unix sockets only), pass."""
    assert require_postgres_listen_addresses(value) == value


@pytest.mark.parametrize("value", ["*", "0.0.0.0", "127.0.0.1,10.0.0.1", "db.example.com"])
def test_postgres_other_listen_addresses_are_refused(value: str) -> None:
    """listen_addresses with every address or another address in the list is refused."""
    with pytest.raises(NotLoopback, match=re.escape(repr(value))):
        require_postgres_listen_addresses(value)


# --- nginx -------------------------------------------------------------------------------


def nginx_conf(folder: Path, servers: str, **included: str) -> Path:
    """An nginx.conf whose http block holds ``servers``; ``included`` files are written
    beside it (``name=text``) for ``include`` lines to name."""
    for name, text in included.items():
        (folder / f"{name}.conf").write_text(text)
    conf = folder / "nginx.conf"
    conf.write_text(f"events {{ }}\nhttp {{\n{servers}\n}}\n")
    return conf


@pytest.mark.parametrize(
    "listen",
    [
        "127.0.0.1:8000",
        "127.0.0.2",
        "127.0.0.1:8443 ssl http2 default_server",
        "[::1]:80",
        "[::1]:443 ssl http2",
        "localhost:8080",
        "unix:/tmp/nginx.sock",
    ],
)
def test_nginx_loopback_listen_is_accepted(tmp_path: Path, listen: str) -> None:
    """A listen on a loopback address or a unix socket, with any flags, passes and is
    returned with its arguments."""
    conf = nginx_conf(tmp_path, f"server {{ listen {listen}; }}")

    (directive,) = require_nginx_config(conf)

    assert directive.args == tuple(listen.split())
    assert directive.line == 3


@pytest.mark.parametrize(
    ("listen", "named"),
    [
        ("80", "a port alone means *:80"),
        ("8000 default_server", "a port alone means *:8000"),
        ("443 ssl http2", "a port alone means *:443"),
        ("*:80", "'*' means every address"),
        ("*", "'*' means every address"),
        ("0.0.0.0:80", "'0.0.0.0' means every address"),
        ("[::]:80", "'::' means every address"),
        ("[::]:443 ssl http2", "'::' means every address"),
        ("203.0.113.7:80", "'203.0.113.7' is not a loopback address"),
        ("10.1.2.3", "'10.1.2.3' is not a loopback address"),
        ("example.com:80", "'example.com' is not a loopback address"),
        ("127.0.0.1:99999", "is not an address"),
    ],
)
def test_nginx_other_listen_is_refused_by_name(tmp_path: Path, listen: str, named: str) -> None:
    """A port alone, *, 0.0.0.0, [::], a public or private IP and a host name are refused,
    the error quoting the directive and where it is written."""
    conf = nginx_conf(tmp_path, f"server {{\n    listen 127.0.0.1:1;\n    listen {listen};\n}}")

    with pytest.raises(NotLoopback, match=re.escape(named)) as refused:
        require_nginx_config(conf)
    assert f"`listen {listen};` ({conf}:5)" in str(refused.value)


def test_nginx_server_without_listen_is_refused(tmp_path: Path) -> None:
    """A server block without listen (nginx then listens on *:80) is refused."""
    conf = nginx_conf(tmp_path, "server { server_name example.com; }")

    with pytest.raises(NotLoopback, match=re.escape("without `listen` listens on *:80")):
        require_nginx_config(conf)


def test_nginx_listen_in_an_included_file_is_judged(tmp_path: Path) -> None:
    """Included files are read where they are included: their listens count, and a
    public one is refused naming that file."""
    site = tmp_path / "site.conf"
    conf = nginx_conf(tmp_path, f"include {site};", site="server { listen 127.0.0.3:9; }")
    assert [d.args for d in require_nginx_config(conf)] == [("127.0.0.3:9",)]

    site.write_text("server {\n    listen 127.0.0.3:9;\n}\nserver { listen [::]:9; }\n")
    with pytest.raises(NotLoopback, match=re.escape(f"`listen [::]:9;` ({site}:4)")):
        require_nginx_config(conf)


def test_nginx_comments_and_quotes_are_read_as_nginx_reads_them(tmp_path: Path) -> None:
    """A listen in a comment is no listen; a quoted address is the address."""
    conf = nginx_conf(tmp_path, 'server {\n    # listen 80;\n    listen "127.0.0.1:7";\n}')

    assert [d.args for d in require_nginx_config(conf)] == [("127.0.0.1:7",)]


def test_nginx_sends_to_loopback_upstreams_only(tmp_path: Path) -> None:
    """proxy_pass to a loopback address, a unix socket or an upstream of loopback
    servers passes; to a public address or an upstream with one, it is refused."""
    accepted = """
        upstream app { server 127.0.0.1:8000 fail_timeout=0; server unix:/tmp/a.sock; }
        server {
            listen 127.0.0.1:1;
            location / { proxy_pass http://app; }
            location /a { proxy_pass http://127.0.0.1:9/x/$request_uri; }
            location /b { proxy_pass http://unix:/tmp/b.sock:/; }
            location /c { fastcgi_pass localhost:9000; proxy_bind 127.0.0.2; }
            resolver 127.0.0.53 [::1]:53 valid=30s ipv6=off;
        }
    """
    require_nginx_config(nginx_conf(tmp_path, accepted))

    for servers, named in [
        ("upstream app { server 192.0.2.1:80; }", "`server 192.0.2.1:80;`"),
        ("location / { proxy_pass https://example.com; }", "'example.com'"),
        ("location / { proxy_pass http://$host; }", "'$host' is only known at run time"),
        ("location / { proxy_bind 192.0.2.9 transparent; }", "'192.0.2.9'"),
        ("resolver 127.0.0.53 8.8.8.8;", "'8.8.8.8'"),
        ("ssl_stapling on;", "OCSP responder"),
    ]:
        conf = nginx_conf(tmp_path, f"server {{ listen 127.0.0.1:1; {servers} }}")
        with pytest.raises(NotLoopback, match=re.escape(named)):
            require_nginx_config(conf)


def test_the_shipped_site_as_it_is_would_be_refused() -> None:
    """deploy/'s nginx site listens on every address (port 80 first): the guard refuses
    it, which is why the deploy-kit test moves its listen lines before ``nginx -t``."""
    site = Path(__file__).resolve().parents[2] / "deploy" / "nginx-example-app.conf"

    with pytest.raises(NotLoopback, match=re.escape("`listen 80;`")):
        require_nginx_config(site)


# --- the demo's and the benchmarks' own copies -------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_HOSTS + OTHER_HOSTS)
def test_demo_and_benchmarks_agree_with_the_guard(host: str) -> None:
    """example_app.demo and benchmarks, which cannot import the tests, accept exactly
    the hosts the guard accepts and refuse the others, naming them."""
    benchmarks = pytest.importorskip("benchmarks.common", reason="the sdist has no benchmarks")
    if is_loopback_host(host):
        assert demo.loopback(host) == host
        assert benchmarks.loopback(host) == host
    else:
        with pytest.raises(ValueError, match=re.escape(repr(host))):
            demo.loopback(host)
        with pytest.raises(benchmarks.BenchError, match=re.escape(repr(host))):
            benchmarks.loopback(host)


def test_demo_gunicorn_command_binds_loopback() -> None:
    """The demo's gunicorn command passes the guard: one bind, on 127.0.0.1."""
    command = demo.gunicorn_command(8000, demo.GUNICORN_CONFIG)

    assert require_gunicorn_arguments(command[3:]) == ["127.0.0.1:8000"]


def test_demo_requests_ignore_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's requests go straight to its server even with http_proxy set."""
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens on port 9
    with StubServer(Canned(200, b"straight")) as server:
        status, body = demo.fetch(f"http://127.0.0.1:{server.port}/healthz")

    assert (status, body) == (200, "straight")
    assert [seen.path for seen in server.requests] == ["/healthz"]


def test_no_proxy_variable_reaches_a_test() -> None:
    """The suite's tests run without http_proxy, https_proxy or all_proxy, in any case."""
    assert [name for name in PROXY_VARIABLES if name in os.environ] == []
