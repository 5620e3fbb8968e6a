"""Reading an nginx configuration as nginx reads it, for the ``nginx.*`` checks.

The file is parsed with ``crossplane`` (NGINX Inc.'s parser of the configuration
language), includes followed and relative to the main file's folder. crossplane checks
the syntax; the context of each directive (``location`` only in a ``server``, ...) and
its argument count are checked here, with crossplane's own tables, on the whole tree,
so that a site file of the kind that lives in ``sites-available`` (no ``http`` block,
included by nginx inside one) is read as nginx reads it: from the ``http`` context.

The rest are the few pieces of nginx's semantics the checks need, each as nginx does it:
where ``proxy_pass``/``uwsgi_pass`` send a request (an address, a unix socket, an
``upstream`` block), which level a directive's value comes from (location, then server,
then http; arrays like ``proxy_set_header`` inherited only by a level that sets none of
its own), which location serves a URI, and sizes like ``16m``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Directives that send a request to the app (proxy_pass speaks HTTP, uwsgi_pass uwsgi).
PASS_DIRECTIVES = ("proxy_pass", "uwsgi_pass")
#: Top-level directives only a whole nginx.conf has; a file with neither is a site file.
MAIN_BLOCKS = frozenset({"http", "events"})
#: Blocks whose ``proxy_pass`` and ``server`` lines are TCP or mail proxying, not HTTP.
NON_HTTP_BLOCKS = frozenset({"stream", "mail"})
#: gunicorn's port when a bind names a host alone.
GUNICORN_DEFAULT_PORT = 8000
#: nginx's size suffixes (``client_max_body_size 16m``).
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
SIZE_PATTERN = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
#: Hosts that nginx and gunicorn both take for the loopback interface, and their aliases.
LOOPBACK_ALIASES = {
    "localhost": frozenset({"127.0.0.1", "::1"}),
    "127.0.0.1": frozenset({"localhost"}),
    "::1": frozenset({"localhost"}),
}
#: Bind hosts that mean every address of the machine.
ALL_ADDRESSES = frozenset({"", "*", "0.0.0.0", "::"})


class CrossplaneMissing(ImportError):
    """crossplane, the parser the ``nginx.*`` checks read configurations with, is absent."""


@dataclass(frozen=True)
class Node:
    """One directive, where it is written, and its block (``None`` for a simple one)."""

    file: str
    line: int
    name: str
    args: tuple[str, ...]
    block: tuple[Node, ...] | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def children(self, name: str) -> list[Node]:
        """The directives called ``name`` directly inside this block."""
        return [node for node in self.block or () if node.name == name]

    def __str__(self) -> str:
        return " ".join((self.name, *self.args))


@dataclass(frozen=True)
class ParseError:
    """What crossplane (or the context check) refused, and where."""

    file: str
    line: int | None
    error: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.error}"


@dataclass(frozen=True)
class NginxConfig:
    """A parsed configuration: its directives under ``root`` (the main context, or the
    ``http`` context of a site file), and what did not parse."""

    path: str
    root: Node
    errors: tuple[ParseError, ...]
    site_file: bool


def _reason(error: Exception) -> str:
    """crossplane's error without its `` in FILE:LINE`` tail (kept apart)."""
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}"
    return str(getattr(error, "strerror", None) or error) or type(error).__name__


def parse_config(path: str) -> NginxConfig:
    """Parse ``path`` and the files it includes; errors are collected, never raised.

    Raises :class:`CrossplaneMissing` when crossplane is not installed.
    """
    try:
        import crossplane  # type: ignore[import-untyped]
        from crossplane.analyzer import (  # type: ignore[import-untyped]
            analyze,
            enter_block_ctx,
        )
        from crossplane.errors import NgxParserDirectiveError  # type: ignore[import-untyped]
    except ImportError:
        raise CrossplaneMissing("crossplane is not installed") from None

    payload = crossplane.parse(
        path, combine=True, catch_errors=True, check_ctx=False, onerror=_reason
    )
    errors = [
        ParseError(str(item.get("file", path)), item.get("line"), str(item.get("callback")))
        for item in payload["errors"]
    ]
    statements: list[dict[str, Any]] = payload["config"][0]["parsed"]
    site_file = not any(s["directive"] in MAIN_BLOCKS for s in statements)

    def check_contexts(block: list[dict[str, Any]], context: tuple[str, ...]) -> None:
        for statement in block:
            term = "{" if "block" in statement else ";"
            try:
                analyze(
                    fname=statement.get("file", path),
                    stmt=statement,
                    term=term,
                    ctx=context,
                    check_ctx=True,
                    check_args=True,
                )
            except NgxParserDirectiveError as error:
                errors.append(
                    ParseError(str(statement.get("file", path)), error.lineno, _reason(error))
                )
            if "block" in statement:
                check_contexts(statement["block"], enter_block_ctx(statement, context))

    check_contexts(statements, ("http",) if site_file else ())

    def nodes(block: list[dict[str, Any]]) -> tuple[Node, ...]:
        return tuple(
            Node(
                file=str(statement.get("file", path)),
                line=int(statement["line"]),
                name=str(statement["directive"]),
                args=tuple(str(arg) for arg in statement["args"]),
                block=nodes(statement["block"]) if "block" in statement else None,
            )
            for statement in block
        )

    root = Node(path, 0, "http" if site_file else "main", (), nodes(statements))
    unique = tuple(dict.fromkeys(errors))
    return NginxConfig(path=path, root=root, errors=unique, site_file=site_file)


# --- the tree -------------------------------------------------------------------------

Chain = tuple[Node, ...]


def walk(node: Node, chain: Chain = ()) -> Iterator[tuple[Chain, Node]]:
    """(the blocks around it, outermost first, the node) for every directive under
    ``node``, depth first; TCP and mail proxying (``stream``, ``mail``) left out."""
    chain = (*chain, node)
    for child in node.block or ():
        if child.name in NON_HTTP_BLOCKS:
            continue
        yield chain, child
        if child.block is not None:
            yield from walk(child, chain)


def effective(chain: Chain, name: str) -> list[Node]:
    """The ``name`` directives in force at the innermost block of ``chain``: those of the
    innermost level that has any (nginx's inheritance: a level that sets the directive,
    even once, inherits none of it from the levels around it)."""
    for block in reversed(chain):
        found = block.children(name)
        if found:
            return found
    return []


def server_of(chain: Chain) -> Node | None:
    """The ``server`` block in ``chain``, if any."""
    return next((node for node in reversed(chain) if node.name == "server"), None)


def location_of(chain: Chain) -> Node | None:
    """The innermost ``location`` in ``chain``, if any."""
    return next((node for node in reversed(chain) if node.name == "location"), None)


def location_label(location: Node | None) -> str:
    """``location /static/`` as written, for messages."""
    return "the server block" if location is None else f"location {' '.join(location.args)}"


# --- addresses ------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a request goes or a server listens: a TCP host and port, or a unix socket."""

    host: str = ""
    port: int = 0
    socket_path: str | None = None

    def __str__(self) -> str:
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _unix(path: str) -> Endpoint:
    return Endpoint(socket_path=os.path.normpath(os.path.abspath(path)))


def split_host_port(value: str, default_port: int) -> tuple[str, int] | None:
    """(host, port) of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; ``None`` when the
    port is no number."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address
        host, port = value, ""
    if port and not port.isdigit():
        return None
    return host.lower(), int(port) if port else default_port


def bind_endpoint(bind: str) -> Endpoint | None:
    """What a gunicorn ``bind`` listens on, read as gunicorn reads it; ``None`` for an
    inherited socket (``fd://N``), whose address is not written anywhere."""
    if bind.startswith("unix://"):
        return _unix(bind[len("unix://") :])
    if bind.startswith("unix:"):
        return _unix(bind[len("unix:") :])
    if bind.startswith("fd://"):
        return None
    found = split_host_port(bind.removeprefix("tcp://"), GUNICORN_DEFAULT_PORT)
    return None if found is None else Endpoint(*found)


@dataclass(frozen=True)
class Pass:
    """A ``proxy_pass``/``uwsgi_pass`` of an HTTP location, and where it sends requests.

    ``upstream`` names the ``upstream`` block it goes through; ``dynamic`` marks a target
    only known at run time (a variable)."""

    directive: Node
    chain: Chain
    targets: tuple[Endpoint, ...]
    upstream: str | None = None
    dynamic: bool = False

    @property
    def location(self) -> Node | None:
        return location_of(self.chain)

    @property
    def server(self) -> Node | None:
        return server_of(self.chain)

    @property
    def label(self) -> str:
        return f"{location_label(self.location)} ({self.directive.where})"

    @property
    def written(self) -> str:
        return f"{self.directive.name} {' '.join(self.directive.args)}"


def upstream_blocks(config: NginxConfig) -> dict[str, list[Node]]:
    """Each ``upstream`` block's name, with its ``server`` lines (``down`` ones left out)."""
    blocks: dict[str, list[Node]] = {}
    for _, node in walk(config.root):
        if node.name == "upstream" and node.args:
            servers = [s for s in node.children("server") if s.args and "down" not in s.args]
            blocks.setdefault(node.args[0], []).extend(servers)
    return blocks


def _target(value: str, default_port: int, plain: bool) -> Endpoint | None:
    """An address as a ``*_pass`` or an upstream ``server`` writes it (no scheme)."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        # proxy_pass http://unix:/run/app.sock:/uri — the socket path ends at a colon.
        return _unix(path if plain else path.split(":", 1)[0])
    found = split_host_port(value, default_port)
    return None if found is None else Endpoint(*found)


def pass_of(directive: Node, chain: Chain, upstreams: dict[str, list[Node]]) -> Pass:
    """Where ``directive`` (a ``proxy_pass`` or ``uwsgi_pass``) sends requests."""
    value = directive.args[0] if directive.args else ""
    if "$" in value:
        return Pass(directive, chain, (), dynamic=True)
    scheme, separator, rest = value.partition("://")
    if not separator:
        scheme, rest = "", value
    default_port = 443 if scheme in ("https", "suwsgi") else 80
    plain = directive.name != "proxy_pass"
    if rest.startswith("unix:"):
        target = _target(rest, default_port, plain)
        return Pass(directive, chain, () if target is None else (target,))
    hostport = rest.split("/", 1)[0]
    name = hostport if hostport in upstreams else hostport.rsplit(":", 1)[0]
    if name in upstreams:
        targets = []
        for server in upstreams[name]:
            found = _target(server.args[0], 80, plain=True)
            if found is not None:
                targets.append(found)
        return Pass(directive, chain, tuple(targets), upstream=name)
    target = _target(hostport, default_port, plain)
    return Pass(directive, chain, () if target is None else (target,))


def passes(config: NginxConfig) -> list[Pass]:
    """Every ``proxy_pass``/``uwsgi_pass`` inside a location of an HTTP server."""
    upstreams = upstream_blocks(config)
    return [
        pass_of(node, chain, upstreams)
        for chain, node in walk(config.root)
        if node.name in PASS_DIRECTIVES and location_of(chain) is not None
    ]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_local_address(host: str) -> bool:
    """Whether ``host`` is loopback or an address of this machine (it can be bound here).

    Names other than ``localhost`` and this machine's own name are not looked up."""
    if host in LOOPBACK_ALIASES or host == socket.gethostname().lower():
        return True
    if not _is_ip(host):
        return False
    address = ipaddress.ip_address(host)
    if address.is_loopback:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def reaches(target: Endpoint, bind: Endpoint) -> bool:
    """Whether a request sent to ``target`` reaches a server listening on ``bind``."""
    if target.socket_path is not None or bind.socket_path is not None:
        if target.socket_path is None or bind.socket_path is None:
            return False
        if target.socket_path == bind.socket_path:
            return True
        try:
            return os.path.samefile(target.socket_path, bind.socket_path)
        except OSError:
            return False
    if target.port != bind.port:
        return False
    if target.host == bind.host or target.host in LOOPBACK_ALIASES.get(bind.host, ()):
        return True
    if bind.host in ALL_ADDRESSES:
        if bind.host == "0.0.0.0" and ":" in target.host:
            return False  # an IPv4 wildcard does not answer on IPv6
        return is_local_address(target.host)
    return False


# --- values -----------------------------------------------------------------------------


def parse_size(value: str) -> int | None:
    """Bytes of an nginx size (``1m``, ``16M``, ``512k``, ``0``); ``None`` if it is none."""
    found = SIZE_PATTERN.match(value.strip())
    if found is None:
        return None
    return int(found[1]) * SIZE_UNITS[found[2].lower()]


def human_size(size: int) -> str:
    """``16 MiB``, ``512 KiB``, ``1000 bytes``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def set_headers(chain: Chain, directive: str = "proxy_set_header") -> dict[str, tuple[str, Node]]:
    """{lowercased header: (value, directive)} of the ``proxy_set_header`` lines in force
    at the end of ``chain`` (``uwsgi_param HTTP_X_...`` lines for ``uwsgi_param``)."""
    headers: dict[str, tuple[str, Node]] = {}
    for node in effective(chain, directive):
        if len(node.args) < 2:
            continue
        name = node.args[0]
        if directive == "uwsgi_param":
            if not name.upper().startswith("HTTP_"):
                continue
            name = name[len("HTTP_") :].replace("_", "-")
        headers[name.lower()] = (node.args[1], node)
    return headers


# --- which location serves a URI --------------------------------------------------------


def _matches(location: Node, uri: str) -> tuple[str, int] | None:
    """(kind, prefix length) when ``location`` matches ``uri``; kinds are ``exact``,
    ``prefix``, ``stop`` (``^~``) and ``regex``."""
    args = location.args
    if len(args) == 2 and args[0] == "=":
        return ("exact", len(args[1])) if uri == args[1] else None
    if len(args) == 2 and args[0] == "^~":
        return ("stop", len(args[1])) if uri.startswith(args[1]) else None
    if len(args) == 2 and args[0] in ("~", "~*"):
        flags = re.IGNORECASE if args[0] == "~*" else 0
        try:
            return ("regex", 0) if re.search(args[1], uri, flags) else None
        except re.error:
            return None  # a PCRE feature Python lacks: not judged
    if len(args) == 1 and not args[0].startswith("@"):
        return ("prefix", len(args[0])) if uri.startswith(args[0]) else None
    return None


def select_location(block: Node, uri: str, chain: Chain) -> Chain:
    """The chain of blocks nginx uses for ``uri`` inside ``block`` (a server or a
    location): exact match, else the longest prefix unless a regex (in order) matches,
    except after ``^~``; nested locations followed."""
    exact, longest, longest_kind, longest_length = None, None, "", -1
    regexes = []
    for location in block.children("location"):
        found = _matches(location, uri)
        if found is None:
            continue
        kind, length = found
        if kind == "exact":
            exact = location
            break
        if kind == "regex":
            regexes.append(location)
        elif length > longest_length:
            longest, longest_kind, longest_length = location, kind, length
    chosen = exact
    if chosen is None and longest_kind != "stop" and regexes:
        chosen = regexes[0]
    if chosen is None:
        chosen = longest
    if chosen is None:
        return (*chain, block)
    return select_location(chosen, uri, (*chain, block))
