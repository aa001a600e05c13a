"""What identifies an input file in a fingerprint or cache key: its content, not where or when
it was written.

Size and mtime were the first choice, being free; but a data folder copied or provisioned afresh
(same bytes, new mtimes) then invalidated every step downstream of it: hours of teacher calls
(served back from the request cache) and every student retrained. A sha256 costs about a second
per GB and is computed once per process for a given file version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import stat as stat_module
from pathlib import Path
from typing import Any

from synthwright import atomic

_CHUNK = 1 << 20


def content_digest(path: str | Path) -> str | None:
    """sha256 of the file's bytes (hex); None when it is not a readable regular file, so the
    step that reads it reports the problem in its own words."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat_module.S_ISREG(info.st_mode):
            return None
        # inode and ctime as well: a same-size rewrite within one mtime tick, or a file renamed
        # into place, is still a new version.
        return _digest(str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _digest(path: str, *_version: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_report(path: Path, report: Any) -> None:
    """A report as indented JSON, its folder made when missing, put in place whole."""
    atomic.write_text(path, json.dumps(report, indent=2))
