"""The feature run, one function per asset of `defs/features/assets.py`: each reads what
its step needs (the warehouse, the run's adjusted-price snapshot, the stored blocks),
computes, stores, and returns the metadata the asset reports.

    adjusted_prices_snapshot  raw prices -> adjusted bars -> `_snapshots/adjusted-prices-v1`
    technical_block / fundamental_block / sentiment_block
                              snapshot (+ fundamentals, news) -> a feature set in the offline store
    publish_feature_matrix    stored blocks -> `feature-matrix-v1` (a year at a time) + `feature_latest`
    store_labels              snapshot -> forward-return labels in `vfr_ml.labels`

Every feature set written is mirrored into `vfr_ml.feature_sets`, so SQL clients see what
the offline store holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
from vfr_ml_pipelines.lib.features import store as feature_sql
from vfr_ml_pipelines.lib.features.labels import compute_all_labels
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore, WriteReport
from vfr_ml_pipelines.lib.features.online_store import register_feature_set, write_latest
from vfr_ml_pipelines.lib.features.price_snapshot import read_price_snapshot_with_info, write_price_snapshot
from vfr_ml_pipelines.lib.features.sources import BlockSources, block_sources
from vfr_ml_pipelines.lib.features.matrix import FeatureMatrixReport
from vfr_ml_pipelines.lib.features.matrix_years import feature_matrix_by_year, widest_day_of
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices

MATRIX_DESCRIPTION = "model-ready matrix: blocks + per-day transforms"


@dataclass(frozen=True)
class StepReport:
    """What a step reports: its metadata, and a line for the run's log (None: nothing to say)."""

    metadata: dict[str, Any]
    log_line: str | None = field(default=None)


def read_adjusted_prices(root: Path) -> tuple[pd.DataFrame, dict]:
    """This run's adjusted bars, the snapshot the `adjusted_prices` asset wrote (LookupError,
    naming the asset, if it was never materialized), and the lineage entries naming that
    snapshot (its write time identifies it)."""
    prices, info = read_price_snapshot_with_info(root)
    return prices, {"prices_snapshot": info.path.name, "prices_snapshot_written_at": info.written_at}


def input_lineage(prices: pd.DataFrame, **extra: object) -> dict:
    """The lineage of a step computed from `prices`: code version and the input's range."""
    return {
        "code_version": settings.code_version(),
        "input_first_day": str(prices["trade_date"].min()),
        "input_last_day": str(prices["trade_date"].max()),
        "input_rows": len(prices),
        **extra,
    }


def register(engine: Engine, store: OfflineFeatureStore, feature_set: str, description: str) -> None:
    """Mirror the offline manifest into `vfr_ml.feature_sets`, so SQL clients see what is stored."""
    with engine.begin() as conn:
        register_feature_set(
            conn, feature_set, store.manifest(feature_set), version=feature_set.rsplit("-", 1)[-1],
            description=description, store_uri=str(store.root / feature_set),
        )


def adjusted_prices_snapshot(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """Every stored bar with adj_close recomputed from the split and dividend events,
    written whole as the run's price snapshot (ValueError on an empty price table: the
    last snapshot stays)."""
    raw = feature_sql.read_raw_prices(engine)
    if raw.empty:
        raise ValueError("vfr_ml.raw_prices is empty: materialize raw_prices for some sessions first")
    prices = adjust_prices(raw)
    del raw
    info = write_price_snapshot(store.root, prices, lineage=input_lineage(prices))
    return StepReport(info.as_metadata())


def store_block(
    engine: Engine, store: OfflineFeatureStore, *, version: str, names: tuple[str, ...], frame: pd.DataFrame,
    prices: pd.DataFrame, description: str, without_source: tuple[str, ...] = (), **lineage: object,
) -> StepReport:
    """Write the `names` columns of one feature block to the offline store, register it,
    and describe it (`without_source`: the block's features left out for lack of data)."""
    frame = frame[["symbol", "trade_date", *names]]
    report = store.write(version, frame, lineage=input_lineage(prices, **lineage))
    register(engine, store, version, description)
    latest = frame[frame["trade_date"] == frame["trade_date"].max()]
    return StepReport({
        "feature_set": version,
        "features": len(names),
        "features_without_source": len(without_source),
        **({"left_out_no_source": ", ".join(without_source)} if without_source else {}),
        "rows": len(frame),
        "latest_day": str(frame["trade_date"].max()),
        "latest_day_missing_share": float(latest[list(names)].isna().mean().mean()),
        "files_written": len(report.files),
    })


def no_source(sources: BlockSources, needs: str) -> StepReport:
    """A block none of whose features has its data (prices-only exports have no fundamentals
    and no news): nothing is computed or stored, the feature matrix leaves the block out,
    and the report says so instead of storing columns of NaN and zeros."""
    version = catalog.BLOCKS[sources.block][0]
    message = (f"{sources.block} features skipped: no source ({needs} has no rows; stored datasets: "
               f"{', '.join(sorted(sources.datasets)) or 'none'}); the block stays out of the matrix, the models and VFR's export")
    metadata = {
        "feature_set": version,
        "features": 0,
        "features_without_source": len(sources.without_source),
        "no_source": message,
    }
    return StepReport(metadata, log_line=message)


def technical_block(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """The technical indicators of the run's snapshot, stored as `technical-v2`."""
    prices, snapshot = read_adjusted_prices(store.root)
    return store_block(
        engine, store, version=technical.FEATURE_SET_VERSION, names=technical.FEATURE_NAMES,
        frame=technical.compute_technical_features(prices), prices=prices,
        description="technical indicators (TA-Lib) on adjusted bars", **snapshot,
    )


def fundamental_block(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """The point-in-time ratios whose data is stored, as `fundamental-v1` (none: skipped)."""
    return _block_with_source(
        engine, store, "fundamental", table="vfr_ml.raw_fundamentals", read=feature_sql.read_raw_fundamentals,
        compute=fundamental.compute_fundamental_features, description="point-in-time fundamental ratios",
        counted_as="reports",
    )


def sentiment_block(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """The news features whose data is stored, as `sentiment-v1` (no news: skipped)."""
    return _block_with_source(
        engine, store, "sentiment", table="vfr_ml.raw_news", read=feature_sql.read_raw_news,
        compute=lambda prices, news: sentiment.compute_sentiment_features(news, prices),
        description="Loughran-McDonald news sentiment", counted_as="headlines",
    )


def _block_with_source(
    engine: Engine, store: OfflineFeatureStore, block: str, *, table: str, read: Callable[[Engine], pd.DataFrame],
    compute: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], description: str, counted_as: str,
) -> StepReport:
    """A block computed from the snapshot and the raw `table` (`read`), storing only its
    features whose raw data is stored (`no_source` when none is); the lineage counts the
    raw rows under `counted_as`."""
    sources = block_sources(engine, block)
    if not sources.names:
        return no_source(sources, table)
    prices, snapshot = read_adjusted_prices(store.root)
    raw = read(engine)
    return store_block(
        engine, store, version=catalog.BLOCKS[block][0], names=sources.names, without_source=sources.without_source,
        frame=compute(prices, raw), prices=prices, description=description, **{counted_as: len(raw)}, **snapshot,
    )


@dataclass(frozen=True)
class MatrixWrite:
    """What `store_feature_matrix` wrote, and where its time went."""

    written: WriteReport
    report: FeatureMatrixReport
    latest: pd.DataFrame  # the last session's rows of the matrix
    read_seconds: float  # reading the blocks from the offline store
    build_seconds: float  # build_feature_matrix


def store_feature_matrix(
    store: OfflineFeatureStore, sectors: pd.DataFrame, *, lineage: dict, columns: catalog.MatrixColumns | None = None,
) -> MatrixWrite:
    """Build `feature-matrix-v1` from the stored blocks one calendar year at a time and
    write it to the offline store, every year staged before all are moved into place
    together (`write_parts`). Every transform is per day, so the result equals one build
    over the whole history; the step holds one year of blocks and matrix at a time instead
    of all blocks plus the whole matrix (2.8 GB at 500 symbols x 10 years). The years are
    those of the first block (technical), whose rows the matrix has; its keys are read once
    first, for the widest session of the history (each year is laid out that wide, so that
    its sums group their terms as one whole build does and the values match it bit for
    bit). `columns`: the blocks with a source and their columns (default: every block)."""
    columns = columns or catalog.matrix_columns()
    versions = columns.versions
    reports: list[FeatureMatrixReport] = []
    latest: list[pd.DataFrame] = []
    seconds = {"keys": 0.0, "read": 0.0, "build": 0.0}  # "build" includes "read", not "keys"

    def read_blocks(first: date, last: date) -> list[pd.DataFrame]:
        started = time.perf_counter()
        blocks = [store.read(version, start=first, end=last) for version in versions]
        seconds["read"] += time.perf_counter() - started
        return blocks

    def parts():
        # the widest session of the whole history, so each year sums like one whole build
        started = time.perf_counter()
        keys = store.read(versions[0], columns=[])
        widest = widest_day_of(keys["trade_date"])
        del keys
        seconds["keys"] += time.perf_counter() - started
        parts_of_years = feature_matrix_by_year(
            read_blocks, store.years(versions[0]), sectors, widest_day=widest,
            raw_columns=list(columns.raw), rank_columns=list(columns.rank),
            zscore_columns=list(columns.zscore), neutral_columns=list(columns.neutral),
        )
        while True:
            started = time.perf_counter()
            part = next(parts_of_years, None)
            seconds["build"] += time.perf_counter() - started
            if part is None:
                return
            matrix, report = part
            reports.append(report)
            if len(matrix):
                latest[:] = [matrix[matrix["trade_date"] == matrix["trade_date"].max()].reset_index(drop=True)]
            yield matrix
            del matrix, part

    written = store.write_parts(catalog.MATRIX_VERSION, parts(), lineage=lineage)
    return MatrixWrite(
        written=written,
        report=FeatureMatrixReport.combine(reports),
        latest=latest[0] if latest else pd.DataFrame(columns=["symbol", "trade_date", *reports[0].columns]),
        read_seconds=seconds["keys"] + seconds["read"],
        build_seconds=seconds["build"] - seconds["read"],
    )


def publish_feature_matrix(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """The matrix of the blocks that have a source, stored whole in the offline store, and
    its latest session's vectors in `vfr_ml.feature_latest` for serving."""
    columns = catalog.matrix_columns(feature_sql.datasets_with_rows(engine))
    result = store_feature_matrix(
        store, feature_sql.read_sectors(engine), columns=columns,
        lineage={"code_version": settings.code_version(), "blocks": columns.versions},
    )
    register(engine, store, catalog.MATRIX_VERSION, MATRIX_DESCRIPTION)
    report, latest = result.report, result.latest
    last_day = latest["trade_date"].max() if len(latest) else None
    rows = 0
    if len(latest):
        with engine.begin() as conn:
            rows = write_latest(conn, catalog.MATRIX_VERSION, latest, latest["completeness"], latest["quality_score"])
    return StepReport(
        {
            "feature_set": catalog.MATRIX_VERSION,
            "rows": report.rows,
            "columns": report.n_columns,
            "blocks": ", ".join(columns.blocks),
            "raw_features": len(columns.raw),
            "features_without_source": len(catalog.RAW_NAMES) - len(columns.raw),
            "latest_day": str(last_day),
            "latest_vectors": rows,
            "latest_mean_completeness": float(latest["completeness"].mean()) if len(latest) else 0.0,
            "days_dropped_too_few_names": report.days_dropped,
            "files_written": len(result.written.files),
            "seconds_reading_blocks": round(result.read_seconds, 3),
            "seconds_building": round(result.build_seconds, 3),
            "seconds_total": round(result.written.seconds, 3),
        },
        log_line=f"feature matrix: {report.rows} rows x {report.n_columns} columns; latest {last_day}: {rows} vectors",
    )


def store_labels(engine: Engine, store: OfflineFeatureStore) -> StepReport:
    """Every horizon's forward-return labels of the run's snapshot, replacing the stored ones."""
    prices, _ = read_adjusted_prices(store.root)
    frame = compute_all_labels(prices)
    with engine.begin() as conn:
        feature_sql.replace_labels(conn, frame)
    per_horizon = frame.groupby("horizon")["trade_date"].max()
    return StepReport({
        "rows": len(frame),
        **{f"last_labelled_day_{h}": str(d) for h, d in per_horizon.items()},
    })
