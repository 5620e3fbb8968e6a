"""The evidence workers share: a private folder, files only this user wrote, gone workers
dropped. Real files and real processes (a sibling is a real ``sleep`` process whose pid
names its file); the gunicorn side is in tests/integration/test_live_evidence.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_prodready.engine.evidence import Evidence
from flask_prodready.engine.observation import TrafficRecord
from flask_prodready.engine.sharing import SharedEvidence, SharingRefused, read_window

HTML = ("Content-Type", "text/html")
NOBODY = 65534


def record_with(requests: int, path: str = "/") -> TrafficRecord:
    record = TrafficRecord(window=60)
    record.static_prefixes = ()
    for _ in range(requests):
        record.record(
            {"PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http"},
            "127.0.0.1",
            "200 OK",
            [HTML],
        )
    return record


@pytest.fixture
def sibling() -> Iterator[int]:
    """The pid of a live process standing in for another worker."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait(10)


def shared(record: TrafficRecord, base: Path) -> SharedEvidence:
    return SharedEvidence(record, master_pid=os.getppid(), base=base)


def write_sibling(folder: Path, pid: int, requests: int) -> Path:
    """The file a sibling worker with ``pid`` would have written."""
    data = {"pid": pid, "buckets": record_with(requests).buckets()}
    path = folder / f"{pid}.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def test_folder_is_private_and_files_are_written_whole(tmp_path: Path) -> None:
    """Both folder levels are 0700 and this user's; the worker's file is 0600, complete."""
    mine = shared(record_with(3), tmp_path)
    mine.publish()
    for folder in (mine.folder.parent, mine.folder):
        found = os.lstat(folder)
        assert stat.S_IMODE(found.st_mode) == 0o700
        assert found.st_uid == os.geteuid()
    written = mine.folder / f"{os.getpid()}.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert json.loads(written.read_text())["pid"] == os.getpid()
    assert [p.name for p in mine.folder.iterdir()] == [written.name]  # no temporary left


def test_siblings_are_merged(tmp_path: Path, sibling: int) -> None:
    """A live sibling's buckets are added: two workers, their requests summed."""
    mine = shared(record_with(3), tmp_path)
    write_sibling(mine.ready(), sibling, 5)
    buckets, workers, note = read_window(mine.record, mine)
    evidence = Evidence.merge(buckets, window=60, workers=workers, note=note)
    assert (evidence.workers, evidence.requests, evidence.note) == (2, 8, None)


def test_a_gone_worker_is_dropped(tmp_path: Path) -> None:
    """The file of a pid that no longer runs is ignored and removed."""
    process = subprocess.Popen(["true"])
    process.wait(10)
    mine = shared(record_with(3), tmp_path)
    gone = write_sibling(mine.ready(), process.pid, 5)
    assert mine.siblings() == ([], 1, None)
    assert not gone.exists()


def test_a_symlink_is_ignored(tmp_path: Path, sibling: int) -> None:
    """A sibling's name that is a symlink to a well-formed file is not followed."""
    mine = shared(record_with(3), tmp_path)
    elsewhere = write_sibling(tmp_path, sibling, 50)
    (mine.ready() / f"{sibling}.json").symlink_to(elsewhere)
    assert mine.siblings() == ([], 1, None)


@pytest.mark.parametrize(
    "content",
    ['{"pid": 1, "buckets": []', "[]", '{"pid": "x"}', '{"pid": 0, "buckets": [{"start": 1}]}'],
    ids=["truncated", "not-an-object", "wrong-pid", "wrong-shape"],
)
def test_a_malformed_file_is_ignored(tmp_path: Path, sibling: int, content: str) -> None:
    """A file that does not parse, or has the wrong shape or pid, is ignored."""
    mine = shared(record_with(3), tmp_path)
    path = mine.ready() / f"{sibling}.json"
    path.write_text(content.replace('"pid": 0', f'"pid": {sibling}'))
    assert mine.siblings() == ([], 1, None)


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a file as another user needs root")
def test_a_file_planted_by_another_user_is_ignored(tmp_path: Path, sibling: int) -> None:
    """A well-formed sibling file owned by another user (nobody) is ignored."""
    mine = shared(record_with(3), tmp_path)
    planted = write_sibling(mine.ready(), sibling, 50)
    os.chown(planted, NOBODY, NOBODY)
    assert mine.siblings() == ([], 1, None)


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a folder as another user needs root")
def test_a_folder_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    """A server folder created beforehand by another user is not used: the report says its
    evidence is this worker's alone, and nothing is written there."""
    mine = shared(record_with(3), tmp_path)
    os.mkdir(mine.folder.parent, 0o700)
    os.mkdir(mine.folder, 0o777)
    os.chmod(mine.folder, 0o777)
    os.chown(mine.folder, NOBODY, NOBODY)
    with pytest.raises(SharingRefused, match="belongs to another user"):
        mine.ready()
    mine.publish()
    assert list(mine.folder.iterdir()) == []
    buckets, workers, note = read_window(mine.record, mine)
    assert (len(buckets), workers) == (1, 1)
    assert note is not None
    assert note.startswith("the evidence of this worker only: ")


def test_a_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    """A server folder with group or other access is refused, naming its mode."""
    mine = shared(record_with(3), tmp_path)
    mine.ready()
    os.chmod(mine.folder, 0o755)
    with pytest.raises(SharingRefused, match="mode 755"):
        mine.ready()


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    """A server folder that is a symlink (to a folder of the attacker's) is refused."""
    mine = shared(record_with(3), tmp_path)
    os.mkdir(mine.folder.parent, 0o700)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    mine.folder.symlink_to(target)
    with pytest.raises(SharingRefused, match="not a folder"):
        mine.ready()


def test_the_folders_of_gone_servers_are_removed(tmp_path: Path) -> None:
    """On start, a server folder whose master no longer runs is removed with its files; the
    folder of a live master is kept."""
    process = subprocess.Popen(["true"])
    process.wait(10)
    mine = shared(record_with(3), tmp_path)
    parent = mine.ready().parent
    gone = parent / f"server-{process.pid}-1"
    gone.mkdir(mode=0o700)
    write_sibling(gone, process.pid, 5)
    mine.start()
    try:
        deadline = time.monotonic() + 10
        while gone.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        mine.stop()
    assert not gone.exists()
    assert mine.folder.is_dir()
