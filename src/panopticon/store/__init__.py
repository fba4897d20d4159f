"""The run store: one folder per run of Parquet files plus a manifest; DuckDB across runs."""
