"""ProdReady.add_engine: which apps an engine handed over reaches, and what is refused.

The engines here are SQLite engines that never connect: ``database.sqlite`` (which only
reads the URL) shows which engines an app's checks see.
"""

from __future__ import annotations

import gc
import secrets
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from flask import Flask

from flask_prodready import CheckContext, ProdReady
from flask_prodready.checks.database.engines import NOT_SET_UP

from .stacks import PG_DRIVER
from .support import GOOD_CONFIG, outcome_of

MakeApp = Callable[..., Flask]


@pytest.fixture
def engines() -> Iterator[Callable[[str], sqlalchemy.engine.Engine]]:
    """SQLite engines on files named after their test name (never opened)."""
    made: list[sqlalchemy.engine.Engine] = []

    def make(name: str) -> sqlalchemy.engine.Engine:
        engine = sqlalchemy.create_engine(f"sqlite:////srv/{name}.db")
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def seen(app: Flask) -> list[str]:
    """The messages of database.sqlite: one per engine the app's checks see (none when
    the check is skipped for having nothing to judge)."""
    outcome = outcome_of(app, "database.sqlite")
    if outcome.status.value == "skipped":
        assert outcome.reason == NOT_SET_UP
    return [finding.message for finding in outcome.findings]


def test_before_init_app_reaches_every_app(
    make_app: MakeApp, engines: Callable[[str], Any]
) -> None:
    """Without app=, an engine handed over before init_app reaches every app set up later."""
    extension = ProdReady()
    extension.add_engine(engines("shop"), name="main")
    for app in (make_app(extension), make_app(extension)):
        assert seen(app) == ["The engine 'main' (sqlite:////srv/shop.db) is SQLite."]


def test_after_init_app_reaches_the_apps_already_set_up(
    make_app: MakeApp, engines: Callable[[str], Any]
) -> None:
    """Without app=, an engine handed over after init_app reaches the apps already set up."""
    extension = ProdReady()
    app = make_app(extension)
    assert seen(app) == []
    extension.add_engine(engines("shop"), name="main")
    assert seen(app) == ["The engine 'main' (sqlite:////srv/shop.db) is SQLite."]


@pytest.mark.parametrize("when", ["before init_app", "after init_app"])
def test_app_reaches_that_app_only(
    make_app: MakeApp, engines: Callable[[str], Any], tmp_path: Path, when: str
) -> None:
    """With app=, before or after init_app, the engine is that app's alone."""
    extension = ProdReady()
    other = make_app(extension)
    mine = Flask("mine", root_path=str(tmp_path), instance_path=str(tmp_path / "instance"))
    mine.config.update(GOOD_CONFIG)
    if when == "before init_app":
        extension.add_engine(engines("mine"), name="main", app=mine)
        extension.init_app(mine)
    else:
        extension.init_app(mine)
        extension.add_engine(engines("mine"), name="main", app=mine)
    assert seen(mine) == ["The engine 'main' (sqlite:////srv/mine.db) is SQLite."]
    assert seen(other) == []


def test_each_app_may_use_a_name_for_its_own_engine(
    make_app: MakeApp, engines: Callable[[str], Any]
) -> None:
    """In an app factory, every app hands over its own engine under the same name."""
    extension = ProdReady()
    apps = [make_app(extension) for _ in range(2)]
    for number, app in enumerate(apps):
        extension.add_engine(engines(f"shop{number}"), name="main", app=app)
    assert [seen(app) for app in apps] == [
        ["The engine 'main' (sqlite:////srv/shop0.db) is SQLite."],
        ["The engine 'main' (sqlite:////srv/shop1.db) is SQLite."],
    ]


def test_several_engines_are_judged_by_name(
    make_app: MakeApp, engines: Callable[[str], Any]
) -> None:
    """Several engines are judged one by one, in the order of their names."""
    extension = ProdReady()
    app = make_app(extension)
    extension.add_engine(engines("reports"), name="reports")
    extension.add_engine(engines("audit"), name="audit", app=app)
    assert seen(app) == [
        "The engine 'audit' (sqlite:////srv/audit.db) is SQLite.",
        "The engine 'reports' (sqlite:////srv/reports.db) is SQLite.",
    ]


def test_the_same_engine_under_the_same_name_again_does_nothing(
    make_app: MakeApp, engines: Callable[[str], Any]
) -> None:
    """Handing over an engine again under its name is harmless (an idempotent set-up)."""
    extension = ProdReady()
    engine = engines("shop")
    extension.add_engine(engine, name="main")
    app = make_app(extension)
    extension.add_engine(engine, name="main")
    extension.add_engine(engine, name="main", app=app)
    assert seen(app) == ["The engine 'main' (sqlite:////srv/shop.db) is SQLite."]


@pytest.mark.parametrize("app_given", [False, True])
def test_another_engine_under_a_taken_name_is_refused(
    make_app: MakeApp, engines: Callable[[str], Any], app_given: bool
) -> None:
    """A second engine under a name taken for the app raises ValueError, saying why."""
    extension = ProdReady()
    extension.add_engine(engines("shop"), name="main")
    app = make_app(extension)
    with pytest.raises(ValueError, match=r"an engine named 'main' is already handed over"):
        extension.add_engine(engines("other"), name="main", app=app if app_given else None)
    assert seen(app) == ["The engine 'main' (sqlite:////srv/shop.db) is SQLite."]


def test_a_name_for_every_app_clashes_with_one_apps_pending_engine(
    engines: Callable[[str], Any],
) -> None:
    """An engine for every app may not take a name an app not yet set up already uses."""
    extension = ProdReady()
    waiting = Flask("waiting")
    extension.add_engine(engines("mine"), name="main", app=waiting)
    with pytest.raises(ValueError, match=r"an engine named 'main' is already handed over"):
        extension.add_engine(engines("all"), name="main")


def test_one_engine_under_two_names_is_refused(engines: Callable[[str], Any]) -> None:
    """One engine under two names would be judged twice: ValueError naming the first name."""
    extension = ProdReady()
    engine = engines("shop")
    extension.add_engine(engine, name="main")
    with pytest.raises(ValueError, match=r"this engine is already handed over as 'main'"):
        extension.add_engine(engine, name="again")


@pytest.mark.parametrize("name", ["", None, 3])
def test_a_name_is_a_non_empty_string(engines: Callable[[str], Any], name: Any) -> None:
    """The name appears in every finding: it must be a non-empty string."""
    with pytest.raises(ValueError, match=r"add_engine needs a name, a non-empty string"):
        ProdReady().add_engine(engines("shop"), name=name)


def test_anything_but_an_engine_is_refused() -> None:
    """A URL or a connection is not an engine: TypeError saying what is expected."""
    with pytest.raises(
        TypeError,
        match=r"add_engine takes a sqlalchemy.engine.Engine, as sqlalchemy.create_engine "
        r"returns, not str",
    ):
        ProdReady().add_engine("postgresql://db/shop", name="main")


def test_an_app_waiting_for_init_app_is_not_kept_alive(engines: Callable[[str], Any]) -> None:
    """An engine handed over for an app not yet set up does not keep that app alive."""
    extension = ProdReady()
    app = Flask("gone")
    extension.add_engine(engines("shop"), name="main", app=app)
    gone = weakref.ref(app)
    del app
    gc.collect()
    assert gone() is None


def test_the_password_of_an_engine_is_masked_everywhere(make_app: MakeApp) -> None:
    """The password in a handed-over engine's URL, which no config value holds, is masked in
    the report like a configured secret (here in a crashed check's message)."""
    password = "engine-" + secrets.token_hex(12)
    engine = sqlalchemy.create_engine(f"{PG_DRIVER}://app:{password}@127.0.0.1/shop")
    extension = ProdReady()

    @extension.check("myapp.leaks", title="Leaks", blocking=False)
    def leaks(ctx: CheckContext) -> None:
        raise RuntimeError(f"login refused for app/{password}")

    app = make_app(extension)
    extension.add_engine(engine, name="main")
    outcome = outcome_of(app, "myapp.leaks")
    assert outcome.status.value == "error"
    assert password not in repr(outcome)
    assert "login refused for app/***" in outcome.findings[0].message
