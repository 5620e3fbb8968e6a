"""The registry: check ids, tags and selection."""

from __future__ import annotations

import pytest

from flask_prodready import Level, check
from flask_prodready.checks import builtin_checks
from flask_prodready.registry import PLANNED, Registry, make_check


def noop(ctx: object) -> None:
    return None


@pytest.mark.parametrize("bad", ["debug", "Config.debug", "config.", "a.b.c", "config.de-bug"])
def test_id_must_be_area_dot_name(bad: str) -> None:
    """An id that is not area.name is refused, naming it."""
    with pytest.raises(ValueError, match=r"must look like 'area\.name'"):
        make_check(bad, level="error", title="t", func=noop)


def test_area_is_always_a_tag() -> None:
    """The area is the first tag; tags are deduplicated."""
    item = make_check("myapp.redis", level="error", title="t", tags=["deps", "myapp"], func=noop)
    assert item.tags == ("myapp", "deps")


def test_tags_must_be_a_list() -> None:
    """tags="x" is refused rather than read as ['x']."""
    with pytest.raises(TypeError, match="must be a list of strings"):
        make_check("myapp.redis", level="error", title="t", tags="deps", func=noop)


def test_bad_level_and_modes() -> None:
    """Unknown levels and modes are refused."""
    with pytest.raises(ValueError, match="unknown level 'fatal'"):
        make_check("myapp.x", level="fatal", title="t", func=noop)
    with pytest.raises(ValueError, match=r"modes of myapp\.x"):
        make_check("myapp.x", level="error", title="t", modes=["server"], func=noop)


def test_clash_raises() -> None:
    """Registering an id twice raises."""
    registry = Registry([make_check("myapp.x", level="error", title="t", func=noop)])
    with pytest.raises(ValueError, match="already registered"):
        registry.add(make_check("myapp.x", level="error", title="t", func=noop))


def test_planned_ids_are_reserved() -> None:
    """A reserved (planned) id cannot be taken by another check; built-ins list each id once."""
    planned = make_check("server.root", level="error", title="t", kind=PLANNED)
    with pytest.raises(ValueError, match="already registered"):
        Registry([planned, make_check("server.root", level="error", title="t", func=noop)])
    ids = [c.id for c in builtin_checks()]
    assert len(ids) == len(set(ids))


def test_selection_by_tag_and_exclude() -> None:
    """select() takes any of the tags, minus the excluded ids."""
    registry = Registry(builtin_checks())
    cookies = {c.id for c in registry.select(["cookies"], ["cookies.session_secure"])}
    assert cookies == {
        "cookies.session_httponly",
        "cookies.session_samesite",
        "cookies.remember_secure",
        "cookies.observed_insecure",
    }
    assert {c.id for c in registry.select_names(["config.debug", "tls"])} == {
        "config.debug",
        "tls.certificate_expiry",
        "tls.http_redirect",
    }


def test_module_level_decorator_returns_a_check() -> None:
    """flask_prodready.check builds a Check (for packages and entry points)."""

    @check("pkg.thing", level=Level.WARNING, title="Thing")
    def thing(ctx: object) -> None:
        return None

    assert thing.id == "pkg.thing"
    assert thing.level is Level.WARNING
    assert thing.func is not None
