"""system.*: real psutil and real limits of this machine; thresholds and cgroup files are
pointed at known values where a machine's own numbers would make the outcome depend on it."""

from __future__ import annotations

import re
import resource
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from flask import Flask

from flask_prodready.checks import system
from flask_prodready.engine.server import GunicornSettings

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
MIB = 1024 * 1024
GIB = 1024 * MIB


def gunicorn(worker_class: str, *, threads: int = 1, connections: int = 1000) -> GunicornSettings:
    """gunicorn settings as the server module resolves them."""
    return GunicornSettings(
        workers=3,
        threads=threads,
        worker_class=worker_class,
        worker_connections=connections,
        timeout=30,
        bind=("127.0.0.1:8000",),
        max_requests=0,
        max_requests_jitter=0,
        forwarded_allow_ips=("127.0.0.1",),
        preload_app=False,
        source="gunicorn.conf.py",
    )


class TestDisk:
    @pytest.fixture(autouse=True)
    def _temp_folder_beside_the_app(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The temp folder is on the same disk as the app here, so one finding names both."""
        (tmp_path / "tmp").mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def test_fires_below_the_threshold(
        self, make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the threshold at 100%, the real disk is "low": one finding per filesystem,
        naming every folder on it and the real free and total sizes."""
        monkeypatch.setattr(system, "MIN_FREE_DISK_RATIO", 1.0)
        uploads = tmp_path / "data" / "uploads"  # missing: judged by the disk it would be on
        app = make_app(UPLOAD_FOLDER=str(uploads))
        outcome = outcome_of(app, "system.disk")
        [finding] = outcome.findings
        root = tmp_path / "project" / "app"
        assert finding.level.value == "warning"
        assert re.fullmatch(
            r"Only \d+\.\d% of the disk holding the app folder, the upload folder and the temp "
            r"folder is free: \d+(\.\d)? \w+ of \d+(\.\d)? \w+ \("
            + re.escape(f"{root}, {uploads}, {tmp_path / 'tmp'}")
            + r"\); the minimum is 100%\.",
            finding.message,
        ), finding.message
        usage = psutil.disk_usage(str(tmp_path))
        assert finding.observed["total_bytes"] == usage.total

    def test_quiet_above_the_threshold(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the threshold at 0%, no disk is low: no finding, judged (not skipped)."""
        monkeypatch.setattr(system, "MIN_FREE_DISK_RATIO", 0.0)
        assert messages_of(make_app(), "system.disk") == []

    def test_skipped_without_psutil(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without psutil: skipped, naming the extra."""
        monkeypatch.setitem(sys.modules, "psutil", None)
        outcome = outcome_of(make_app(), "system.disk")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "psutil is not installed (pip install 'flask-prodready[system]')",
        )


@pytest.fixture
def cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``cgroup(path, **files)`` writes a cgroup tree under a temporary root and makes this
    process's ``/proc/self/cgroup`` say it is in ``path``."""
    root = tmp_path / "cgroup"
    root.mkdir()
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/\n")
    monkeypatch.setattr(system, "CGROUP_ROOT", root)
    monkeypatch.setattr(system, "PROC_SELF_CGROUP", proc)

    def write(path: str = "/", **files: str) -> Path:
        folder = root / path.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name.replace("_", ".", 1)).write_text(text)
        proc.write_text(f"0::{path}\n")
        return folder

    return write


class TestMemory:
    def test_fires_near_the_cgroup_limit(
        self, make_app: MakeApp, cgroup: Callable[..., Path]
    ) -> None:
        """50 MiB left under a 1 GiB memory.max: a warning naming the limit's file."""
        folder = cgroup(
            memory_max=str(GIB), memory_current=str(GIB - 50 * MIB), memory_stat="anon 1\n"
        )
        assert messages_of(make_app(), "system.memory") == [
            (
                "warning",
                "Only 4.9% of the memory this process may use is available: 50 MiB of 1.0 GiB "
                f"(the cgroup limit {folder / 'memory.max'}); the minimum is 10%.",
            )
        ]

    def test_page_cache_is_not_used_memory(
        self, make_app: MakeApp, cgroup: Callable[..., Path]
    ) -> None:
        """Inactive file cache counts as available (the kernel reclaims it first)."""
        cgroup(
            memory_max=str(GIB),
            memory_current=str(GIB - 10 * MIB),
            memory_stat=f"anon {100 * MIB}\ninactive_file {500 * MIB}\n",
        )
        assert messages_of(make_app(), "system.memory") == []

    def test_a_parent_group_limit_binds(
        self, make_app: MakeApp, cgroup: Callable[..., Path]
    ) -> None:
        """The process's own group has no limit, its slice does: the slice is judged."""
        cgroup("/app.slice", memory_max=str(2 * GIB), memory_current=str(2 * GIB - 20 * MIB))
        cgroup("/app.slice/web.service", memory_max="max", memory_current=str(GIB))
        [(_, message)] = messages_of(make_app(), "system.memory")
        assert message.endswith("app.slice/memory.max); the minimum is 10%.")

    def test_cgroup_v1(self, make_app: MakeApp, cgroup: Callable[..., Path]) -> None:
        """cgroup v1's memory.limit_in_bytes is honoured when there is no v2 limit."""
        folder = cgroup(
            "/memory",
            **{
                "memory_limit_in_bytes": str(512 * MIB),
                "memory_usage_in_bytes": str(500 * MIB),
                "memory_stat": "total_inactive_file 0\n",
            },
        )
        assert messages_of(make_app(), "system.memory") == [
            (
                "warning",
                "Only 2.3% of the memory this process may use is available: 12 MiB of 512 MiB "
                f"(the cgroup limit {folder / 'memory.limit_in_bytes'}); the minimum is 10%.",
            )
        ]

    def test_quiet_with_room_under_the_limit(
        self, make_app: MakeApp, cgroup: Callable[..., Path]
    ) -> None:
        """900 MiB left under 1 GiB: no finding."""
        cgroup(memory_max=str(GIB), memory_current=str(124 * MIB))
        assert messages_of(make_app(), "system.memory") == []

    def test_host_memory_without_a_cgroup_limit(
        self, make_app: MakeApp, cgroup: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """memory.max is "max": the host's real memory is judged."""
        cgroup(memory_max="max", memory_current=str(GIB))
        monkeypatch.setattr(system, "MIN_AVAILABLE_MEMORY_RATIO", 1.0)
        [(_, message)] = messages_of(make_app(), "system.memory")
        assert re.fullmatch(
            r"Only \d+\.\d% of the memory this process may use is available: \d+(\.\d)? \w+ of "
            r"\d+(\.\d)? \w+ \(the host's memory\); the minimum is 100%\.",
            message,
        ), message
        monkeypatch.setattr(system, "MIN_AVAILABLE_MEMORY_RATIO", 0.0)
        assert messages_of(make_app(), "system.memory") == []


class TestFdLimit:
    def test_fires_when_async_connections_exceed_it(self, make_app: MakeApp) -> None:
        """An async worker's worker_connections x 2 + spare above the soft limit: a warning
        that names the numbers."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        settings = gunicorn("gevent", connections=soft)
        outcome = outcome_of(make_app(), "system.fd_limit", gunicorn=settings)
        [finding] = outcome.findings
        need = soft * 2 + 128
        assert (finding.level.value, finding.message) == (
            "warning",
            f"The soft open-file limit (RLIMIT_NOFILE) is {soft}, below the {need} this "
            f"process may need: {soft} worker_connections x 2 descriptors + 128 spare, per "
            "gunicorn worker (from gunicorn.conf.py).",
        )
        assert finding.hint.startswith(
            f"Raise the soft limit to at least {need}: LimitNOFILE={need} in the systemd unit, "
            f"`ulimit -n {need}` before gunicorn starts, or `--ulimit nofile={need}:{need}` for "
            "Docker."
        )

    def test_fires_below_the_minimum_without_server_settings(self, make_app: MakeApp) -> None:
        """No gunicorn settings known and a soft limit under 1024: a warning (the real limit
        of this process is lowered for the check and restored)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowered = 1000 if hard == resource.RLIM_INFINITY else min(1000, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
        try:
            found = messages_of(make_app(), "system.fd_limit")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert found == [
            (
                "warning",
                f"The soft open-file limit (RLIMIT_NOFILE) is {lowered}, below the 1024 this "
                "process may need: the usual minimum of 1024 for a web process (the server's "
                "connection settings are not known here).",
            )
        ]

    @pytest.mark.parametrize(
        "settings", [gunicorn("sync"), gunicorn("gthread", threads=8)], ids=["sync", "gthread"]
    )
    def test_quiet_for_sync_and_threaded_workers(
        self, make_app: MakeApp, settings: GunicornSettings
    ) -> None:
        """A sync or 8-thread worker needs a few hundred descriptors at most: no finding."""
        assert messages_of(make_app(), "system.fd_limit", gunicorn=settings) == []

    def test_threads_are_named(self, make_app: MakeApp) -> None:
        """For gthread workers the message counts threads."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        settings = gunicorn("gthread", threads=soft)
        [(_, message)] = messages_of(make_app(), "system.fd_limit", gunicorn=settings)
        assert f": {soft} threads x 2 descriptors + 128 spare, per gunicorn worker" in message


@pytest.fixture(autouse=True)
def _no_leaked_limits() -> Iterator[None]:
    """Every test leaves this process's open-file limit as it found it."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
