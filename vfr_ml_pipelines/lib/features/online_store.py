"""The online feature store: the latest feature vector per (feature set, symbol) in
PostgreSQL, for VFR-side readers and the serving assets (docs/feature_store.md).

Table `vfr_ml.feature_latest` (sql/004_feature_store.sql): one row per (feature_set,
symbol) with the session it describes, the feature names and their values as two parallel
arrays (a NULL element is a missing feature), and the row's completeness and quality score.
Reading 25 symbols x 50 features is one indexed query; the column subset is picked by array
position inside PostgreSQL, so only the requested values travel.

`vfr_ml.feature_sets` mirrors each offline feature set's manifest (columns, rows, days,
lineage) for SQL clients: `register_feature_set`.

Connections: every function takes a SQLAlchemy Engine or Connection, or a psycopg 3
connection. Writes through a Connection join the caller's transaction (through an Engine
they run in a transaction of their own). For the lowest read latency keep a Connection open:
an Engine checks a connection out of its pool per call, and its pre-ping costs one more round
trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from vfr_ml_pipelines.lib.dates import parse_day

KEY_COLUMNS = ("symbol", "trade_date")
# stored in columns of their own, never in the feature arrays
ROW_QUALITY_COLUMNS = ("completeness", "quality_score")
MAX_SYMBOL_LENGTH = 20

_UPSERT = """
INSERT INTO vfr_ml.feature_latest AS t
    (feature_set, symbol, trade_date, names, "values", completeness, quality_score, updated_at)
SELECT CAST(:feature_set AS text), u.symbol, u.trade_date, CAST(:names AS text[]),
       v.flat[(u.r - 1) * CAST(:width AS integer) + 1 : u.r * CAST(:width AS integer)],
       u.completeness, u.quality_score, now()
FROM unnest(
        CAST(:symbols AS varchar(20)[]), CAST(:days AS date[]),
        CAST(:completeness AS double precision[]), CAST(:quality AS double precision[])
     ) WITH ORDINALITY AS u(symbol, trade_date, completeness, quality_score, r)
CROSS JOIN (SELECT CAST(:flat AS double precision[]) AS flat) AS v
ON CONFLICT (feature_set, symbol) DO UPDATE SET
    trade_date = EXCLUDED.trade_date,
    names = EXCLUDED.names,
    "values" = EXCLUDED."values",
    completeness = EXCLUDED.completeness,
    quality_score = EXCLUDED.quality_score,
    updated_at = EXCLUDED.updated_at
WHERE t.trade_date <= EXCLUDED.trade_date
"""

# names travel once: only the first row's, and a row's own where it differs from the first
_READ = """
SELECT symbol, trade_date, completeness, quality_score,
       CASE WHEN row_number() OVER () = 1 OR names IS DISTINCT FROM first_value(names) OVER () THEN names END,
       "values"
FROM vfr_ml.feature_latest
WHERE feature_set = %(feature_set)s AND symbol = ANY(%(symbols)s)
"""

_REGISTER = """
INSERT INTO vfr_ml.feature_sets AS t
    (feature_set, version, description, columns, row_count, first_day, last_day, lineage, store_uri, written_at)
VALUES (CAST(:feature_set AS text), :version, :description, CAST(:columns AS text[]), :row_count,
        CAST(:first_day AS date), CAST(:last_day AS date), CAST(:lineage AS jsonb), :store_uri,
        COALESCE(CAST(:written_at AS timestamptz), now()))
ON CONFLICT (feature_set) DO UPDATE SET
    version = COALESCE(EXCLUDED.version, t.version),
    description = COALESCE(EXCLUDED.description, t.description),
    columns = EXCLUDED.columns,
    row_count = EXCLUDED.row_count,
    first_day = EXCLUDED.first_day,
    last_day = EXCLUDED.last_day,
    lineage = EXCLUDED.lineage,
    store_uri = COALESCE(EXCLUDED.store_uri, t.store_uri),
    written_at = EXCLUDED.written_at
"""


# ---------------------------------------------------------------------- write


def write_latest(
    conn: Connection | Engine | Any,
    feature_set: str,
    frame: pd.DataFrame,
    completeness: float | Sequence[float] | Mapping[str, float] | pd.Series,
    quality: float | Sequence[float] | Mapping[str, float] | pd.Series,
) -> int:
    """Upsert one session's vectors of `feature_set`: one row per symbol of `frame`
    (symbol, trade_date, float feature columns; NaN = missing). `completeness` and
    `quality` (each in [0, 1]) are a number for every row, a sequence aligned with the rows,
    a Series on the frame's index, or a Series/mapping by symbol. Columns named
    `completeness` / `quality_score` in the frame are not stored as features (they have
    columns of their own). A stored vector of a later session is never replaced by an
    earlier one. Returns the number of rows inserted or updated."""
    _check_feature_set(feature_set)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"latest vectors lack required column(s) {missing}")
    if frame.empty:
        return 0
    symbols = frame["symbol"]
    if symbols.isna().any() or not all(isinstance(s, str) and 0 < len(s) <= MAX_SYMBOL_LENGTH for s in symbols):
        bad = next(s for s in symbols if not (isinstance(s, str) and 0 < len(s) <= MAX_SYMBOL_LENGTH))
        raise ValueError(f"column 'symbol' must hold strings of 1 to {MAX_SYMBOL_LENGTH} characters, got {bad!r}")
    duplicated = symbols.duplicated()
    if duplicated.any():
        raise ValueError(f"latest vectors hold symbol {symbols[duplicated].iloc[0]!r} twice; one row per symbol")
    days = [_trade_day(d) for d in frame["trade_date"]]
    distinct = sorted(set(days))
    if None in distinct:
        raise ValueError(f"column 'trade_date' is missing for symbol {symbols.iloc[days.index(None)]!r}")
    if len(distinct) != 1:
        raise ValueError(f"latest vectors must be of one session, got {len(distinct)}: {distinct[:3]} ...")

    names = [c for c in frame.columns if c not in KEY_COLUMNS and c not in ROW_QUALITY_COLUMNS]
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"feature column names must be strings, got {name!r}")
        dtype = frame[name].dtype
        if not (isinstance(dtype, np.dtype) and dtype.kind == "f"):
            raise ValueError(
                f"feature column {name!r} has dtype {dtype}; features must be float (NaN = missing), "
                f"e.g. symbol {symbols.iloc[0]!r}: {frame[name].iloc[0]!r}"
            )
    values = frame[names].to_numpy(dtype=np.float64) if names else np.empty((len(frame), 0))
    infinite = np.isinf(values)
    if infinite.any():
        row, col = (int(i[0]) for i in np.nonzero(infinite))
        raise ValueError(
            f"feature column {names[col]!r} holds {values[row, col]} for symbol {symbols.iloc[row]!r} on {days[row]}; "
            "missing values are NaN, never infinity"
        )
    comp = _per_row(completeness, frame, "completeness")
    qual = _per_row(quality, frame, "quality")

    params = {
        "feature_set": feature_set,
        "names": names,
        "width": len(names),
        "symbols": symbols.tolist(),
        "days": days,
        "completeness": comp.tolist(),
        "quality": qual.tolist(),
        "flat": _float_array_literal(values.ravel()),
    }
    with _sqlalchemy_or_psycopg(conn, write=True) as (kind, handle):
        if kind == "sqlalchemy":
            return int(handle.execute(text(_UPSERT), params).rowcount)
        with handle.cursor() as cursor:
            cursor.execute(_to_psycopg(_UPSERT), params)
            return int(cursor.rowcount)


def register_feature_set(
    conn: Connection | Engine | Any,
    feature_set: str,
    manifest: Mapping[str, Any],
    *,
    version: str | None = None,
    description: str | None = None,
    store_uri: str | None = None,
) -> None:
    """Record (or refresh) a feature set in `vfr_ml.feature_sets` from its offline
    manifest (`OfflineFeatureStore.manifest`): columns, rows, first/last day, lineage and
    written_at."""
    _check_feature_set(feature_set)
    params = {
        "feature_set": feature_set,
        "version": version,
        "description": description,
        "columns": list(manifest.get("columns") or []),
        "row_count": int(manifest.get("rows") or 0),
        "first_day": manifest.get("first_day"),
        "last_day": manifest.get("last_day"),
        "lineage": json.dumps(manifest.get("lineage") or {}, sort_keys=True, default=str),
        "store_uri": store_uri,
        "written_at": manifest.get("written_at"),
    }
    with _sqlalchemy_or_psycopg(conn, write=True) as (kind, handle):
        if kind == "sqlalchemy":
            handle.execute(text(_REGISTER), params)
        else:
            with handle.cursor() as cursor:
                cursor.execute(_to_psycopg(_REGISTER), params)


def read_feature_set(conn_or_engine: Connection | Engine | Any, feature_set: str) -> dict[str, Any] | None:
    """The `vfr_ml.feature_sets` row of `feature_set`, or None."""
    with _driver(conn_or_engine) as raw, raw.cursor() as cursor:
        cursor.execute(
            "SELECT feature_set, version, description, columns, row_count, first_day, last_day, lineage, "
            "store_uri, written_at FROM vfr_ml.feature_sets WHERE feature_set = %s",
            (feature_set,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d.name for d in cursor.description], row))


# ---------------------------------------------------------------------- read


def read_latest(
    conn_or_engine: Connection | Engine | Any,
    feature_set: str,
    symbols: Iterable[str],
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The latest vectors of `symbols` in one round trip: one row per requested symbol
    that has one, in the order requested, with columns symbol, trade_date, the features
    (all stored ones, or `columns` in that order; NaN = missing), completeness and
    quality_score. The subset is picked by array position from each row's names array (in
    Python: fetching whole arrays measured faster than subscripting them in SQL). A
    requested column that no returned row has raises KeyError."""
    wanted = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
    subset = None
    if columns is not None:
        subset = [c for c in dict.fromkeys([columns] if isinstance(columns, str) else columns)
                  if c not in KEY_COLUMNS and c not in ROW_QUALITY_COLUMNS]
    rows: list[tuple] = []
    if wanted:
        with _driver(conn_or_engine) as raw, raw.cursor(binary=True) as cursor:
            cursor.execute(_READ, {"feature_set": feature_set, "symbols": wanted})
            rows = cursor.fetchall()
    first = rows[0][4] if rows else []  # the server's first row carries the names
    uniform = all(r[4] is None for r in rows[1:])
    if not uniform:
        rows = [r if r[4] is not None else (*r[:4], first, r[5]) for r in rows]
    if len(rows) > 1:
        position = {s: i for i, s in enumerate(wanted)}
        rows.sort(key=lambda r: position[r[0]])
    names = subset if subset is not None else (list(first) if uniform else list(dict.fromkeys(n for r in rows for n in r[4])))
    if rows and subset is not None:
        known = set(first).union(*(r[4] for r in rows)) if not uniform else set(first)
        unknown = [c for c in subset if c not in known]
        if unknown:
            raise KeyError(f"feature set {feature_set!r} has no column(s) {unknown} in its latest vectors")
    if not rows:
        values = np.empty((0, len(names)))
    elif uniform:
        values = np.array([r[5] for r in rows], dtype=np.float64).reshape(len(rows), len(first))
        if subset is not None or names != first:
            values = values[:, _positions(tuple(first), tuple(names))]
    else:  # rows written with different columns: by name, NaN where a row lacks one
        slot = {n: i for i, n in enumerate(names)}
        values = np.full((len(rows), len(names)), np.nan)
        for i, r in enumerate(rows):
            for n, v in zip(r[4], r[5]):
                if n in slot and v is not None:
                    values[i, slot[n]] = v

    floats = np.empty((len(rows), len(names) + 2))
    floats[:, : len(names)] = values
    floats[:, len(names)] = [r[2] for r in rows]
    floats[:, len(names) + 1] = [r[3] for r in rows]
    keys = pd.DataFrame({"symbol": np.array([r[0] for r in rows], dtype=object),
                         "trade_date": np.array([r[1] for r in rows], dtype=object)})
    return pd.concat([keys, pd.DataFrame(floats, columns=[*names, *ROW_QUALITY_COLUMNS])], axis=1)


_POSITIONS: dict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = {}


def _positions(stored: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray:
    """Array positions of `wanted` in `stored` (memoised: a set's names rarely change)."""
    key = (stored, wanted)
    found = _POSITIONS.get(key)
    if found is None:
        index = {n: i for i, n in enumerate(stored)}
        found = np.array([index[n] for n in wanted], dtype=np.intp)
        if len(_POSITIONS) > 256:
            _POSITIONS.clear()
        _POSITIONS[key] = found
    return found


# ---------------------------------------------------------------------- helpers


@contextmanager
def _driver(conn: Connection | Engine | Any) -> Iterator[Any]:
    """The psycopg connection behind a SQLAlchemy Engine/Connection, or `conn` itself."""
    if isinstance(conn, Engine):
        with conn.connect() as sa_conn:
            yield sa_conn.connection.driver_connection
    elif isinstance(conn, Connection):
        yield conn.connection.driver_connection
    else:
        yield conn


@contextmanager
def _sqlalchemy_or_psycopg(conn: Connection | Engine | Any, *, write: bool) -> Iterator[tuple[str, Any]]:
    if isinstance(conn, Engine):
        with conn.begin() if write else conn.connect() as sa_conn:
            yield "sqlalchemy", sa_conn
    elif isinstance(conn, Connection):
        yield "sqlalchemy", conn
    else:
        yield "psycopg", conn


_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _to_psycopg(sql: str) -> str:
    return _BIND.sub(r"%(\1)s", sql)


def _float_array_literal(values: np.ndarray) -> str:
    """A PostgreSQL float8[] literal; NaN becomes NULL. repr() is the shortest string that
    reads back as the same double, so values round-trip exactly."""
    return "{" + ",".join(repr(v) if v == v else "NULL" for v in values.tolist()) + "}"


def _per_row(value: Any, frame: pd.DataFrame, name: str) -> np.ndarray:
    n = len(frame)
    if isinstance(value, pd.Series):
        if value.index.equals(frame.index):
            out = value.to_numpy(dtype=np.float64)
        elif value.index.is_unique and set(frame["symbol"]).issubset(value.index):
            out = value.reindex(frame["symbol"]).to_numpy(dtype=np.float64)
        else:
            raise ValueError(f"{name}: a Series must be on the frame's index or indexed by symbol")
    elif isinstance(value, Mapping):
        absent = [s for s in frame["symbol"] if s not in value]
        if absent:
            raise ValueError(f"{name} has no value for symbol(s) {absent[:5]}")
        out = np.array([value[s] for s in frame["symbol"]], dtype=np.float64)
    elif np.ndim(value) == 0:
        out = np.full(n, float(value))
    else:
        out = np.asarray(value, dtype=np.float64)
        if out.shape != (n,):
            raise ValueError(f"{name}: {out.shape[0] if out.ndim else 0} values for {n} rows")
    bad = ~np.isfinite(out) | (out < 0) | (out > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be a number in [0, 1], got {out[i]} for symbol {frame['symbol'].iloc[i]!r}")
    return out


def _trade_day(value: Any) -> date | None:
    try:
        return parse_day(value)
    except ValueError:
        raise ValueError(f"trade_date must be a date, got {value!r}") from None


def _check_feature_set(feature_set: str) -> None:
    if not isinstance(feature_set, str) or not feature_set.strip():
        raise ValueError(f"feature set name must be a non-empty string, got {feature_set!r}")


__all__ = [
    "ROW_QUALITY_COLUMNS",
    "read_feature_set",
    "read_latest",
    "register_feature_set",
    "write_latest",
]
