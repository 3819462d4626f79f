"""The latest session's raw features where VFR reads them: `ml_feature_definitions`,
`ml_feature_store` (feature_export.py) and the Redis feature vectors; with a model on VFR's
live path (`live_path.choose_live_model`: the top-k live model, else the live horizon's
champion), also that model's inputs for VFR's live ensemble."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import redis
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.serving import feature_export, live_path, live_trees, payloads
from vfr_ml_pipelines.lib.serving.served_models import close_ms, session_vectors
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_keys import feature_vector_key
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, publish


@dataclass
class SessionExport:
    as_of: date
    symbols: int
    feature_definitions: int
    retired: list[str]
    feature_store_rows: int
    live_model_inputs: int
    live_input_rows: int
    live_ridge_clip_binds: int
    live_design: str  # live_path.LiveChoice.design: which model's inputs are exported
    live_why: str
    invalid_values: int
    missing_values: int
    redis_vectors: int
    ttl_seconds: int
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, object]:
        """The export in numbers, for the run's record."""
        return {
            "as_of": str(self.as_of),
            "symbols": self.symbols,
            "feature_definitions": self.feature_definitions,
            "feature_definitions_retired": len(self.retired),
            "feature_store_rows": self.feature_store_rows,
            "live_model_inputs": self.live_model_inputs,
            "live_input_rows": self.live_input_rows,
            "live_ridge_clip_binds": self.live_ridge_clip_binds,
            "live_design": self.live_design,
            "live_why": self.live_why,
            "invalid_values": self.invalid_values,
            "missing_values": self.missing_values,
            "redis_vectors": self.redis_vectors,
            "ttl_seconds": self.ttl_seconds,
        }


def _live_inputs(registry: ModelRegistry, vectors, day: date, warnings: list[str]) -> tuple[live_path.LiveChoice, int]:
    """The model VFR's live path runs (`live_path.choose_live_model`: its inputs are what a
    split reads; none without one) and for how many symbols its ridge's output clip binds."""
    choice = live_path.choose_live_model(registry)
    if choice.version is None:
        return choice, 0
    served = choice.model
    # the one part of a model the export cannot express (live_trees.not_expressed): how
    # many of this session's symbols VFR's live path scores differently from Redis
    X = vectors.reindex(columns=served.feature_names).to_numpy(dtype="float64", na_value=float("nan"))
    clip_binds = live_trees.ridge_clip_binds(served.estimator, X)
    if clip_binds:
        warnings.append(
            f"{choice.version.model_id}: the ridge's output clip binds for {clip_binds} of {len(vectors)} symbols of {day}; "
            "VFR's live path runs the unclipped ridge for them"
        )
    return choice, clip_binds


def export_session_features(
    engine: Engine,
    registry: ModelRegistry,
    client: redis.Redis,
    prefix: str,
    *,
    provider: str,
    today: date,
    now: datetime,
    version: str,
    max_entries_per_transaction: int | None = None,
) -> SessionExport:
    """Write the session's features to VFR's tables (one transaction) and its vectors to
    Redis (one publish, the TTL policy of predictions). Definitions this export no longer
    produces are retired."""
    day, vectors, _ = session_vectors(engine, today)
    warnings: list[str] = []
    live, clip_binds = _live_inputs(registry, vectors, day, warnings)
    live_names = live.inputs
    live_written = 0
    live_ids: dict = {}
    with engine.begin() as conn:
        ids = feature_export.upsert_feature_definitions(
            conn, catalog.specs_in(vectors.columns), catalog.FEATURE_SET_OF, provider=provider
        )
        rows, skipped = feature_export.feature_store_rows(vectors, ids, day, provider, catalog.RANGES)
        written = feature_export.write_feature_store(conn, rows, day, list(vectors["symbol"]), ids)
        if live_names:
            live_ids = live_path.upsert_live_feature_definitions(conn, live_names, provider, catalog.MATRIX_VERSION)
            live_written = live_path.write_live_inputs(conn, vectors, live_ids, day, provider)
        # what this export no longer produces (a block that lost its source, a former live
        # model's inputs) stops counting in VFR's completeness
        retired = feature_export.retire_feature_definitions(conn, [*ids.values(), *live_ids.values()])

    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    as_of_ms = close_ms(day)
    writes = []
    live_inputs = live_path.session_live_inputs(vectors, live_names, day) if live_names else None
    for i, rec in enumerate(vectors.to_dict("records")):
        vector = payloads.feature_vector(
            rec["symbol"], rec, catalog.raw_names_in(vectors.columns), as_of_ms, rec.get("quality_score")
        )
        if live_inputs is not None:
            vector = live_path.attach_live_inputs(vector, live_inputs[i])
        writes.append(CacheWrite(feature_vector_key(rec["symbol"]), vector, ttl))
    report = publish(
        client, prefix, writes, version=version, now_ms=now_ms, max_entries_per_transaction=max_entries_per_transaction
    )
    return SessionExport(
        as_of=day, symbols=len(vectors), feature_definitions=len(ids), retired=retired, feature_store_rows=written,
        live_model_inputs=len(live_names), live_input_rows=live_written, live_ridge_clip_binds=clip_binds,
        live_design=live.design, live_why=live.why,
        invalid_values=int((rows["validation_status"] == "invalid").sum()) if not rows.empty else 0,
        missing_values=skipped, redis_vectors=report.written, ttl_seconds=ttl, warnings=warnings,
    )
