"""Pipeline steps for data in and out: `load` (a source) and `export` (a stage)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field

from synthwright.core.files import content_digest
from synthwright.core.lineage import Row, derive_id
from synthwright.core.step import BatchResult, SourceStep, Stage, StepOptions, added_option, register_step
from synthwright.io.export import ExportWriter
from synthwright.io.rows import iter_rows


class LoadOptions(StepOptions):
    path: str = Field(description="A .jsonl or .parquet file")
    id_column: str | None = Field(None, description="Column holding a stable row id (default: derived from the position)")
    limit: int | None = Field(None, ge=1)
    keep_meta: bool = added_option(False, description="Keep the lineage rows bring (`_meta` from an earlier synthwright "
                                                      "step: id, generator model, scores); rows without it get new lineage")


@register_step("load")
class LoadStep(SourceStep):
    Options = LoadOptions
    description = "Read rows from a JSONL or Parquet file and give each one lineage."

    def fingerprint_extra(self):
        return {"sha256": content_digest(self.context.resolve(self.options.path))}

    def read(self) -> Iterator[Row]:
        path = self.context.resolve(self.options.path)
        rows = iter_rows(path)  # streamed: a million-row input never sits in memory whole
        for index, row in enumerate(itertools.islice(rows, self.options.limit)):
            source_id = row.get(self.options.id_column) if self.options.id_column else index
            meta = {"id": derive_id(path.name, source_id), "step": self.name, "source": path.name, "source_index": index}
            if self.options.keep_meta and isinstance(row.get("_meta"), dict):
                meta = {**meta, **row["_meta"]}  # the row's own id and lineage win
            yield {**{k: v for k, v in row.items() if k != "_meta"}, "_meta": meta}


PART_ROWS = 8192  # an export hands its rows on in parts of this many, never all at once


class ExportOptions(StepOptions):
    path: str = Field(description="Where to write (relative paths land inside the run directory)")
    format: Literal["jsonl", "parquet", "hf"] = "jsonl"
    include_meta: bool = True


@register_step("export")
class ExportStep(Stage):
    Options = ExportOptions
    description = "Write the rows to a JSONL file, a Parquet file or a Hugging Face datasets folder."
    runs_on_driver = True

    def run(self, rows: Iterable[Row]) -> BatchResult:
        result = BatchResult()
        for part in self.run_in_parts(rows):
            result.kept += part.kept
            result.stats = result.stats.merge(part.stats)
        return result

    def run_in_parts(self, rows: Iterable[Row]) -> Iterator[BatchResult]:
        """Stream: each part is written to the file, then handed on to become a shard."""
        writer = ExportWriter(self.context.output_path(self.options.path), self.options.format, self.options.include_meta)
        iterator = iter(rows)
        while part_rows := list(itertools.islice(iterator, PART_ROWS)):
            for row in part_rows:
                writer.write(row)
            part = BatchResult.for_input(len(part_rows))
            part.kept, part.stats.rows_out = part_rows, len(part_rows)
            yield part
        # Rows lost to failures upstream make this export incomplete: it must not replace a
        # complete one from an earlier run (it goes beside it, NAME.incomplete.EXT).
        writer.close(complete=not self.input_incomplete)
