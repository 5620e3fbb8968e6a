"""The registry: check ids, tags and selection."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_prodready import Finding, Level, ProdReady, check
from flask_prodready.checks import builtin_checks
from flask_prodready.engine.registry import Registry, make_check
from flask_prodready.engine.state import get_state
from flask_prodready.render.text import render_catalogue


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


class TestAliases:
    """A renamed check keeps its former id wherever ids are given."""

    @pytest.fixture
    def registry(self) -> Registry:
        renamed = make_check(
            "myapp.new", level="error", title="t", func=noop, aliases=["myapp.old"]
        )
        return Registry([renamed, make_check("myapp.other", level="error", title="t", func=noop)])

    def test_the_former_id_names_the_check(self, registry: Registry) -> None:
        """resolve, get and unknown_ids know the former id; the id itself stays the id."""
        assert registry.resolve("myapp.old") == "myapp.new"
        assert registry.resolve("myapp.other") == "myapp.other"
        item = registry.get("myapp.old")
        assert item is not None
        assert item.id == "myapp.new"
        assert registry.unknown_ids(["myapp.old", "myapp.gone"]) == ["myapp.gone"]
        assert registry.aliases == {"myapp.old": "myapp.new"}
        assert "myapp.old" not in registry.ids

    def test_exclude_and_select_by_the_former_id(self, registry: Registry) -> None:
        """--exclude and PRODREADY_HEALTHZ_CHECKS accept the former id."""
        assert [c.id for c in registry.select(exclude=["myapp.old"])] == ["myapp.other"]
        assert [c.id for c in registry.select_names(["myapp.old"])] == ["myapp.new"]

    def test_a_former_id_cannot_be_taken_again(self, registry: Registry) -> None:
        """A check whose id is another's former id (or the reverse) is refused."""
        with pytest.raises(ValueError, match=r"'myapp\.old' is already registered"):
            registry.add(make_check("myapp.old", level="error", title="t", func=noop))
        with pytest.raises(ValueError, match=r"'myapp\.other' is already registered"):
            registry.add(
                make_check(
                    "myapp.third", level="error", title="t", func=noop, aliases=["myapp.other"]
                )
            )

    @pytest.mark.parametrize("bad", [["myapp.x"], ["Old"]])
    def test_an_alias_must_be_another_id(self, bad: list[str]) -> None:
        """An alias equal to the id, or not shaped like an id, is refused."""
        with pytest.raises(ValueError, match="must be another id"):
            make_check("myapp.x", level="error", title="t", func=noop, aliases=bad)

    def test_the_catalogue_lists_former_ids(self, registry: Registry) -> None:
        """--list (text and json) says which id a check had before."""
        assert "formerly myapp.old" in render_catalogue(registry)
        assert registry.describe()[0]["aliases"] == ["myapp.old"]


def test_a_former_id_silences_and_is_named_for_renaming() -> None:
    """PRODREADY_SILENCED keyed by a former id silences the check; prodready.unknown_silence
    says (info) which id to write instead, and does not call it unknown."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 40,
        PRODREADY_SILENCED={"myapp.old": "known and accepted"},
    )
    prodready = ProdReady(app)

    @prodready.check("myapp.new", title="t", aliases=["myapp.old"], blocking=False)
    def always(ctx: object) -> object:
        return Finding("myapp.new", Level.ERROR, "Always wrong.")

    report = get_state(app).build_report(app, mode="cli", tags=["myapp", "prodready"])
    found = {f.id: f for f in report.findings}
    assert found["myapp.new"].silenced
    assert found["myapp.new"].silence_reason == "known and accepted"
    assert found["prodready.unknown_silence"].level is Level.INFO
    assert found["prodready.unknown_silence"].message == (
        "PRODREADY_SILENCED names 'myapp.old', the former id of 'myapp.new': it still "
        "silences 'myapp.new', but name it by its id."
    )
    with pytest.raises(ValueError, match=r"'myapp\.old' is already registered"):
        prodready.check("myapp.old", title="t")(noop)
