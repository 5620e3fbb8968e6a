"""``nginx.*``: does the nginx in front of the app agree with it?

The configuration judged is the file named for the run (``flask readiness
--nginx-config FILE`` or ``PRODREADY_NGINX_CONFIG``), else ``/etc/nginx/nginx.conf``
when it can be read; includes are followed. It is parsed, never run: ``nginx -t`` binds
every ``listen`` address and fails for an unprivileged user below port 1024, so parsing
is the judgment (:mod:`._nginx_config`, with crossplane, an optional dependency).

The app's locations are those whose ``proxy_pass``/``uwsgi_pass`` reaches the address
the app is served on: gunicorn's bind, from the running worker (live) or the file given
with ``--gunicorn-config`` (CLI). Without a known bind, every proxying location is
judged. A configuration found by default that proxies nothing fronts no app: its checks
are skipped, saying so.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.project import project_root
from ..engine.registry import CLI, check
from ._nginx_config import (
    Chain,
    CrossplaneMissing,
    Endpoint,
    NginxConfig,
    Node,
    Pass,
    bind_endpoint,
    effective,
    human_size,
    location_label,
    parse_config,
    parse_size,
    passes,
    reaches,
    select_location,
    set_headers,
)
from .proxy import proxy_trust

#: Where nginx keeps its configuration when none is named.
DEFAULT_CONFIG = "/etc/nginx/nginx.conf"
#: nginx's ``client_max_body_size`` when no level sets it.
DEFAULT_BODY_SIZE = "1m"
#: The headers the location proxying to the app must set, as they are written.
FORWARDED_HEADERS = ("Host", "X-Forwarded-For", "X-Forwarded-Proto")
#: Errors of an unparsable configuration named in the message (all are in ``observed``).
MAX_ERRORS_SHOWN = 3
#: Targets named in an ``nginx.upstream`` message.
MAX_TARGETS_SHOWN = 5
#: Files of the static folder looked at for a sample name (regex locations match names).
MAX_STATIC_SCAN = 200
INSTALL_HINT = "crossplane is not installed: pip install 'flask-prodready[nginx]'"
RELOAD = "then nginx -t and systemctl reload nginx"


class _Parsed:
    """The configurations parsed in one run, each once, shared by the six checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[str, NginxConfig] = {}

    def get(self, path: str) -> NginxConfig:
        with self._lock:
            if path not in self._configs:
                self._configs[path] = parse_config(path)
            return self._configs[path]


#: An ``include`` directive and a directive that proxies, as they read in any file.
_INCLUDE = re.compile(r"(?m)^\s*include\s+([^;#]+);")
_PROXIES = re.compile(r"\b(?:proxy_pass|uwsgi_pass)\b")
#: Most files, and bytes of each, read when looking for a proxy through includes.
MAX_SCANNED_FILES = 200
MAX_FILE_BYTES = 1024 * 1024


def mentions_a_proxy(path: str) -> bool:
    """Whether the configuration at ``path`` or a file it includes names ``proxy_pass`` or
    ``uwsgi_pass`` at all, by a look at the text (includes followed as nginx globs them,
    relative to the main file's folder). A host's stock configuration that proxies
    nothing is set aside this way before crossplane (tens of milliseconds to import) is
    loaded; a configuration named for the run is always parsed."""
    prefix = os.path.dirname(path)
    queue, seen = [path], set[str]()
    while queue and len(seen) < MAX_SCANNED_FILES:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(current, encoding="utf-8", errors="replace") as file:
                text = file.read(MAX_FILE_BYTES)
        except OSError:
            continue
        if _PROXIES.search(text):
            return True
        for pattern in _INCLUDE.findall(text):
            pattern = pattern.strip().strip("\"'")
            queue.extend(sorted(glob.glob(os.path.join(prefix, pattern))))
    return len(seen) >= MAX_SCANNED_FILES  # too many to read: let the parser judge


def _config_path(ctx: CheckContext) -> tuple[str, bool]:
    """(the configuration to judge, whether it was named for the run), or skip."""
    named = ctx.nginx_config
    if named:
        path = os.path.abspath(named)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            ctx.skip(f"the nginx configuration {path} cannot be read here")
        return path, True
    if os.path.isfile(DEFAULT_CONFIG) and os.access(DEFAULT_CONFIG, os.R_OK):
        if not mentions_a_proxy(DEFAULT_CONFIG):
            ctx.skip(
                f"the nginx configuration found at {DEFAULT_CONFIG} proxies to nothing (no "
                "proxy_pass or uwsgi_pass in it or its includes), so that nginx does not front "
                "the app; name the one that does with --nginx-config FILE or "
                "PRODREADY_NGINX_CONFIG"
            )
        return DEFAULT_CONFIG, False
    ctx.skip(
        f"no nginx configuration was found ({DEFAULT_CONFIG} cannot be read here); name one "
        "with --nginx-config FILE or PRODREADY_NGINX_CONFIG"
    )


def _parsed(ctx: CheckContext) -> tuple[NginxConfig, bool]:
    path, named = _config_path(ctx)
    try:
        return ctx.shared(_Parsed).get(path), named
    except CrossplaneMissing:
        ctx.skip(INSTALL_HINT)


@dataclass(frozen=True)
class _Site:
    """What the checks of one configuration judge: the app's proxying locations."""

    config: NginxConfig
    passes: tuple[Pass, ...]
    #: gunicorn's bind addresses, and where they were read, when known.
    binds: tuple[Endpoint, ...]
    bind_source: str | None


def _binds(ctx: CheckContext) -> tuple[tuple[Endpoint, ...], str | None]:
    settings = ctx.gunicorn
    if settings is None:
        return (), None
    found = tuple(e for e in (bind_endpoint(b) for b in settings.bind) if e is not None)
    return found, settings.source


def _unknown_bind(ctx: CheckContext) -> str:
    if ctx.mode == CLI:
        return "pass --gunicorn-config FILE to know the address the app is served on"
    return (
        "the address the app is served on is unknown: it is not served by gunicorn here "
        f"(server: {ctx.server_software or 'unknown'})"
    )


def _site(ctx: CheckContext) -> tuple[_Site, list[Pass]]:
    """The valid configuration, all its proxying locations, and the app's among them (or
    skip, saying why there are none to judge)."""
    config, named = _parsed(ctx)
    if config.errors:
        ctx.skip(f"the nginx configuration {config.path} does not parse (see nginx.invalid)")
    found = passes(config)
    if not found and not named:
        ctx.skip(
            f"the nginx configuration found at {config.path} proxies to nothing, so that "
            "nginx does not front the app; name the one that does with --nginx-config FILE "
            "or PRODREADY_NGINX_CONFIG"
        )
    binds, source = _binds(ctx)
    site = _Site(config, tuple(found), binds, source)
    if not binds:
        return site, found
    return site, [p for p in found if any(reaches(t, b) for t in p.targets for b in binds)]


def _app_passes(ctx: CheckContext) -> tuple[_Site, list[Pass]]:
    """The app's proxying locations, for the checks that judge them."""
    site, mine = _site(ctx)
    if not site.passes:
        ctx.skip(f"no location of {site.config.path} proxies to anything (see nginx.upstream)")
    if not mine:
        shown = ", ".join(map(str, site.binds))
        ctx.skip(
            f"no location of {site.config.path} proxies to the app's bind ({shown}): "
            "see nginx.upstream"
        )
    return site, mine


def _servers(mine: Sequence[Pass]) -> list[tuple[Node, Chain]]:
    """The server blocks of the app's locations, each once, with the blocks around them."""
    seen: dict[tuple[str, int], tuple[Node, Chain]] = {}
    for item in mine:
        server = item.server
        if server is None:
            continue
        index = item.chain.index(server)
        seen.setdefault((server.file, server.line), (server, item.chain[:index]))
    return list(seen.values())


def _server_label(server: Node) -> str:
    names = [name for node in server.children("server_name") for name in node.args]
    named = f" {' '.join(names)}" if names else ""
    return f"the server block{named} ({server.where})"


# --- nginx.invalid --------------------------------------------------------------------


@check(
    "nginx.invalid",
    level=Level.ERROR,
    blocking=True,
    title="The nginx configuration parses",
    hint="Fix the line named (a missing ; or }, a directive in the wrong block, a wrong "
    f"number of arguments, an include that cannot be read), {RELOAD}.",
)
def check_invalid(ctx: CheckContext) -> Iterator[Finding]:
    config, _ = _parsed(ctx)
    if config.errors:
        shown = "; ".join(str(error) for error in config.errors[:MAX_ERRORS_SHOWN])
        more = len(config.errors) - MAX_ERRORS_SHOWN
        yield ctx.finding(
            f"The nginx configuration {config.path} does not parse: {shown}"
            + (f" (and {more} more)" if more > 0 else "")
            + ". nginx refuses to start or reload with it.",
            observed={
                "config": config.path,
                "errors": [
                    {"file": e.file, "line": e.line, "error": e.error} for e in config.errors
                ],
            },
        )


# --- nginx.upstream -------------------------------------------------------------------


@check(
    "nginx.upstream",
    level=Level.ERROR,
    blocking=True,
    title="nginx proxies to the address the app is served on",
    hint="Point proxy_pass at gunicorn's bind (proxy_pass http://127.0.0.1:8000; or "
    "proxy_pass http://unix:/run/yourapp.sock:; or an upstream block whose server is "
    f"that address), {RELOAD}.",
)
def check_upstream(ctx: CheckContext) -> Iterator[Finding]:
    site, mine = _site(ctx)
    if not site.binds:
        ctx.skip(_unknown_bind(ctx))
    binds = ", ".join(map(str, site.binds))
    observed = {
        "config": site.config.path,
        "bind": [str(b) for b in site.binds],
        "targets": [f"{p.written} ({p.directive.where})" for p in site.passes],
    }
    if not mine:
        dynamic = [p for p in site.passes if p.dynamic]
        if dynamic:
            ctx.skip(
                f"{dynamic[0].written} ({dynamic[0].directive.where}) is only known at run "
                "time, and no other location proxies to the app's bind"
            )
        if not site.passes:
            yield ctx.finding(
                f"No location of {site.config.path} has a proxy_pass or uwsgi_pass: nginx "
                f"sends nothing to the app, served on {binds} (from {site.bind_source}).",
                observed=observed,
            )
            return
        targets = [_where_it_goes(p) for p in site.passes[:MAX_TARGETS_SHOWN]]
        more = len(site.passes) - MAX_TARGETS_SHOWN
        yield ctx.finding(
            f"No proxy_pass or uwsgi_pass of {site.config.path} reaches the app, served on "
            f"{binds} (from {site.bind_source}): nginx sends requests to "
            + "; ".join(targets)
            + (f" and {more} more" if more > 0 else "")
            + ", so visitors get 502 Bad Gateway or another app.",
            observed=observed,
        )
        return
    for item in mine:
        if item.directive.name == "uwsgi_pass":
            yield ctx.finding(
                f"{_capitalized(item.label)} sends requests to the app on {binds} with "
                f"`{item.written}`: uwsgi_pass speaks the uwsgi protocol, and gunicorn "
                "speaks HTTP, so every request fails with 502 Bad Gateway.",
                hint=f"Use proxy_pass http://ADDRESS; for gunicorn (uwsgi_pass is for uWSGI), "
                f"{RELOAD}.",
                observed=observed,
            )


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _where_it_goes(item: Pass) -> str:
    """``location / (site.conf:12) to 127.0.0.1:8001 (upstream app)``."""
    if item.dynamic:
        return f"{item.label} to `{item.written}`, only known at run time"
    targets = ", ".join(map(str, item.targets)) or "no address"
    through = f" (upstream {item.upstream})" if item.upstream else ""
    return f"{item.label} to {targets}{through}"


# --- nginx.forwarded_headers ---------------------------------------------------------


def _gunicorn_trusts(ctx: CheckContext, item: Pass) -> bool | None:
    """Whether gunicorn applies X-Forwarded-Proto from nginx (its ``forwarded_allow_ips``
    covers the address nginx connects from), or ``None`` when that cannot be told."""
    settings = ctx.gunicorn
    if settings is None:
        return None
    allowed = [entry.strip() for entry in settings.forwarded_allow_ips]
    if "*" in allowed:
        return True
    sources: list[str] = []
    for target in item.targets:
        if target.socket_path is not None:
            return True  # gunicorn trusts every peer of a unix socket
        binding = effective(item.chain, "proxy_bind")
        if binding and binding[0].args and binding[0].args[0] != "off":
            sources.append(binding[0].args[0])
        elif target.host == "localhost":
            sources += ["127.0.0.1", "::1"]
        else:
            sources.append(target.host)
    networks = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    for source in sources:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return None
        if not address.is_loopback:
            return None  # nginx connects from an address of this host nobody names here
        if any(address.version == net.version and address in net for net in networks):
            return True
    return False


def _header_directive(item: Pass) -> str:
    """The directive that sets the headers ``item`` sends."""
    return "uwsgi_param" if item.directive.name == "uwsgi_pass" else "proxy_set_header"


def _header_problems(ctx: CheckContext, item: Pass) -> list[str]:
    """What is wrong with the forwarded headers of one proxying location."""
    uwsgi = item.directive.name == "uwsgi_pass"
    directive = _header_directive(item)
    headers = set_headers(item.chain, directive)
    location = item.location
    own = location is not None and bool(location.children(directive))
    missing = []
    for name in FORWARDED_HEADERS:
        if uwsgi and name == "Host":
            continue  # uwsgi_pass passes the request's own headers, Host with them
        value = headers.get(name.lower(), ("", None))[0]
        if value in ("", '""', "''"):
            missing.append(name)
    problems = []
    if missing:
        text = f"does not set {' or '.join(missing)}"
        inherited = [
            name.lower()
            for name in missing
            if own
            and item.chain
            and set_headers(item.chain[: item.chain.index(location)], directive).get(name.lower())
        ]
        if inherited:
            text += (
                f" ({', '.join(n for n in missing if n.lower() in inherited)} set around it "
                f"do not count: a location with {directive} lines of its own inherits none)"
            )
        effects = {
            "Host": "the app sees the upstream's name as Host, so TRUSTED_HOSTS and "
            "url_for(_external=True) go wrong",
            "X-Forwarded-For": "the app sees nginx's address as every client's",
            "X-Forwarded-Proto": "the app cannot tell HTTPS from HTTP",
        }
        problems.append(f"{text}: {'; '.join(effects[name] for name in missing)}")
    trust = proxy_trust(ctx.app)
    x_for = trust.x_for if trust else 0
    x_proto = trust.x_proto if trust else 0
    name = trust.name if trust else "ProxyFix"
    if "X-Forwarded-For" not in missing:
        value = headers["x-forwarded-for"][0]
        appends = "$proxy_add_x_forwarded_for" in value or "$http_x_forwarded_for" in value
        if x_for == 0:
            problems.append(
                "sets X-Forwarded-For, but nothing in the app trusts it (no ProxyFix with "
                "x_for=1): request.remote_addr is nginx's address"
            )
        elif x_for > 1 and appends:
            problems.append(
                f"adds one X-Forwarded-For entry (nginx is one hop), but {name} trusts "
                f"x_for={x_for}: unless {x_for - 1} more proxies in front of nginx add "
                "theirs, clients choose the address the app sees"
            )
        elif x_for > 1:
            problems.append(
                f"sends a single X-Forwarded-For address ({value}), but {name} trusts "
                f"x_for={x_for}: it ignores a chain that short, and the app sees nginx's "
                "address"
            )
    if "X-Forwarded-Proto" not in missing and x_proto != 1:
        gunicorn = _gunicorn_trusts(ctx, item)
        if x_proto > 1 and not gunicorn:
            problems.append(
                f"sends one X-Forwarded-Proto value, but {name} trusts x_proto={x_proto}: "
                "it ignores a single value, and the app cannot tell HTTPS from HTTP"
            )
        elif x_proto == 0 and gunicorn is False:
            assert ctx.gunicorn is not None
            allowed = ",".join(ctx.gunicorn.forwarded_allow_ips) or "nothing"
            problems.append(
                "sets X-Forwarded-Proto, but nothing applies it: no ProxyFix with "
                f"x_proto=1, and gunicorn's forwarded_allow_ips ({allowed}, from "
                f"{ctx.gunicorn.source}) does not cover the address nginx connects from"
            )
    return problems


@check(
    "nginx.forwarded_headers",
    level=Level.ERROR,
    blocking=True,
    title="nginx sends Host, X-Forwarded-For and -Proto, as many hops as the app trusts",
    hint="In the location that proxies to the app: proxy_set_header Host $host; "
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header "
    "X-Forwarded-Proto $scheme; and trust one hop in the app: "
    f"ProxyFix(app.wsgi_app, x_for=1, x_proto=1); {RELOAD}.",
)
def check_forwarded_headers(ctx: CheckContext) -> Iterator[Finding]:
    _, mine = _app_passes(ctx)
    trust = proxy_trust(ctx.app)
    wanted = {name.lower() for name in FORWARDED_HEADERS}
    for item in mine:
        problems = _header_problems(ctx, item)
        if problems:
            headers = set_headers(item.chain, _header_directive(item))
            yield ctx.finding(
                f"The {item.label} that proxies to the app " + "; it ".join(problems) + ".",
                observed={
                    "location": item.label,
                    "headers": {k: v for k, (v, _) in headers.items() if k in wanted},
                    "x_for": trust.x_for if trust else None,
                    "x_proto": trust.x_proto if trust else None,
                },
            )


# --- nginx.static ---------------------------------------------------------------------


def _sample_file(folder: str) -> str:
    """A file name of the static folder (regex locations often match by extension)."""
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_STATIC_SCAN:
                    break
                if entry.is_file():
                    return entry.name
    except OSError:
        pass
    return "style.css"


def _served_folder(chain: Chain, prefix: str) -> tuple[str | None, str]:
    """The folder nginx serves ``prefix/`` from at the end of ``chain``, and how it says so
    (``alias ...`` or ``root ...``); ``None`` when only known at run time."""
    location = chain[-1] if chain and chain[-1].name == "location" else None
    alias = location.children("alias") if location is not None else []
    if alias and alias[0].args:
        value = alias[0].args[0]
        if "$" in value or location is None:
            return None, f"alias {value}"
        matched = location.args[-1]
        if location.args[0] in ("~", "~*"):
            return None, f"alias {value}"
        rest = prefix[len(matched) :] if prefix.startswith(matched) else ""
        return os.path.join(value, rest.lstrip("/")), f"alias {value}"
    roots = effective(chain, "root")
    value = roots[0].args[0] if roots and roots[0].args else "html"
    if "$" in value:
        return None, f"root {value}"
    return os.path.join(value, prefix.lstrip("/")), f"root {value}"


def _same_folder(served: str, static: Path, project: Path) -> bool:
    """Whether nginx's folder is the app's static folder: the same folder here, or, when
    it does not exist on this machine (a deploy to another path, judged from a
    checkout), a path ending with the static folder's path inside the project."""
    served_path = Path(os.path.normpath(served))
    if served_path.exists():
        try:
            return served_path.samefile(static)
        except OSError:
            return False
    try:
        inside = static.resolve().relative_to(project)
    except ValueError:
        return served_path == static
    parts = inside.parts
    return bool(parts) and served_path.parts[-len(parts) :] == parts


@check(
    "nginx.static",
    level=Level.WARNING,
    blocking=True,
    title="nginx serves the app's static files from its static folder",
    hint="Serve them from disk in the app's server block: location /static/ { alias "
    f"/path/to/yourapp/static/; expires 7d; }}, {RELOAD}.",
)
def check_static(ctx: CheckContext) -> Iterator[Finding]:
    _, mine = _app_passes(ctx)
    folder = ctx.app.static_folder
    url_path = ctx.app.static_url_path
    if not folder or url_path is None or not os.path.isdir(folder):
        return  # no static folder: nothing for nginx to serve
    static = Path(folder).resolve()
    project = project_root(ctx.app.root_path)
    prefix = url_path.rstrip("/") + "/"
    uri = prefix + _sample_file(folder)
    for server, around in _servers(mine):
        chain = select_location(server, uri, around)
        location = chain[-1] if chain[-1].name == "location" else None
        where = f"{location_label(location)} ({chain[-1].where})"
        observed = {"static_url_path": url_path, "static_folder": str(static)}
        passing = [n for n in chain[-1].block or () if n.name in ("proxy_pass", "uwsgi_pass")]
        if location is not None and (passing or location.children("return")):
            yield ctx.finding(
                f"No location of {_server_label(server)} serves {prefix} from the app's "
                f"static folder {static}: {where} "
                + ("sends those requests to the app" if passing else "answers them itself")
                + ", so gunicorn workers spend their time on stylesheets and images.",
                observed={**observed, "location": where},
            )
            continue
        served, how = _served_folder(chain, prefix)
        if served is None or _same_folder(served, static, project):
            continue
        yield ctx.finding(
            f"{_capitalized(where)} of {_server_label(server)} serves {prefix} from "
            f"{os.path.normpath(served)} (`{how}`), not from the app's static folder "
            f"{static}: visitors get 404s or stale files.",
            observed={**observed, "location": where, "nginx_folder": os.path.normpath(served)},
        )


# --- nginx.body_size ------------------------------------------------------------------


@check(
    "nginx.body_size",
    level=Level.WARNING,
    blocking=True,
    title="nginx's client_max_body_size agrees with MAX_CONTENT_LENGTH",
    hint="Set client_max_body_size in the app's server block to MAX_CONTENT_LENGTH "
    f"(16m for 16 MiB), {RELOAD}.",
)
def check_body_size(ctx: CheckContext) -> Iterator[Finding]:
    _, mine = _app_passes(ctx)
    limit = ctx.config.get("MAX_CONTENT_LENGTH")
    app_limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    judged: set[tuple[str, int]] = set()
    for item in mine:
        found = effective(item.chain, "client_max_body_size")
        node = found[0] if found else None
        written = node.args[0] if node is not None and node.args else DEFAULT_BODY_SIZE
        size = parse_size(written)
        key = (node.file, node.line) if node is not None else ("", 0)
        if size is None or key in judged:
            continue
        judged.add(key)
        if node is not None:
            source = f"client_max_body_size {written} ({node.where})"
        else:
            source = f"nginx's default client_max_body_size of {DEFAULT_BODY_SIZE}"
        nginx_text = "unlimited" if size == 0 else human_size(size)
        observed = {
            "location": item.label,
            "client_max_body_size": written,
            "max_content_length": app_limit,
        }
        if app_limit is None:
            if size == 0:
                yield ctx.finding(
                    f"Neither nginx ({source}, at {item.label}) nor the app "
                    "(MAX_CONTENT_LENGTH unset) limits request bodies: any client can send "
                    "bodies as big as the disk.",
                    observed=observed,
                )
            continue
        if size == app_limit:
            continue
        app_text = f"MAX_CONTENT_LENGTH {app_limit} ({human_size(app_limit)})"
        if size != 0 and size < app_limit:
            verdict = (
                f"means {nginx_text}, smaller than the app's {app_text}: uploads between "
                f"{nginx_text} and {human_size(app_limit)}, which the app accepts, get "
                "nginx's 413"
            )
        else:
            if size == 0:
                verdict = f"lifts nginx's limit, while the app allows {app_text}"
            else:
                verdict = f"means {nginx_text}, larger than the app's {app_text}"
            verdict += (
                ": the app is the only guard, so bigger bodies tie up a gunicorn worker "
                "before it refuses them"
            )
        yield ctx.finding(
            f"At {item.label}, {source} {verdict}.",
            observed=observed,
        )


# --- nginx.server_name ----------------------------------------------------------------


def _app_hosts(ctx: CheckContext) -> list[str]:
    """The host names the app answers to: ``SERVER_NAME`` (without port) and
    ``TRUSTED_HOSTS``."""
    hosts = []
    server_name = ctx.config.get("SERVER_NAME")
    if isinstance(server_name, str) and server_name:
        hosts.append(server_name.rsplit(":", 1)[0] if "]" not in server_name else server_name)
    trusted = ctx.config.get("TRUSTED_HOSTS")
    if isinstance(trusted, (list, tuple)):
        hosts += [str(host) for host in trusted if host]
    return [host.lower() for host in hosts]


def _name_matches(name: str, host: str) -> bool:
    """Whether nginx's ``server_name`` entry ``name`` and the app's host ``host`` (a
    TRUSTED_HOSTS entry: ``.example.com`` for subdomains) name a common host."""
    name = name.lower()
    if name.startswith("~"):
        try:
            return re.search(name[1:], host.lstrip(".")) is not None
        except re.error:
            return False
    if host.startswith("."):
        base = host[1:]
        bare = name.lstrip("*.")
        return bare == base or bare.endswith(host)
    if name.startswith("."):  # .example.com: the domain and its subdomains
        return host == name[1:] or host.endswith(name)
    if name.startswith("*."):
        return host.endswith(name[1:])
    if name.endswith(".*"):
        return host.startswith(name[:-1])
    return name == host


@check(
    "nginx.server_name",
    level=Level.WARNING,
    blocking=True,
    title="The app's nginx server block is named for the app's hosts",
    hint="Give the server block that proxies to the app the app's host names "
    "(server_name example.com www.example.com;), keep default_server for a block that "
    f"refuses unknown hosts (return 444;), {RELOAD}.",
)
def check_server_name(ctx: CheckContext) -> Iterator[Finding]:
    _, mine = _app_passes(ctx)
    hosts = _app_hosts(ctx)
    for server, _ in _servers(mine):
        names = [name for node in server.children("server_name") for name in node.args]
        real = [name for name in names if name not in ("_", '""', "''", "")]
        defaults = [
            " ".join(node.args)
            for node in server.children("listen")
            if "default_server" in node.args or "default" in node.args
        ]
        reasons = []
        if not real:
            reasons.append(
                f"its server_name is {' '.join(names)}" if names else "it has no server_name"
            )
        if defaults:
            reasons.append(f"it is the default_server of listen {', '.join(defaults)}")
        if reasons:
            yield ctx.finding(
                f"The app's server block ({server.where}) is the catch-all: "
                + " and ".join(reasons)
                + ", so requests for any host name reach the app, and only the app's "
                "TRUSTED_HOSTS stands between them and a forged Host header.",
                observed={"server_name": names, "default_server": defaults},
            )
        elif hosts and not any(_name_matches(n, h) for n in real for h in hosts):
            yield ctx.finding(
                f"The app's server block ({server.where}) is named {' '.join(real)}, none of "
                f"the hosts the app answers to ({', '.join(hosts)}, from SERVER_NAME and "
                "TRUSTED_HOSTS): requests nginx routes to it are refused by the app, or "
                "the app's hosts are served by another block.",
                observed={"server_name": names, "app_hosts": hosts},
            )
