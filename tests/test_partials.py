"""Partial-file names carry the writer's PID; only partials of writers that are gone are removed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedlab.partials import (
    partial_path,
    partial_prefix,
    process_alive,
    remove_stale_partials,
    sweep_stale_partials,
    writer_pid,
)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The PID of a running process other than this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_names_carry_this_process_id() -> None:
    target = Path("/data/vectors.npy")
    assert partial_path(target) == Path(f"/data/.vectors.npy.partial-{os.getpid()}")
    assert writer_pid(partial_path(target).name, "vectors.npy") == os.getpid()
    fd, scratch = tempfile.mkstemp(prefix=partial_prefix("model.onnx"), suffix=".onnx")
    os.close(fd)
    os.unlink(scratch)
    assert writer_pid(Path(scratch).name, "model.onnx") == os.getpid()
    assert writer_pid(Path(scratch).name, "vectors.npy") is None  # another target's partial


@pytest.mark.parametrize(
    "name", ["vectors.npy", ".vectors.npy", ".vectors.npy.partial-", ".vectors.npy.partial-abc", ".x.partial-12x"]
)
def test_names_without_a_pid_are_not_partials(name: str) -> None:
    assert writer_pid(name) is None


def test_liveness(live_pid: int, dead_pid: int) -> None:
    assert process_alive(os.getpid()) and process_alive(live_pid)
    assert not process_alive(dead_pid)
    assert process_alive(0) and process_alive(-1)  # process groups, never a writer: treated as alive
    assert process_alive(10**12)  # beyond pid_t: the name is not trusted, nothing is removed on a guess


def test_removes_only_partials_of_gone_writers(tmp_path: Path, live_pid: int, dead_pid: int) -> None:
    gone = dead_pid
    stale_file = tmp_path / f".vectors.npy.partial-{gone}"
    stale_file.write_bytes(b"x" * 3000)
    stale_dir = tmp_path / f".vectors.npy.partial-{gone}-k3j2h1"  # a mkdtemp scratch folder
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "part").write_bytes(b"y" * 500)
    kept = {
        tmp_path / f".vectors.npy.partial-{live_pid}",  # its writer is still running
        tmp_path / f".vectors.npy.partial-{os.getpid()}",  # ours
        tmp_path / ".vectors.npy.partial-notapid",
        tmp_path / f".other.npy.partial-{gone}",  # another target
        tmp_path / "vectors.npy",
        tmp_path / f"vectors.npy.partial-{gone}",  # not hidden: not a name embedlab writes
    }
    for path in kept:
        path.write_bytes(b"z")

    removed = remove_stale_partials(tmp_path, "vectors.npy")

    assert removed.paths == sorted([stale_file, stale_dir]) and removed.bytes == 3500
    assert set(tmp_path.iterdir()) == kept
    line = removed.summary()
    assert "\n" not in line and line.startswith("removed 2 stale partial files (0.0 MB) left by crashed runs in ")
    assert stale_file.name in line and stale_dir.name in line
    assert not remove_stale_partials(tmp_path, "vectors.npy")  # nothing left to remove: falsy


def test_without_a_target_every_gone_writers_partial_goes(tmp_path: Path, dead_pid: int) -> None:
    gone = dead_pid
    for name in (f".a.json.partial-{gone}-abc", f".b.json.partial-{gone}", f".c.json.partial-{os.getpid()}-x"):
        (tmp_path / name).write_text("{}")
    removed = remove_stale_partials(tmp_path)
    assert [p.name for p in removed.paths] == [f".a.json.partial-{gone}-abc", f".b.json.partial-{gone}"]
    assert [p.name for p in tmp_path.iterdir()] == [f".c.json.partial-{os.getpid()}-x"]


def test_a_missing_folder_has_nothing_to_remove(tmp_path: Path) -> None:
    assert remove_stale_partials(tmp_path / "absent", "x.npy").paths == []


def test_a_symlinked_partial_loses_the_link_not_its_target(tmp_path: Path, dead_pid: int) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep")
    link = tmp_path / f".x.npy.partial-{dead_pid}"
    link.symlink_to(precious)
    assert remove_stale_partials(tmp_path, "x.npy").paths == [link]
    assert (precious / "data").read_text() == "keep"


def test_sweep_logs_one_line_only_when_it_removed_something(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, dead_pid: int
) -> None:
    caplog.set_level(logging.WARNING, logger="embedlab.partials")
    assert not sweep_stale_partials(tmp_path, "model.onnx")
    assert caplog.records == []
    (tmp_path / f".model.onnx.partial-{dead_pid}-abcd").mkdir()
    assert sweep_stale_partials(tmp_path, "model.onnx")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["removed 1 stale partial file"]
