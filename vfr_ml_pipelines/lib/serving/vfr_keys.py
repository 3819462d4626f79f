"""VFR's Redis key formats: every key this project writes or reads, built and parsed here.

Keys are written without the deployment's prefix (ioredis `keyPrefix`, e.g. `veritak:mcp:`);
callers add it. A compressed entry lives beside its plain key as `{key}:compressed` with
`{key}:meta` saying so (VFR's own writers' layout), so a key is gone for VFR only when both
companions are gone too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREDICTION_NAMESPACE = "vfr:ml:prediction:"
FEATURE_VECTOR_NAMESPACE = "vfr:ml:feature:vector:"
MODEL_METADATA_NAMESPACE = "vfr:ml:model:metadata:"
PREDICTION_KEY = PREDICTION_NAMESPACE + "{symbol}:{horizon}:{model_id}"
FEATURE_VECTOR_KEY = FEATURE_VECTOR_NAMESPACE + "{symbol}"
MODEL_METADATA_KEY = MODEL_METADATA_NAMESPACE + "{model_id}"
ENHANCEMENT_STATUS_KEY = "vfr:ml:enhancement:status"
META_SUFFIX = ":meta"
COMPRESSED_SUFFIX = ":compressed"


def prediction_key(symbol: str, horizon: str, model_id: str) -> str:
    return PREDICTION_KEY.format(symbol=symbol.upper(), horizon=horizon, model_id=model_id)


def feature_vector_key(symbol: str) -> str:
    return FEATURE_VECTOR_KEY.format(symbol=symbol.upper())


def model_metadata_key(model_id: str) -> str:
    return MODEL_METADATA_KEY.format(model_id=model_id)


def meta_key(key: str) -> str:
    return key + META_SUFFIX


def compressed_key(key: str) -> str:
    return key + COMPRESSED_SUFFIX


def base_key(key: str) -> str:
    """The entry a key belongs to: `key` without a `:meta` / `:compressed` companion suffix."""
    return key.removesuffix(META_SUFFIX).removesuffix(COMPRESSED_SUFFIX)


@dataclass(frozen=True)
class PredictionKey:
    symbol: str
    horizon: str
    model_id: str


def parse_prediction_key(key: str) -> PredictionKey | None:
    """The parts of a prediction key (a companion suffix is ignored); None for any other key.
    The model id is the last segment, as VFR's own ids hold no colon."""
    key = base_key(key)
    if not key.startswith(PREDICTION_NAMESPACE):
        return None
    parts = key[len(PREDICTION_NAMESPACE) :].rsplit(":", 2)
    if len(parts) != 3:
        return None
    return PredictionKey(*parts)


def parse_model_metadata_key(key: str) -> str | None:
    """The model id of a model-metadata key (a companion suffix is ignored); None for any
    other key."""
    key = base_key(key)
    if not key.startswith(MODEL_METADATA_NAMESPACE):
        return None
    return key[len(MODEL_METADATA_NAMESPACE) :]


def glob_escape(text: str) -> str:
    """`text` as a literal inside a Redis MATCH pattern (`*`, `?`, `[`, `]`, `\\` escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def prediction_pattern(prefix: str, *, symbol: str | None = None, horizon: str | None = None, model_id: str | None = None) -> str:
    """A SCAN pattern for the prediction keys under `prefix` with the given parts (None: any);
    with `model_id` None it also matches the `:meta` / `:compressed` companions."""
    parts = ["*" if part is None else glob_escape(part) for part in (symbol, horizon, model_id)]
    return glob_escape(prefix + PREDICTION_NAMESPACE) + ":".join(parts)


def model_metadata_pattern(prefix: str, model_id_start: str = "") -> str:
    """A SCAN pattern for the model-metadata keys whose model id starts with `model_id_start`."""
    return glob_escape(prefix + MODEL_METADATA_NAMESPACE + model_id_start) + "*"
