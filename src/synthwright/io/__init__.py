"""Reading and writing rows (JSONL and Parquet) with errors a person can act on."""

from synthwright.io.rows import RowWriter, read_rows

__all__ = ["RowWriter", "read_rows"]
