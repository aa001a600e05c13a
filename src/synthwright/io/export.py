"""Writing rows out for training: JSONL, Parquet, or a Hugging Face `datasets` folder.

Lineage travels along: in JSONL `_meta` stays a nested object; in Parquet and datasets
folders it is a JSON string column, because lineage keys differ from row to row and
columnar formats want one fixed schema.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from synthwright.core.lineage import META, Row
from synthwright.errors import UserError, require_module
from synthwright.io.rows import RowWriter

FORMATS = ("jsonl", "parquet", "hf")


def _flatten_meta(rows: list[Row], include_meta: bool) -> list[Row]:
    if not include_meta:
        return [{k: v for k, v in row.items() if k != META} for row in rows]
    return [{**row, META: json.dumps(row.get(META) or {}, sort_keys=True)} for row in rows]


def export_rows(rows: list[Row], path: Path, fmt: str, include_meta: bool = True) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"Unknown export format '{fmt}'.", f"Use one of: {', '.join(FORMATS)}.")
    if fmt == "jsonl":
        writer = RowWriter(path if path.suffix == ".jsonl" else path.with_suffix(".jsonl"))
        for row in rows if include_meta else _flatten_meta(rows, False):
            writer.write(row)
        return writer.close()
    flat = _flatten_meta(rows, include_meta)
    if fmt == "parquet":
        writer = RowWriter(path if path.suffix == ".parquet" else path.with_suffix(".parquet"))
        for row in flat:
            writer.write(row)
        return writer.close()
    datasets = require_module("datasets", "Export to a Hugging Face datasets folder", "datasets")
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    datasets.Dataset.from_list(flat).save_to_disk(str(partial))
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path
