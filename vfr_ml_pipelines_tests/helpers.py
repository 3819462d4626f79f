"""Building the pipeline's resources for tests."""

from __future__ import annotations

from pathlib import Path

from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, RedisResource, WarehouseResource

AS_OF = "2026-11-20"  # a Friday
N_SYMBOLS = 25
HISTORY_START = "2025-03-03"


def pipeline_resources(database_url: str, redis_url: str, key_prefix: str, mlflow_state: Path, **market: object) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=database_url),
        "redis": RedisResource(redis_url=redis_url, key_prefix=key_prefix),
        "mlflow": MlflowResource(state_dir=str(mlflow_state)),
        "market_data": MarketDataResource(
            n_symbols=market.get("n_symbols", N_SYMBOLS),
            history_start=market.get("history_start", HISTORY_START),
            as_of=market.get("as_of", AS_OF),
        ),
    }
