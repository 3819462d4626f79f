"""Idempotent loading of a date range: delete the range, COPY the new rows, in one
transaction. Re-running a partition gives the same rows; a failure leaves the old ones."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from vfr_ml_pipelines.lib.warehouse.loading import _ident, copy_frame


def replace_date_range(
    conn: Connection, table: str, frame: pd.DataFrame, date_column: str, start: date, end: date,
    *, where: str = "", params: dict | None = None,
) -> int:
    """Replace all rows of `table` with `date_column` in [start, end] (and the optional
    extra `where` clause) by `frame`, whose rows must all fall in that range."""
    if not frame.empty:
        days = pd.to_datetime(frame[date_column]).dt.date
        outside = frame[(days < start) | (days > end)]
        if not outside.empty:
            raise ValueError(f"{table}: {len(outside)} rows fall outside {start}..{end}, e.g. {outside.iloc[0].to_dict()}")
    extra = f" AND ({where})" if where else ""
    conn.execute(
        text(f"DELETE FROM {_ident(table)} WHERE {_ident(date_column)} BETWEEN :start AND :end{extra}"),
        {"start": start, "end": end, **(params or {})},
    )
    return copy_frame(conn, table, frame)


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, (date, pd.Timestamp)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def replace_quarantine(
    conn: Connection, dataset: str, provider: str, start: date, end: date, rejected: pd.DataFrame, run_id: str | None
) -> int:
    """Rejected rows of one dataset and range, kept with their reason (never dropped)."""
    conn.execute(
        text(
            "DELETE FROM vfr_ml.quarantine WHERE dataset = :d AND provider = :p "
            "AND partition_start >= :s AND partition_end <= :e"
        ),
        {"d": dataset, "p": provider, "s": start, "e": end},
    )
    if rejected.empty:
        return 0
    rows = pd.DataFrame(
        {
            "dataset": dataset,
            "provider": provider,
            "partition_start": start,
            "partition_end": end,
            "symbol": rejected["symbol"].astype(object).where(rejected["symbol"].notna(), None).map(lambda s: None if s is None else str(s)[:64]),
            "day": rejected["day"],
            "field": rejected["field"],
            "reason": rejected["reason"],
            "raw": [json.dumps({k: _json_safe(v) for k, v in (r or {}).items()}) for r in rejected["raw"]],
            "run_id": run_id,
        }
    )
    return copy_frame(conn, "vfr_ml.quarantine", rows)
