"""Files written whole or not at all: the one way synthwright puts a file in place.

Write beside the target, flush it to disk, rename it over the target, then sync the folder:
after a crash, a kill or a power cut the target holds the old content or the new, never a
part, and a file written after it (a run folder's batch record) is never on disk without it.
Run folders, outputs, review labels and model files all go through here, so all get the same
guarantee. Standard library only: every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """`text` into `path` (UTF-8), atomically and durably; the folder is made when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    replace(tmp, path)


def replace(finished: Path, target: Path) -> None:
    """Put the finished file (or folder) `finished` in `target`'s place, durably."""
    if Path(finished).is_file():
        _sync(finished, os.O_RDONLY)
    os.replace(finished, target)
    _sync(Path(target).parent, os.O_RDONLY)


def _sync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system syncs folders; the rename itself is still atomic
    finally:
        os.close(fd)
