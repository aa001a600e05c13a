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
