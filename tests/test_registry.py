"""The registry: check ids, tags and selection."""

from __future__ import annotations

import pytest

from flask_prodready import Level, check
from flask_prodready.checks import builtin_checks
from flask_prodready.engine.registry import Registry, make_check


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
    with pytest.raises(ValueError, match=r"mode 'server' of myapp\.x is not one of live, cli"):
        make_check("myapp.x", level="error", title="t", modes=["server"], func=noop)


def test_clash_raises() -> None:
    """Registering an id twice raises."""
    registry = Registry([make_check("myapp.x", level="error", title="t", func=noop)])
    with pytest.raises(ValueError, match="already registered"):
        registry.add(make_check("myapp.x", level="error", title="t", func=noop))


def test_builtin_ids_are_unique() -> None:
    """The built-in checks list each id once."""
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


def test_mode_tags_come_from_the_modes() -> None:
    """A check that cannot judge in every default mode carries the tags of the modes it can
    judge in; one that judges in both carries none; a mode name given as a tag is refused."""
    live = make_check("myapp.live", level="error", title="t", modes=["live"], func=noop)
    both = make_check("myapp.both", level="error", title="t", func=noop)
    remote = make_check("myapp.remote", level="error", title="t", modes=["remote"], func=noop)
    assert live.tags == ("myapp", "live")
    assert both.tags == ("myapp",)
    assert remote.tags == ("myapp", "remote")
    with pytest.raises(ValueError, match=r"tag 'live' of myapp\.x comes from its modes"):
        make_check("myapp.x", level="error", title="t", tags=["live"], func=noop)


def test_tag_live_selects_exactly_the_live_only_built_in_checks() -> None:
    """--tag live selects every built-in check that can only judge in the running server
    (server.root among them) and nothing else; cli and remote likewise."""
    registry = Registry(builtin_checks())
    for mode in ("live", "cli", "remote"):
        selected = {c.id for c in registry.select([mode])}
        expected = {c.id for c in registry if mode in c.modes and len(c.modes) == 1}
        assert selected == expected, mode
    assert "server.root" in {c.id for c in registry.select(["live"])}
    assert {c.id for c in registry.select(["remote"])} == {
        "tls.certificate_expiry",
        "tls.http_redirect",
    }
