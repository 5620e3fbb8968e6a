"""Refuses, before anything starts, a server that would bind or send beyond loopback.

The suite starts real servers (nginx, gunicorn, ``flask run``, PostgreSQL, stub servers)
on a shared machine. Anything listening on 0.0.0.0 or ``::`` is reachable from the
network for as long as it runs, even for the instant of an ``nginx -t``; a proxy or an
upstream elsewhere sends test traffic off the machine. Every helper that writes a server
configuration or starts a server passes it through here first, and gets
:class:`NotLoopback`, naming the address, instead of a server.

Loopback means an IPv4 address in 127.0.0.0/8, the IPv6 address ``::1``, the name
``localhost`` (RFC 6761 reserves it for loopback), or a unix socket path. Names are
judged as written, never looked up: a lookup may itself send a query off the machine,
and a name that resolves to loopback here may not elsewhere. So anything else is
refused, including another host name, an abbreviated ``127.1`` and an IPv4-mapped
``::ffff:127.0.0.1``.

- nginx: a configuration file and the files it includes, read with ``crossplane``
  (NGINX Inc.'s parser of the configuration language), as nginx reads ``listen``: a
  port alone, ``*``, ``[::]`` and a ``server`` block without ``listen`` (nginx then
  listens on ``*:80``) all mean every address. The ``*_bind`` source addresses, where
  ``*_pass`` and upstream ``server`` lines send, ``resolver`` and ``ssl_stapling`` are
  judged too.
- gunicorn: its arguments, read with gunicorn's own argument parser and bind parser, so
  ``-b``, ``--bind=``, abbreviations and ``GUNICORN_CMD_ARGS`` count as gunicorn counts
  them. Without any bind, gunicorn takes its configuration file's or ``0.0.0.0:$PORT``:
  refused.
- PostgreSQL: the ``listen_addresses`` value given with ``-h``.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane
from gunicorn.config import Config
from gunicorn.util import parse_address

#: What each refusal says loopback is.
LOOPBACK = "127.0.0.0/8, ::1, localhost or a unix socket"
#: nginx's port when ``listen`` (or ``resolver``) names an address alone.
NGINX_DEFAULT_PORT = 80
#: Directives that set the source address of nginx's connections to an upstream.
NGINX_BIND_DIRECTIVES = frozenset(
    f"{kind}_bind" for kind in ("proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached")
)
#: Directives that name where nginx sends a request.
NGINX_PASS_DIRECTIVES = frozenset(
    f"{kind}_pass" for kind in ("proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached")
)


class NotLoopback(ValueError):
    """A server configuration binds, or sends, to an address that is not loopback."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or name, without port or brackets) is loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback_host(host: str, where: str) -> str:
    """``host`` when it is loopback; else :class:`NotLoopback` naming it and ``where``."""
    if is_loopback_host(host):
        return host
    shown = repr(host) if host else "an empty host"
    if host in ("", "*", "0.0.0.0", "::"):
        raise NotLoopback(f"{where}: {shown} means every address of the machine; use {LOOPBACK}")
    raise NotLoopback(f"{where}: {shown} is not a loopback address; use {LOOPBACK}")


# --- gunicorn --------------------------------------------------------------------------


def require_gunicorn_bind(bind: str, where: str = "gunicorn --bind") -> str:
    """``bind`` when gunicorn, reading it, binds a loopback address or a unix socket.

    gunicorn reads ``:8000`` and an empty string as every address, and ``80`` alone as
    the host ``80`` on port 8000. ``fd://N`` is a socket made elsewhere, whose address
    nothing here can see: refused.
    """
    where = f"{where} {bind!r}"
    try:
        address = parse_address(bind)
    except RuntimeError as error:
        raise NotLoopback(f"{where}: gunicorn cannot read it ({error})") from None
    if isinstance(address, int):
        raise NotLoopback(f"{where}: an inherited socket; its address cannot be checked")
    if isinstance(address, tuple):
        require_loopback_host(address[0], where)
    return bind


def gunicorn_binds(arguments: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Every bind that gunicorn's command line ``arguments`` and ``GUNICORN_CMD_ARGS`` in
    ``env`` give, as gunicorn's own argument parser reads them."""
    parser = Config().parser()
    found: list[str] = []
    for source in (list(arguments), shlex.split((env or {}).get("GUNICORN_CMD_ARGS", ""))):
        try:
            parsed, _ = parser.parse_known_args(source)
        except SystemExit:
            raise NotLoopback(f"gunicorn cannot read its arguments {source!r}") from None
        found += parsed.bind or []
    return found


def require_gunicorn_arguments(
    arguments: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """The binds of a gunicorn command line (the words after ``gunicorn``) run in ``env``,
    when there is one at least and every one is loopback."""
    binds = gunicorn_binds(arguments, env)
    if not binds:
        raise NotLoopback(
            "gunicorn without --bind listens where its configuration file says, or on "
            "0.0.0.0 when PORT is set: give it a loopback --bind"
        )
    for bind in binds:
        require_gunicorn_bind(bind)
    return binds


# --- PostgreSQL ----------------------------------------------------------------------------


def require_postgres_listen_addresses(value: str) -> str:
    """``value`` when every address of PostgreSQL's ``listen_addresses`` (``-h``) is
    loopback; empty means unix sockets only. ``*`` means every address."""
    for host in (part.strip() for part in value.split(",")):
        if host:
            require_loopback_host(host, f"PostgreSQL listen_addresses {value!r}")
    return value


# --- nginx -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    """One nginx directive: where it is written, its name and its arguments."""

    file: str
    line: int
    name: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"`{' '.join((self.name, *self.args))};` ({self.file}:{self.line})"


def nginx_host_port(value: str) -> tuple[str, int]:
    """(host, port) of an address as nginx writes one: a bare IP address (``::1`` too),
    ``[v6]:port``, ``host:port``, ``host`` (port 80), or a port alone, which nginx reads
    as ``*``: every address. Raises ValueError on a port that is no port."""
    try:
        return str(ipaddress.ip_address(value)), NGINX_DEFAULT_PORT
    except ValueError:
        pass
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.isdigit():
        host, port = "*", value
    elif ":" in value:
        host, _, port = value.rpartition(":")
    else:
        host, port = value, ""
    number = int(port) if port else NGINX_DEFAULT_PORT
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is out of range")
    return host, number


def _require_nginx_address(
    directive: Directive, value: str, upstreams: frozenset[str] = frozenset()
) -> None:
    """Refuse ``value``, an address of ``directive``, unless it is loopback, a unix socket
    or, where nginx sends a request, the name of an upstream block."""
    where = f"nginx {directive}"
    if value.isdigit():
        raise NotLoopback(
            f"{where}: a port alone means *:{value}, every address of the machine; use {LOOPBACK}"
        )
    if directive.name in NGINX_PASS_DIRECTIVES:
        # scheme://host[:port][/uri]: only the host and port say where it goes.
        value = value.split("://", 1)[-1]
        if not value.startswith("unix:"):
            value = value.split("/", 1)[0]
        if value in upstreams:
            return
    if value.startswith("unix:"):
        return
    if "$" in value:
        raise NotLoopback(f"{where}: {value!r} is only known at run time; write an address")
    try:
        host, _ = nginx_host_port(value)
    except ValueError as error:
        raise NotLoopback(f"{where}: {value!r} is not an address ({error})") from None
    require_loopback_host(host, where)


def _walk(
    statements: list[dict[str, Any]], parent: str | None = None
) -> Iterator[tuple[str | None, Directive, list[dict[str, Any]] | None]]:
    """(enclosing directive, directive, its block) for every directive, depth first."""
    for statement in statements:
        directive = Directive(
            statement.get("file", "?"),
            statement["line"],
            statement["directive"],
            tuple(statement["args"]),
        )
        block = statement.get("block")
        yield parent, directive, block
        if block is not None:
            yield from _walk(block, directive.name)


def nginx_directives(conf: Path) -> list[tuple[str | None, Directive, list[dict[str, Any]] | None]]:
    """Every directive of ``conf`` and of the files it includes, each where it is
    included, as :func:`_walk` gives them. A file nginx could not read raises."""
    payload = crossplane.parse(
        str(conf), combine=True, catch_errors=False, check_ctx=False, check_args=False
    )
    return list(_walk(payload["config"][0]["parsed"]))


def require_nginx_config(conf: Path) -> list[Directive]:
    """The ``listen`` directives of the nginx configuration ``conf`` (and its includes),
    when nginx would bind and send only on loopback with it; else :class:`NotLoopback`."""
    directives = nginx_directives(conf)
    upstreams = frozenset(d.args[0] for _, d, _ in directives if d.name == "upstream" and d.args)
    listens: list[Directive] = []
    for parent, directive, block in directives:
        name, args = directive.name, directive.args
        # An address left out reads as "" here, which nginx would not accept either.
        first = args[0] if args else ""
        if name == "listen":
            _require_nginx_address(directive, first)
            listens.append(directive)
        elif name == "server" and block is not None:
            if not any(statement["directive"] == "listen" for statement in block):
                raise NotLoopback(
                    f"nginx {directive}: a server block without `listen` listens on *:80 "
                    "(*:8000 when nginx is not root), every address of the machine"
                )
        elif name == "server" and parent == "upstream":
            _require_nginx_address(directive, first)
        elif name in NGINX_PASS_DIRECTIVES:
            _require_nginx_address(directive, first, upstreams)
        elif name in NGINX_BIND_DIRECTIVES and first != "off":
            _require_nginx_address(directive, first)
        elif name == "resolver":
            for value in args:
                if "=" not in value:  # valid=30s, ipv6=off: options, not addresses
                    _require_nginx_address(directive, value)
        elif name == "ssl_stapling" and first == "on":
            raise NotLoopback(
                f"nginx {directive}: nginx would ask the certificate's OCSP responder, "
                "off this machine"
            )
    return listens
