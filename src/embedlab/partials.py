"""Hidden partial files embedlab writes beside their final place, and removing those a crash left behind.

Every atomic write in embedlab goes through a hidden name that carries the writer's process id:

- ``.NAME.partial-PID`` for a file written in place and renamed to ``NAME`` (see :func:`partial_path`);
- ``.NAME.partial-PID-RANDOM`` for a ``tempfile.mkstemp`` / ``mkdtemp`` scratch file or folder that becomes
  ``NAME`` (see :func:`partial_prefix`).

A process killed with SIGKILL (an OOM kill, a laptop lid) cannot clean up, so its partial stays. The next writer
of the same target calls :func:`remove_stale_partials`, which removes the partials whose writer is gone and keeps
those of live writers. Liveness is checked with ``os.kill(pid, 0)`` on this host: a folder shared by two hosts
that write the same target at once is not supported (a partial of the other host's live writer looks stale).

This module sits below every layer (like :mod:`embedlab.paths`): the output writers, the export and IR caches,
the calibration cache and the server's tokenizer cache all use it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PARTIAL_MARK = ".partial-"

_PARTIAL_NAME = re.compile(r"^\.(?P<target>.+)\.partial-(?P<pid>[0-9]{1,10})(?:-[^/]*)?$")


def partial_path(target: Path) -> Path:
    """The hidden name beside ``target`` that this process writes before renaming it to ``target``."""
    return target.with_name(f".{target.name}{PARTIAL_MARK}{os.getpid()}")


def partial_prefix(target_name: str) -> str:
    """A ``prefix=`` for ``tempfile.mkstemp`` / ``mkdtemp`` whose result becomes ``target_name``.

    The random part ``mkstemp`` adds follows a ``-``, so :func:`remove_stale_partials` still finds the PID.
    """
    return f".{target_name}{PARTIAL_MARK}{os.getpid()}-"


def writer_pid(name: str, target_name: str | None = None) -> int | None:
    """The PID in a partial's file name, or None if ``name`` is not a partial (of ``target_name``, when given)."""
    match = _PARTIAL_NAME.match(name)
    if match is None or (target_name is not None and match["target"] != target_name):
        return None
    return int(match["pid"])


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts as alive).

    PIDs below 1 are reported alive: ``os.kill`` would address a process group, and nothing is removed on a guess.
    A zombie (killed, not yet reaped by its parent) is alive too until its parent reaps it.
    """
    if pid < 1:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # larger than any pid_t: no process has it, but the name is not ours to judge
        return True
    return True


@dataclass(frozen=True)
class RemovedPartials:
    """What :func:`remove_stale_partials` removed.

    Attributes:
        folder: the folder swept.
        paths: the removed files and scratch folders, sorted by name.
        bytes: their apparent size in all (a folder counts the files in it), bytes.
    """

    folder: Path
    paths: list[Path] = field(default_factory=list)
    bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.paths)

    def summary(self) -> str:
        """One line for people, e.g. ``removed 2 stale partial files (61.2 MB) of crashed runs in out: ...``."""
        count = len(self.paths)
        noun = "file" if count == 1 else "files"
        names = ", ".join(p.name for p in self.paths)
        return (
            f"removed {count} stale partial {noun} ({self.bytes / 1e6:.1f} MB) left by crashed runs "
            f"in {self.folder}: {names}"
        )


def _size(path: Path) -> int:
    """Apparent size of a file, or of the files under a folder (links not followed), in bytes."""
    if path.is_dir() and not path.is_symlink():
        total = 0
        for root, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):  # removed meanwhile
                    total += os.lstat(os.path.join(root, name)).st_size
        return total
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def remove_stale_partials(folder: Path, target_name: str | None = None) -> RemovedPartials:
    """Remove the partial files and scratch folders in ``folder`` whose writing process is gone.

    Args:
        folder: where the partials lie (a missing folder has none).
        target_name: only partials of this final name (``vectors.npy`` matches ``.vectors.npy.partial-123``);
            None: every partial in ``folder`` (for folders only embedlab writes, such as its cache).

    Returns:
        what was removed. A name without a parsable PID, or whose writer is alive, is never removed;
        a partial another process removes at the same time is skipped.
    """
    try:
        entries = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return RemovedPartials(folder)
    removed: list[Path] = []
    total = 0
    for entry in entries:
        pid = writer_pid(entry.name, target_name)
        if pid is None or process_alive(pid):
            continue
        size = _size(entry)
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
        total += size
    return RemovedPartials(folder, removed, total)


def sweep_stale_partials(folder: Path, target_name: str | None = None) -> RemovedPartials:
    """:func:`remove_stale_partials`, and one WARNING line on this module's logger when something was removed.

    For cache writers (exported graphs, IR, calibrations) that have no console of their own: a warning is shown
    even where logging is not configured, so the disk space a crash took and got back is never silent.
    """
    removed = remove_stale_partials(folder, target_name)
    if removed:
        log.warning(removed.summary())
    return removed
