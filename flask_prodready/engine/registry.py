"""The check registry: what a check is (id, default level, tags, title, modes) and where it lives.

A check is a small function that looks at one thing and yields findings; no finding
means it passed. Its metadata sits next to it in the ``@check(...)`` decorator, so the
catalogue (``flask readiness --list``) is read off the registry, never kept by hand.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .findings import Finding, Level

if TYPE_CHECKING:
    from .context import CheckContext

#: What a check function returns: findings (any iterable, a generator is fine), one
#: finding, or ``None`` for "passed".
CheckResult = Iterable[Finding] | Finding | None
CheckFunc = Callable[["CheckContext"], CheckResult]


class Mode(str, enum.Enum):
    """Where a check can judge.

    ``live``: inside the running server, from ``/_readiness``; ``cli``: ``flask readiness``
    against the app as loaded; ``remote``: a client outside the server (``prodready
    --url``). A ``str`` enum, so ``ctx.mode == "live"`` reads naturally.
    """

    LIVE = "live"
    CLI = "cli"
    REMOTE = "remote"

    def __str__(self) -> str:
        return self.value


LIVE = Mode.LIVE
CLI = Mode.CLI
REMOTE = Mode.REMOTE
MODES = frozenset(Mode)
#: Where a check judges unless it says otherwise: in the server and from the CLI. A check
#: that cannot judge in one of these carries the tags of the modes it can judge in
#: (``live`` for ``server.root``), so ``--tag live`` selects exactly the checks that
#: need a running server; the mode tags are never written by hand.
DEFAULT_MODES = frozenset({LIVE, CLI})
MODE_TAGS = frozenset(mode.value for mode in Mode)

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
TAG_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")

#: ``implemented``: a function runs it. ``engine``: the runner itself reports it (crashes,
#: timeouts).
IMPLEMENTED = "implemented"
ENGINE = "engine"


@dataclass(frozen=True)
class Check:
    """A registered check: its metadata and the function that runs it."""

    id: str
    level: Level
    title: str
    tags: tuple[str, ...]
    hint: str
    modes: frozenset[Mode]
    func: CheckFunc | None
    kind: str = IMPLEMENTED
    origin: str = "flask_prodready"
    #: Seconds this check may take; ``None`` means ``PRODREADY_CHECK_TIMEOUT``. Only for
    #: work that is slow by nature and never on the request path (a pip-audit run).
    timeout: float | None = None
    #: Whether the check waits on I/O (a database, a subprocess, the network, a walk of
    #: the file system). Blocking checks run each in a thread of its own under the
    #: timeout; pure ones run one after another in the thread that asked for the report.
    blocking: bool = False
    #: Former ids of this check, still accepted wherever ids are given (silences,
    #: ``--exclude``, ``?exclude=``, ``PRODREADY_HEALTHZ_CHECKS``) so a rename breaks no
    #: configuration. Findings always carry :attr:`id`.
    aliases: tuple[str, ...] = ()

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    def __call__(self, ctx: CheckContext) -> CheckResult:
        """Call the function directly (handy in tests); the runner adds isolation."""
        if self.func is None:
            raise TypeError(f"check {self.id} has no function ({self.kind})")
        return self.func(ctx)


def make_check(
    check_id: str,
    *,
    level: str | Level,
    title: str,
    tags: Iterable[str] = (),
    hint: str = "",
    modes: Iterable[str] = DEFAULT_MODES,
    func: CheckFunc | None = None,
    kind: str = IMPLEMENTED,
    origin: str = "flask_prodready",
    timeout: float | None = None,
    blocking: bool = False,
    aliases: Iterable[str] = (),
) -> Check:
    """Validate metadata and build a :class:`Check`; every error names the offending value."""
    if not isinstance(check_id, str) or not ID_PATTERN.match(check_id):
        raise ValueError(
            f"check id {check_id!r} must look like 'area.name' "
            "(lowercase letters, digits and underscores)"
        )
    if isinstance(aliases, str):
        raise TypeError(f"aliases of {check_id} must be a list of ids, not the string {aliases!r}")
    alias_list = list(dict.fromkeys(aliases))
    for alias in alias_list:
        if not isinstance(alias, str) or not ID_PATTERN.match(alias) or alias == check_id:
            raise ValueError(
                f"alias {alias!r} of {check_id} must be another id looking like 'area.name'"
            )
    if isinstance(tags, str):
        raise TypeError(f"tags of {check_id} must be a list of strings, not the string {tags!r}")
    tag_list = [check_id.split(".", 1)[0]]
    for tag in tags:
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            raise ValueError(f"tag {tag!r} of {check_id} must be lowercase letters, digits, - or _")
        if tag in MODE_TAGS:
            raise ValueError(
                f"tag {tag!r} of {check_id} comes from its modes: declare modes=[{tag!r}] "
                "instead of the tag"
            )
        if tag not in tag_list:
            tag_list.append(tag)
    mode_set = _modes(check_id, modes)
    if not mode_set >= DEFAULT_MODES:
        tag_list.extend(mode.value for mode in Mode if mode in mode_set)
    if not title or not isinstance(title, str):
        raise ValueError(f"check {check_id} needs a one-line title")
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout of {check_id} must be a number of seconds > 0")
    return Check(
        id=check_id,
        level=Level.parse(level),
        title=title,
        tags=tuple(tag_list),
        hint=hint,
        modes=mode_set,
        func=func,
        kind=kind,
        origin=origin,
        timeout=None if timeout is None else float(timeout),
        blocking=bool(blocking),
        aliases=tuple(alias_list),
    )


def _modes(check_id: str, modes: Iterable[str]) -> frozenset[Mode]:
    """``modes`` as :class:`Mode` values; an unknown name raises ``ValueError`` naming it."""
    if isinstance(modes, str):
        modes = [modes]
    found = set()
    for mode in modes:
        try:
            found.add(Mode(mode))
        except ValueError:
            raise ValueError(
                f"mode {mode!r} of {check_id} is not one of {', '.join(m.value for m in Mode)}"
            ) from None
    if not found:
        raise ValueError(f"modes of {check_id} must name at least one of live, cli, remote")
    return frozenset(found)


def check(
    check_id: str,
    *,
    level: str | Level,
    title: str,
    tags: Iterable[str] = (),
    hint: str = "",
    modes: Iterable[str] = DEFAULT_MODES,
    timeout: float | None = None,
    blocking: bool = False,
    aliases: Iterable[str] = (),
) -> Callable[[CheckFunc], Check]:
    """Declare a check without registering it (built-in modules and entry points use this).

    ``ProdReady.check`` is the same decorator but also adds the check to that extension.
    ``blocking=True`` for a check that waits on anything outside the process; ``aliases``
    lists former ids of a renamed check.
    """

    def decorate(func: CheckFunc) -> Check:
        origin = getattr(func, "__module__", None) or "unknown"
        return make_check(
            check_id,
            level=level,
            title=title,
            tags=tags,
            hint=hint,
            modes=modes,
            func=func,
            origin=origin,
            timeout=timeout,
            blocking=blocking,
            aliases=aliases,
        )

    return decorate


class Registry:
    """An ordered set of checks with unique ids; selection by tag and id.

    Wherever ids are given (selection, exclusion, silences), a former id of a renamed
    check (its :attr:`Check.aliases`) names the check as its id does.
    """

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        self._aliases: dict[str, str] = {}  # former id -> id
        self._tags: frozenset[str] | None = None  # computed on first use, reset by add()
        for item in checks:
            self.add(item)

    def add(self, item: Check) -> Check:
        """Register ``item``; an id that is already taken raises ``ValueError``."""
        if not isinstance(item, Check):
            raise TypeError(f"expected a Check, got {type(item).__name__}")
        for name in (item.id, *item.aliases):
            existing = self.get(name)
            if existing is not None:
                raise ValueError(
                    f"check id {name!r} is already registered (by {existing.origin}); "
                    "check ids and their aliases must be unique"
                )
        self._checks[item.id] = item
        self._aliases.update(dict.fromkeys(item.aliases, item.id))
        self._tags = None
        return item

    def resolve(self, name: str) -> str:
        """The id ``name`` stands for: itself, or the id of the check it is a former id of."""
        return self._aliases.get(name, name)

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(sorted(self._checks.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._checks)

    def get(self, check_id: str) -> Check | None:
        """The check with this id or former id, or ``None``."""
        return self._checks.get(self.resolve(check_id))

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._checks)

    @property
    def aliases(self) -> Mapping[str, str]:
        """Former ids and the ids they stand for."""
        return dict(self._aliases)

    @property
    def tags(self) -> frozenset[str]:
        """Every tag of every check (asked on each report request: kept between calls)."""
        if self._tags is None:
            self._tags = frozenset(tag for item in self._checks.values() for tag in item.tags)
        return self._tags

    def unknown_tags(self, tags: Iterable[str]) -> list[str]:
        known = self.tags
        return [t for t in tags if t not in known]

    def unknown_ids(self, ids: Iterable[str]) -> list[str]:
        return [i for i in ids if self.resolve(i) not in self._checks]

    def select(self, tags: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Check]:
        """Runnable checks having any of ``tags`` (all when empty), minus the ``exclude`` ids.

        Engine entries are never selected: the runner reports them itself.
        """
        wanted = set(tags)
        skipped = {self.resolve(name) for name in exclude}
        return [
            item
            for item in self
            if item.kind != ENGINE
            and item.id not in skipped
            and (not wanted or wanted.intersection(item.tags))
        ]

    def select_names(self, names: Iterable[str]) -> list[Check]:
        """Checks named by id (or former id) or by tag (``PRODREADY_HEALTHZ_CHECKS``)."""
        wanted = {self.resolve(name) for name in names}
        return [
            item
            for item in self
            if item.kind != ENGINE and (item.id in wanted or wanted.intersection(item.tags))
        ]

    def describe(self) -> list[Mapping[str, Any]]:
        """The catalogue rows for ``--list``."""
        return [
            {
                "id": item.id,
                "level": item.level.value,
                "tags": list(item.tags),
                "title": item.title,
                "modes": sorted(mode.value for mode in item.modes),
                "kind": item.kind,
                "blocking": item.blocking,
                "aliases": list(item.aliases),
            }
            for item in self
        ]
