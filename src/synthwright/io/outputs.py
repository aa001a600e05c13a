"""How a command's result gets into place without losing earlier work.

Two rules, for every command that writes a file:

- One writer per output. `output_lock(path)` holds an OS lock (flock, through `filelock`) on a
  small file beside the output for as long as the command runs. The kernel drops the lock when
  the process ends, however it ends, so a killed run never leaves a stale lock behind.
- Only a complete result replaces an earlier one. `put_in_place` moves a finished result over
  the target; an incomplete one (some rows failed) goes beside it as `NAME.incomplete.EXT`
  when an earlier output exists, so a failed rerun never empties a good file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from synthwright import atomic
from synthwright.errors import UserError


def lock_path_for(path: Path) -> Path:
    """out.jsonl -> .out.jsonl.lock, beside it (hidden: it comes and goes with each run)."""
    return path.with_name(f".{path.name}.lock")


@contextmanager
def output_lock(*paths: Path, fix: str = "Wait for it to finish, or write to another output.") -> Iterator[None]:
    """Hold every output in `paths` exclusively, or refuse at once with a UserError."""
    with ExitStack() as stack:
        for path in map(Path, paths):
            stack.enter_context(exclusive(lock_path_for(path), f"Another synthwright process is writing {path}.", fix))
        yield


@contextmanager
def exclusive(lock_file: Path, problem: str, fix: str) -> Iterator[None]:
    """Hold `lock_file` (an OS lock) while the block runs; UserError(problem, fix) when another
    process holds it. Never waits: two writers at once is a mistake to report, not to queue."""
    lock = FileLock(lock_file)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(blocking=False)
    except Timeout:
        raise UserError(problem, fix) from None
    except OSError as exc:
        raise UserError(f"Cannot write in '{lock_file.parent}': {exc.strerror or exc}.", "Choose a writable output path.") from None
    try:
        yield
    finally:
        lock.release()


def check_output_target(path: Path, folder: bool = False) -> None:
    """Refuse, before any work, an output path that could never be written."""
    if not folder and path.is_dir():
        raise UserError(f"Output '{path}' is a folder.", "Give a file path for the output.")
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"Output folder '{path}' is a file.", "Give a folder path, or move the file away.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"Cannot write '{path}': '{parent}' is a file, not a folder.", "Choose another output path.")
            break


def incomplete_path_for(path: Path) -> Path:
    """out.jsonl -> out.incomplete.jsonl; a folder `hf_out` -> hf_out.incomplete."""
    return path.with_name(path.stem + ".incomplete" + path.suffix)


def is_set_aside(path: Path) -> bool:
    """True for a path `put_in_place` chose instead of the target (an incomplete result)."""
    return ".incomplete" in path.suffixes


def put_in_place(partial: Path, target: Path, complete: bool) -> Path:
    """Move a finished result (`partial`) into place; returns where it now lies.

    A complete result replaces the target. An incomplete one takes the target's place only
    when there is nothing there to lose; otherwise it is set aside, and the earlier output
    stays as it was, byte for byte.
    """
    aside = incomplete_path_for(target)
    if not complete and target.exists():
        _replace(partial, aside)
        return aside
    _replace(partial, target)
    _remove(aside)  # a stale set-aside result of an earlier run would only mislead
    return target


def _replace(source: Path, target: Path) -> None:
    if source.is_dir():  # a datasets folder: no atomic swap exists for folders
        _remove(target)
    atomic.replace(source, target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def refuse_same_file(output: Path, input: Path, option: str = "--output") -> None:
    """An output that is the input would destroy the input while it is read: refuse it."""
    if output.resolve() == input.resolve():
        raise UserError(f"{option} '{output}' is the input file.", "Write the output to another file.")
