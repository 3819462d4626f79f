"""Bulk loading by COPY into a temporary table, then one idempotent upsert."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, text

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for COPY: missing values as empty fields (NULL). Arrow's writer is an order of
    magnitude faster than pandas' on date and string columns (benchmarks/bench_load_prices.py);
    pandas is the fallback for columns Arrow cannot type."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue().to_pybytes()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="", date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        return buffer.getvalue().encode()


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """COPY a frame into an existing table through the psycopg 3 connection."""
    if frame.empty:
        return 0
    columns = ", ".join(_ident(c) for c in frame.columns)
    payload = to_csv_bytes(frame)
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {_ident(table)} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(payload)
    return len(frame)


def upsert_frame(
    engine: Engine | Connection,
    table: str,
    frame: pd.DataFrame,
    key_columns: Sequence[str],
    *,
    update_columns: Sequence[str] | None = None,
) -> int:
    """Insert or update `frame` into `table` keyed by `key_columns`; re-running with the
    same rows changes nothing and never duplicates. Returns the number of rows written."""
    if frame.empty:
        return 0
    missing = [c for c in key_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"upsert into {table}: key columns {missing} are not in the frame")
    if frame.duplicated(subset=list(key_columns)).any():
        dupes = frame[frame.duplicated(subset=list(key_columns), keep=False)].head(5)
        raise ValueError(f"upsert into {table}: duplicate keys {list(key_columns)} in the frame:\n{dupes}")
    updates = list(update_columns) if update_columns is not None else [c for c in frame.columns if c not in key_columns]
    columns = ", ".join(_ident(c) for c in frame.columns)
    keys = ", ".join(_ident(c) for c in key_columns)
    conflict = (
        f"DO UPDATE SET {', '.join(f'{_ident(c)} = EXCLUDED.{_ident(c)}' for c in updates)}"
        if updates
        else "DO NOTHING"
    )

    def _run(conn: Connection) -> int:
        stage = f"_stage_{secrets.token_hex(6)}"
        conn.execute(text(f"CREATE TEMP TABLE {stage} (LIKE {_ident(table)} INCLUDING DEFAULTS) ON COMMIT DROP"))
        copy_frame(conn, stage, frame)
        result = conn.execute(
            text(f"INSERT INTO {_ident(table)} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT ({keys}) {conflict}")
        )
        return result.rowcount

    if isinstance(engine, Connection):
        return _run(engine)
    with engine.begin() as conn:
        return _run(conn)


def read_frame(engine: Engine | Connection, sql: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> pd.DataFrame:
    if isinstance(engine, Connection):
        return pd.read_sql_query(text(sql), engine, params=dict(params or {}), **kwargs)
    with engine.connect() as conn:
        return pd.read_sql_query(text(sql), conn, params=dict(params or {}), **kwargs)
