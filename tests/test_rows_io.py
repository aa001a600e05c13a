"""Row files: a Parquet schema clash is a clear error, not a pyarrow traceback."""

import pytest

from synthwright.errors import UserError
from synthwright.io.rows import RowWriter


def test_parquet_rows_that_clash_in_type_give_a_clear_error(tmp_path):
    writer = RowWriter(tmp_path / "out.parquet")
    writer.PARQUET_BATCH = 1
    writer.write({"value": 1})
    with pytest.raises(UserError) as caught:
        writer.write({"value": {"nested": "dict"}})
    assert "one Parquet schema" in caught.value.problem and ".jsonl" in caught.value.fix
    assert not (tmp_path / "out.parquet").exists()


def test_parquet_keeps_columns_that_only_later_rows_have(tmp_path):
    """pyarrow's from_pylist takes the columns of the first row only; nothing may be dropped."""
    from synthwright.io.rows import read_rows

    writer = RowWriter(tmp_path / "out.parquet")
    for row in ({"query": "a"}, {"query": "b", "query_original": "a"}, {"query": "c"}):
        writer.write(row)
    writer.close()
    assert read_rows(tmp_path / "out.parquet") == [
        {"query": "a", "query_original": None}, {"query": "b", "query_original": "a"}, {"query": "c", "query_original": None}]


def test_run_store_reads_back_rows_with_different_columns_exactly(tmp_path):
    """A step that keeps its input rows and adds derived ones with more columns (rewrite_queries)."""
    from synthwright.core.step import BatchResult
    from synthwright.pipeline.rundir import RunDirectory

    rows = [{"query": "a", "_meta": {"id": "1"}}, {"query": "b", "query_original": "a", "_meta": {"id": "2", "parents": ["1"]}},
            {"query": "c", "_meta": {"id": "3"}}]
    result = BatchResult.for_input(2)
    for row in rows:
        result.keep(row)
    result.drop({"query": "d", "extra": [1, 2], "_meta": {"id": "4"}}, "too_short")
    rundir = RunDirectory(tmp_path / "run")
    rundir.write_batch("step", 0, result)
    assert list(rundir.rows("step")) == rows
    assert list(rundir.rows("step", "dropped")) == [{"query": "d", "extra": [1, 2], "_meta": {"id": "4"}, "_drop_reason": "too_short"}]


def test_parquet_later_batch_may_lack_a_column_but_not_add_one(tmp_path):
    from synthwright.io.rows import read_rows

    writer = RowWriter(tmp_path / "out.parquet")
    writer.PARQUET_BATCH = 2
    for row in ({"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3}):
        writer.write(row)
    writer.close()
    assert read_rows(tmp_path / "out.parquet")[-1] == {"a": 3, "b": None}

    writer = RowWriter(tmp_path / "new.parquet")
    writer.PARQUET_BATCH = 2
    writer.write({"a": 1})
    writer.write({"a": 2})
    writer.write({"a": 3, "c": "late"})
    with pytest.raises(UserError) as caught:
        writer.write({"a": 4})
    assert "'c' first appears after 2 rows" in caught.value.problem and ".jsonl" in caught.value.fix


def test_hf_export_keeps_columns_that_only_later_rows_have(tmp_path):
    pytest.importorskip("datasets")
    import datasets

    from synthwright.io.export import export_rows

    path = export_rows([{"query": "a"}, {"query": "b", "query_original": "a"}], tmp_path / "ds", "hf", include_meta=False)
    assert datasets.load_from_disk(str(path)).to_list() == [{"query": "a", "query_original": None}, {"query": "b", "query_original": "a"}]


def test_run_store_json_fallback_keeps_numbers_numbers(tmp_path):
    import numpy as np

    from synthwright.core.step import BatchResult
    from synthwright.pipeline.rundir import RunDirectory

    result = BatchResult.for_input(2)
    result.keep({"x": np.float32(0.5), "v": np.arange(2)})
    result.keep({"x": 1.5, "extra": True})
    rundir = RunDirectory(tmp_path / "run")
    rundir.write_batch("s", 0, result)
    assert list(rundir.rows("s")) == [{"x": 0.5, "v": [0, 1]}, {"x": 1.5, "extra": True}]
