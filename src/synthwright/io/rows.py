"""Rows in and out: JSONL (`.jsonl`, `.json`) and Parquet (`.parquet`).

Rows are plain dicts. Readers fail with one clear line that names the file, the line and
the fix; writers write to `<path>.partial` and rename on `close()`, so a crash never
leaves a half-written file under the final name, and an incomplete result never replaces
an earlier file (see `io.outputs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthwright.errors import UserError
from synthwright.io.outputs import check_output_target, put_in_place

JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def check_row_format(path: str | Path) -> str:
    """'jsonl' or 'parquet' for a rows file, from its extension; UserError otherwise."""
    return _format_of(Path(path))


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise UserError(
        f"Cannot tell the format of '{path}' from its extension '{suffix or '(none)'}'.",
        "Use a .jsonl or .parquet file.",
    )


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a JSONL or Parquet file. Raises UserError for anything malformed or empty."""
    path = Path(path)
    fmt = _format_of(path)
    check_input_file(path)
    rows = list(_iter_jsonl(path)) if fmt == "jsonl" else _read_parquet(path)
    if not rows:
        raise UserError(f"Input file '{path}' has no rows.", "Give a file with at least one JSON object per line.")
    return rows


def iter_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL or Parquet file one at a time, for inputs too big to hold.
    Raises UserError like `read_rows` (an empty file only once it has been read)."""
    path = Path(path)
    fmt = _format_of(path)
    check_input_file(path)
    empty = True
    for row in _iter_jsonl(path) if fmt == "jsonl" else _iter_parquet(path):
        empty = False
        yield row
    if empty:
        raise UserError(f"Input file '{path}' has no rows.", "Give a file with at least one JSON object per line.")


def check_input_file(path: Path, what: str = "Input file") -> None:
    """UserError unless `path` is a readable file: missing and folder are told apart."""
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder, not a file.", "Give the path of a file inside it.")
    if not path.is_file():
        raise UserError(f"{what} '{path}' does not exist.", "Check the path (it is relative to the current folder).")


def _iter_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=8192)
        for batch in batches:
            yield from batch.to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise UserError(f"Cannot read Parquet file '{path}': {exc}.", "Check that it is a Parquet file and not truncated.") from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of a JSONL file (none for an empty one); UserError when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"File '{path}' does not exist.", "Check the path.")
    return list(_iter_jsonl(path))


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    return (row for _, row in numbered_jsonl(path))


def numbered_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file: the one JSONL parser.
    UserError, naming the file and the line, for bytes that are not UTF-8, a line that is not
    JSON, or JSON that is not an object."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path}:{number}: byte {exc.start} is not valid UTF-8.",
                    "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).",
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno}).", "Each line must be one JSON object.") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: a JSON {type(row).__name__}, not an object.", 'Each line must be a JSON object like {"text": "..."}.')
            yield number, row


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise UserError(f"Cannot read Parquet file '{path}': {exc}.", "Check that it is a Parquet file and not truncated.") from None


class RowWriter:
    """Writes rows to JSONL or Parquet, atomically: nothing appears under `path` until `close()`."""

    PARQUET_BATCH = 1024

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = _format_of(self.path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.count = 0
        self._buffer: list[dict[str, Any]] = []
        self._parquet_writer = None
        check_output_target(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.partial, "w", encoding="utf-8") if self.format == "jsonl" else None
        except OSError as exc:
            raise UserError(f"Cannot write '{self.path}': {exc.strerror}.", "Choose a writable output path.") from None

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._handle is not None:
            self._handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            return
        self._buffer.append(row)
        if len(self._buffer) >= self.PARQUET_BATCH:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        try:
            # The columns of every row, not only the first (from_pylist's default drops keys
            # that later rows add); a row without a column gets null there. The file's columns
            # are fixed by its first batch: a later batch may lack some, never add one.
            columns = list(dict.fromkeys(key for row in self._buffer for key in row))
            if self._parquet_writer is not None:
                new = [key for key in columns if key not in self._parquet_writer.schema.names]
                if new:
                    raise pa.ArrowInvalid(f"column {new[0]!r} first appears after {self.count - len(self._buffer)} rows")
                columns = self._parquet_writer.schema.names
            table = pa.table({key: [row.get(key) for row in self._buffer] for key in columns})
            if self._parquet_writer is None:
                self._parquet_writer = pq.ParquetWriter(self.partial, table.schema)
            self._parquet_writer.write_table(table.cast(self._parquet_writer.schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            self._buffer = []
            raise UserError(
                f"Rows for '{self.path}' do not fit one Parquet schema ({exc}).",
                "Write .jsonl instead; a rerun of the same command takes the finished answers from the request cache.",
            ) from None
        self._buffer = []

    def close(self, complete: bool = True) -> Path:
        """Finish and move the file into place; returns where it went. An incomplete result
        (`complete=False`: some rows failed) never replaces an earlier file: it goes beside it."""
        if self._handle is not None:
            self._handle.close()
        else:
            self._flush_parquet()
            if self._parquet_writer is not None:
                self._parquet_writer.close()
            else:  # zero rows: still leave a valid (empty) file
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({}), self.partial)
        return put_in_place(self.partial, self.path, complete)
