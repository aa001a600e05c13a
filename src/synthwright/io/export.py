"""Writing rows out for training: JSONL, Parquet, or a Hugging Face `datasets` folder.

Lineage travels along: in JSONL `_meta` stays a nested object; in Parquet and datasets
folders it is a JSON string column, because lineage keys differ from row to row and
columnar formats want one fixed schema.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from synthwright.core.lineage import META, Row
from synthwright.errors import UserError, require_module
from synthwright.io.outputs import put_in_place
from synthwright.io.rows import RowWriter

FORMATS = ("jsonl", "parquet", "hf")


def _flatten_meta(row: Row, include_meta: bool) -> Row:
    if not include_meta:
        return {k: v for k, v in row.items() if k != META}
    return {**row, META: json.dumps(row.get(META) or {}, sort_keys=True)}


class ExportWriter:
    """Writes rows one at a time: JSONL and Parquet stream to disk (a million rows never sit
    in memory); a datasets folder is built from all rows at `close()`. Nothing appears under
    the final name until `close()`, and an incomplete export never replaces an earlier one."""

    def __init__(self, path: Path, fmt: str, include_meta: bool = True):
        if fmt not in FORMATS:
            raise UserError(f"Unknown export format '{fmt}'.", f"Use one of: {', '.join(FORMATS)}.")
        self.fmt, self.include_meta = fmt, include_meta
        if fmt == "hf":
            self.datasets = require_module("datasets", "Export to a Hugging Face datasets folder", "datasets")
            self.path, self._rows, self._writer = path, [], None
        else:
            suffix = "." + fmt
            self._writer = RowWriter(path if path.suffix == suffix else path.with_suffix(suffix))

    def write(self, row: Row) -> None:
        if self.fmt != "jsonl" or not self.include_meta:  # JSONL keeps `_meta` nested
            row = _flatten_meta(row, self.include_meta)
        if self._writer is None:
            self._rows.append(row)
        else:
            self._writer.write(row)

    def close(self, complete: bool = True) -> Path:
        """Move the export into place (see `io.outputs.put_in_place`); returns where it went."""
        if self._writer is not None:
            return self._writer.close(complete)
        partial = self.path.with_name(self.path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        # from_list takes the first row's columns; a column only later rows have would vanish.
        columns = list(dict.fromkeys(key for row in self._rows for key in row))
        self.datasets.Dataset.from_dict({key: [row.get(key) for row in self._rows] for key in columns}).save_to_disk(str(partial))
        return put_in_place(partial, self.path, complete)


def export_rows(rows: Iterable[Row], path: Path, fmt: str, include_meta: bool = True, complete: bool = True) -> Path:
    writer = ExportWriter(path, fmt, include_meta)
    for row in rows:
        writer.write(row)
    return writer.close(complete)
