"""What the app's own source does with the settings some checks judge.

``cookies.remember_secure``, ``config.preferred_url_scheme`` and
``config.trusted_hosts`` judge a setting by how the app uses it: whether it ever asks
for a remember cookie, and where it builds absolute URLs. This module parses the ``.py``
files of the app's project with :mod:`ast` (it never imports or runs them) and records
those facts, each with the file and line it was seen at.

Where a ``url_for`` call runs is judged from the function around it: a request handler
(a route, a request hook, a method of a view class), a CLI command, a background job
(Celery, RQ, APScheduler, huey, dramatiq, a thread) or module level. A helper takes the
places of the functions that call it, matched by name across the project. Only the files
that can matter are parsed: those holding a fact, then, round by round, those naming a
function that leads to one; parsing stays proportional to what the app does with URLs
and logins, not to its size. The scan is bounded in files, bytes and time, skips
virtualenvs, caches and tests folders, and runs in a thread of its own, so a large
project finishes for the next report even when a check could not wait for it. A complete
result is kept a few minutes: the code of a running process does not change.
"""

from __future__ import annotations

import ast
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._source_scan import SKIP_DIRS, _is_venv

#: Where code runs: in a request, a CLI command, a background job, or at import time.
REQUEST = "request"
CLI = "cli"
TASK = "task"
MODULE = "module"
#: Places where no request is active, so ``url_for(_external=True)`` takes its scheme
#: from ``PREFERRED_URL_SCHEME`` (and its host from ``SERVER_NAME``).
OUTSIDE_REQUEST = frozenset({CLI, TASK, MODULE})

MAX_FILES = 5_000
MAX_FILE_BYTES = 512 * 1024
MAX_TOTAL_BYTES = 48 * 1024 * 1024
#: Seconds the scan may take in its thread, whatever the checks waiting for it can wait.
SCAN_BUDGET = 30.0
#: A complete result is reused this long.
RESULT_TTL = 300.0
#: Folders of tests: they build URLs and log users in under test request contexts.
TEST_DIRS = frozenset({"tests", "test", "testing"})
#: Words of the facts recorded (an external ``url_for`` spells ``_external`` or
#: ``_scheme``): a file without any of them holds none.
FACT_WORDS = (
    b"_external",
    b"_scheme",
    b"login_user",
    b"request.host",
    b"url_root",
    b"root_url",
    b"host_url",
)
#: Words in the name of a helper worth reading for whether it sends mail.
MAIL_HELPER_WORDS = ("mail", "send", "notif", "message")
#: Rounds of following callers from the functions with facts (and one of their callees,
#: for helpers that send mail): deeper call chains are placed by what is known.
MAX_ROUNDS = 6

#: Decorators (their last name) that make a function run in a request.
REQUEST_DECORATORS = frozenset(
    {
        "route",
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "before_request",
        "after_request",
        "before_app_request",
        "after_app_request",
        "teardown_request",
        "teardown_app_request",
        "errorhandler",
        "app_errorhandler",
        "context_processor",
        "app_context_processor",
        "url_value_preprocessor",
        "login_required",
        "fresh_login_required",
        "user_loader",
        "request_loader",
        "unauthorized_handler",
        "needs_refresh_handler",
        "roles_required",
        "roles_accepted",
        "auth_required",
        "permission_required",
        "expose",  # Flask-Admin
    }
)
#: Calls that register their first argument as a request hook or handler.
REQUEST_REGISTRATIONS = frozenset(
    {
        "before_request",
        "after_request",
        "before_app_request",
        "after_app_request",
        "teardown_request",
        "context_processor",
    }
)
#: Decorators that make a function a command line command (click, Flask-Script).
CLI_DECORATORS = frozenset({"command", "group", "with_appcontext", "option"})
#: Decorators that make a function a background job (Celery, RQ, APScheduler, huey, dramatiq).
TASK_DECORATORS = frozenset(
    {"task", "shared_task", "periodic_task", "db_task", "job", "scheduled_job", "actor", "cron"}
)
#: Calls that hand a function to a thread, a queue or a scheduler.
TASK_SUBMISSIONS = frozenset(
    {
        "enqueue",
        "enqueue_call",
        "enqueue_at",
        "enqueue_in",
        "add_job",
        "submit",
        "spawn",
        "start_new_thread",
        "call_later",
        "apply_async",
    }
)
THREAD_CLASSES = frozenset({"Thread", "Process", "Timer", "Greenlet"})
#: Base classes (their last name ends so) whose methods handle requests.
VIEW_BASE_SUFFIXES = ("View", "Resource")
#: ``request`` attributes that are URLs made from the Host header the client sent.
HOST_URL_ATTRIBUTES = frozenset({"host_url", "url_root", "root_url"})
#: Calls that send e-mail (Flask-Mail, Flask-Mailman, smtplib, common helpers).
MAIL_CALLS = frozenset(
    {"send_mail", "send_email", "sendmail", "send_message", "send_mass_mail", "EmailMessage"}
)


@dataclass(frozen=True)
class Place:
    """Where a fact was seen: a file of the project, a line, the function around it."""

    path: str  # relative to the project folder
    line: int
    function: str  # "" at module level
    contexts: frozenset[str]  # REQUEST, CLI, TASK, MODULE; empty when nothing says
    sends_mail: bool = False
    #: For ``url_for``: the scheme is a literal (``_scheme="https"``), not the setting's.
    literal_scheme: bool = False

    @property
    def outside_request(self) -> bool:
        return bool(self.contexts & OUTSIDE_REQUEST)

    @property
    def maybe_in_request(self) -> bool:
        """In a request handler, or in code nothing places elsewhere."""
        return REQUEST in self.contexts or not self.contexts

    def __str__(self) -> str:
        where = f"{self.function}() in " if self.function else "module level of "
        return f"{where}{self.path}:{self.line}"


@dataclass(frozen=True)
class CodeUse:
    """The facts the use-aware checks read, and how much of the project they cover."""

    root: str
    files: int  # .py files read
    complete: bool
    #: ``login_user(..., remember=<anything but False>)`` calls.
    remember_logins: tuple[Place, ...] = ()
    #: ``url_for(..., _external=True)`` or ``url_for(..., _scheme=...)`` calls.
    external_urls: tuple[Place, ...] = ()
    #: ``request.host_url``/``url_root`` reads, ``request.host`` put after a scheme.
    request_hosts: tuple[Place, ...] = ()

    def describe_scope(self) -> str:
        """How much was read, as ``12 .py files under /srv/app`` (and whether all)."""
        cut = "" if self.complete else ", not all of them before the time limit"
        return f"{self.files} .py files under {self.root}{cut}"


@dataclass
class _Function:
    name: str
    qualname: str
    path: str
    method: bool = False
    contexts: set[str] = field(default_factory=set)
    #: (name, called on self or cls): ``self.f()`` reaches methods, other calls functions.
    calls: set[tuple[str, bool]] = field(default_factory=set)
    sends_mail: bool = False
    remember: list[int] = field(default_factory=list)
    urls: list[tuple[int, bool]] = field(default_factory=list)  # (line, literal scheme)
    hosts: list[int] = field(default_factory=list)


def _last_name(node: ast.expr) -> str | None:
    """``a.b.c`` -> ``c``, ``f`` -> ``f``, ``d(...)`` -> the name of ``d``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, None)


#: Nodes with nothing below them this scan looks at.
_LEAVES = (ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.cmpop, ast.unaryop)


class _FileVisitor(ast.NodeVisitor):
    """Collect the functions of one file and the names other code hands to threads,
    queues and URL rules."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.module = _Function("", "", path, contexts={MODULE})
        self.functions: list[_Function] = [self.module]
        self.marks: list[tuple[str, str]] = []  # (function name, context)
        self._stack: list[_Function] = [self.module]
        self._classes: list[tuple[str, bool]] = []  # (name, is a view class)

    # A faster walk than NodeVisitor's: parsing a large project is mostly walking it.
    def visit(self, node: ast.AST) -> None:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            method(node)
        elif not isinstance(node, _LEAVES):
            for child in ast.iter_child_nodes(node):
                self.visit(child)

    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    # --- definitions -------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        bases = [_last_name(base) or "" for base in node.bases]
        view = any(name.endswith(VIEW_BASE_SUFFIXES) for name in bases)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._classes.append((node.name, view))
        for statement in node.body:
            self.visit(statement)
        self._classes.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        prefix = ".".join(name for name, _ in self._classes)
        qualname = f"{prefix}.{node.name}" if prefix else node.name
        function = _Function(node.name, qualname, self.path, method=bool(self._classes))
        if self._classes and self._classes[-1][1]:
            function.contexts.add(REQUEST)
        for decorator in node.decorator_list:
            name = _last_name(decorator)
            if name in REQUEST_DECORATORS:
                function.contexts.add(REQUEST)
            elif name in CLI_DECORATORS:
                function.contexts.add(CLI)
            elif name in TASK_DECORATORS:
                function.contexts.add(TASK)
            self.visit(decorator)  # decorators run where the function is defined
        self.functions.append(function)
        self._stack.append(function)
        for statement in node.body:
            self.visit(statement)
        self._stack.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    # --- uses ----------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        current = self._stack[-1]
        name = _last_name(node.func)
        if name is not None:
            on_self = isinstance(node.func, ast.Attribute) and _last_name(node.func.value) in (
                "self",
                "cls",
            )
            current.calls.add((name, on_self))
            self._record_call(current, name, node)
        self.generic_visit(node)

    def _record_call(self, current: _Function, name: str, node: ast.Call) -> None:
        keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
        if (
            name == "format"
            and isinstance(node.func, ast.Attribute)
            and _names_a_scheme(node.func.value)
            and any(_is_request_host(v) for v in [*node.args, *keywords.values()])
        ):
            current.hosts.append(node.lineno)
        if name == "url_for":
            external = "_external" in keywords and not _is_false(keywords["_external"])
            scheme = keywords.get("_scheme")
            if external or (scheme is not None and not _is_false(scheme)):
                literal = isinstance(scheme, ast.Constant) and isinstance(scheme.value, str)
                current.urls.append((node.lineno, literal))
        elif name == "login_user":
            remember = keywords.get("remember")
            if remember is None and len(node.args) > 1:
                remember = node.args[1]
            if remember is not None and not _is_false(remember):
                current.remember.append(node.lineno)
        elif name in MAIL_CALLS or (name == "send" and _sends_on_mail(node.func)):
            current.sends_mail = True
        elif name == "Message" and ("recipients" in keywords or "subject" in keywords):
            current.sends_mail = True  # Flask-Mail's Message
        if name in THREAD_CLASSES:
            self._mark(keywords.get("target"), TASK)
        elif name in TASK_SUBMISSIONS:
            self._mark(keywords.get("func") or (node.args[0] if node.args else None), TASK)
        elif name == "add_url_rule":
            view = keywords.get("view_func") or (node.args[2] if len(node.args) > 2 else None)
            self._mark(view, REQUEST)
        elif name == "register_error_handler" and len(node.args) > 1:
            self._mark(node.args[1], REQUEST)
        elif name in REQUEST_REGISTRATIONS and node.args:
            self._mark(node.args[0], REQUEST)

    def _mark(self, target: ast.expr | None, context: str) -> None:
        name = None if target is None else _last_name(target)
        if name is not None and not isinstance(target, ast.Call):
            self.marks.append((name, context))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (
            node.attr in HOST_URL_ATTRIBUTES
            and isinstance(node.ctx, ast.Load)
            and _last_name(node.value) == "request"
        ):
            self._stack[-1].hosts.append(node.lineno)
        self.generic_visit(node)

    # ``request.host`` alone names the server (audit logs, comparisons); it makes a URL
    # when it is put after a scheme: f"https://{request.host}/...", "http://" + request.host,
    # "%s://%s" % (scheme, request.host), "https://{}".format(request.host).
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        parts = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
        self._host_in_url(node, node.values, parts)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Add):
            operands = _added(node)
            self._host_in_url(node, operands, operands)
            for operand in operands:  # not the inner additions again
                self.visit(operand)
            return
        if isinstance(node.op, ast.Mod):
            values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            self._host_in_url(node, [node.left], values)
        self.generic_visit(node)

    def _host_in_url(
        self, node: ast.expr, texts: Iterable[ast.expr], values: Iterable[ast.expr]
    ) -> None:
        if any(_names_a_scheme(t) for t in texts) and any(_is_request_host(v) for v in values):
            self._stack[-1].hosts.append(node.lineno)


def _added(node: ast.expr) -> list[ast.expr]:
    """The operands of ``a + b + c``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _added(node.left) + _added(node.right)
    return [node]


def _names_a_scheme(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and "://" in node.value


def _is_request_host(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "host"
        and _last_name(node.value) == "request"
    )


def _sends_on_mail(func: ast.expr) -> bool:
    """``mail.send(...)``: Flask-Mail's and Flask-Mailman's send."""
    return isinstance(func, ast.Attribute) and "mail" in (_last_name(func.value) or "").lower()


def _python_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIP_DIRS
            and d not in TEST_DIRS
            and not d.startswith(".")
            and not _is_venv(here / d)
        )
        for name in sorted(files):
            if (
                name.endswith(".py")
                and not name.startswith("test_")
                and not name.endswith("_test.py")
                and name != "conftest.py"
            ):
                yield here / name


def _read_project(root: Path, deadline: float) -> tuple[dict[Path, bytes], bool]:
    """The project's ``.py`` files (bounded in count, bytes and time), and whether all."""
    sources: dict[Path, bytes] = {}
    total = 0
    for count, path in enumerate(_python_files(root)):
        if count >= MAX_FILES or total > MAX_TOTAL_BYTES or time.monotonic() > deadline:
            return sources, False
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        sources[path] = data
        total += len(data)
    return sources, True


def _parse_file(root: Path, path: Path, data: bytes) -> _FileVisitor | None:
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # not Python this interpreter reads: nothing to record
    try:
        shown = str(path.relative_to(root))
    except ValueError:
        shown = str(path)
    visitor = _FileVisitor(shown)
    try:
        visitor.visit(tree)
    except RecursionError:
        return None
    return visitor


def _leading_to_facts(functions: list[_Function]) -> set[tuple[str, bool]]:
    """The (name, method) of the functions with facts, and of those that call them."""
    found = {(f.name, f.method) for f in functions if f.name and (f.remember or f.urls or f.hosts)}
    grown = True
    while grown:
        grown = False
        for function in functions:
            key = (function.name, function.method)
            if function.name and key not in found and function.calls & found:
                found.add(key)
                grown = True
    return found


def _parse_project(
    root: Path, deadline: float
) -> tuple[list[_Function], list[tuple[str, str]], int, bool]:
    """Parse the files that can matter: those with a fact, then, round by round, those
    naming a function that leads to one (its callers, and where it is registered as a
    route, a command or a job), and where the callees of the functions with facts are
    defined (a helper that sends mail). A file naming none of these cannot change a
    result, so parsing stays proportional to what the app does, not to its size."""
    sources, complete = _read_project(root, deadline)
    functions: list[_Function] = []
    marks: list[tuple[str, str]] = []
    parsed: set[Path] = set()
    searched: set[bytes] = set()
    wanted = [re.escape(word) for word in FACT_WORDS]
    for _ in range(MAX_ROUNDS):
        searched.update(wanted)
        pattern = re.compile(b"|".join(wanted))
        batch = [p for p, data in sources.items() if p not in parsed and pattern.search(data)]
        for path in batch:
            if time.monotonic() > deadline:
                return functions, marks, len(sources), False
            parsed.add(path)
            visitor = _parse_file(root, path, sources[path])
            if visitor is not None:
                functions.extend(visitor.functions)
                marks.extend(visitor.marks)
        with_facts = [f for f in functions if f.remember or f.urls or f.hosts]
        # A method is reached as ``.name``; a function by its name, called or handed over.
        candidates = {
            (rb"\." if method else rb"\b") + re.escape(name.encode()) + rb"\b"
            for name, method in _leading_to_facts(functions)
        }
        candidates |= {
            rb"\bdef\s+" + re.escape(name.encode()) + rb"\b"
            for f in with_facts
            for name, _ in f.calls
            if any(word in name.lower() for word in MAIL_HELPER_WORDS)
        }
        wanted = sorted(candidates - searched)
        if not wanted:
            break
    return functions, marks, len(sources), complete


def _places(functions: list[_Function], marks: Iterable[tuple[str, str]]) -> None:
    """Give each function the contexts it is handed to, then those of its callers."""
    by_name: dict[tuple[str, bool], list[_Function]] = {}
    for function in functions:
        if function.name:
            by_name.setdefault((function.name, function.method), []).append(function)
    for name, context in marks:
        for function in by_name.get((name, False), []) + by_name.get((name, True), []):
            function.contexts.add(context)
    changed = True
    rounds = 0
    while changed and rounds < 50:  # a fixed point: contexts only grow, four at most
        changed = False
        rounds += 1
        for caller in functions:
            if not caller.contexts:
                continue
            for called in caller.calls:
                for callee in by_name.get(called, []):
                    if callee is not caller and not caller.contexts <= callee.contexts:
                        callee.contexts |= caller.contexts
                        changed = True
    # One level of helpers: a function that calls one that sends mail sends it too.
    senders = {(f.name, f.method) for f in functions if f.sends_mail and f.name}
    for function in functions:
        if function.calls & senders:
            function.sends_mail = True


def _place(function: _Function, line: int, literal: bool = False) -> Place:
    return Place(
        function.path,
        line,
        function.qualname,
        frozenset(function.contexts),
        function.sends_mail,
        literal,
    )


def _scan(root: Path, deadline: float) -> CodeUse:
    functions, marks, files, complete = _parse_project(root, deadline)
    _places(functions, marks)
    remember: list[Place] = []
    urls: list[Place] = []
    hosts: list[Place] = []
    for function in functions:
        remember += [_place(function, line) for line in function.remember]
        urls += [_place(function, line, literal) for line, literal in function.urls]
        hosts += [_place(function, line) for line in function.hosts]
    return CodeUse(
        root=str(root),
        files=files,
        complete=complete,
        remember_logins=tuple(remember),
        external_urls=tuple(urls),
        request_hosts=tuple(hosts),
    )


class _Scan:
    """One scan of one project folder, run in a daemon thread of its own."""

    def __init__(self, root: Path) -> None:
        self.done = threading.Event()
        self.result: CodeUse | None = None
        self.expires = 0.0
        thread = threading.Thread(
            target=self._run, args=(root,), name="prodready-code-scan", daemon=True
        )
        thread.start()

    def _run(self, root: Path) -> None:
        try:
            self.result = _scan(root, time.monotonic() + SCAN_BUDGET)
        except Exception:  # a scan that breaks judges nothing
            self.result = CodeUse(root=str(root), files=0, complete=False)
        self.expires = time.monotonic() + (RESULT_TTL if self.result.complete else 0.0)
        self.done.set()


_scans: dict[str, _Scan] = {}
_lock = threading.Lock()


def code_use(root: Path, wait: float) -> CodeUse:
    """The facts of the project under ``root``, waiting at most ``wait`` seconds.

    One scan per folder runs at a time and every caller shares it; a caller that cannot
    wait for it gets an incomplete, empty result (the scan goes on for the next one).
    """
    key = str(root)
    with _lock:
        scan = _scans.get(key)
        if scan is None or (scan.done.is_set() and scan.expires <= time.monotonic()):
            scan = _scans[key] = _Scan(root)
    if scan.done.wait(max(0.0, wait)) and scan.result is not None:
        return scan.result
    return CodeUse(root=key, files=0, complete=False)


def clear_cache() -> None:
    with _lock:
        _scans.clear()
