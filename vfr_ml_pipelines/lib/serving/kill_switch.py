"""The kill switch: take this project's ML out of the live VFR at once.

VFR falls back to its own path on a miss, so "ML off" means: no prediction key, no model
metadata key (and, by default, no feature vector key) under the deployment's prefix, and the
enhancement status saying `available: false`. There is no "enable" here: the next publish
writes everything back (pause the daily schedule to keep ML off).

What a VFR reader sees while it runs: the status is written in the same MULTI/EXEC as the
FIRST batch of deletions, so from the first moment any key is gone the status already says
unavailable; predictions not yet deleted are still complete, valid entries (each key is either
there or gone, never half-written). Had the status gone with the last batch, an interrupted
run would leave `available: true` beside half the predictions removed; this way an interrupted
run leaves an honest status and a re-run finishes the job (the switch is idempotent).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_cache import (
    DEFAULT_RETRY,
    ENHANCEMENT_STATUS_KEY,
    RetryPolicy,
    encode_entry,
    run_transaction,
)

PREDICTION_NAMESPACE = "vfr:ml:prediction:"
FEATURE_NAMESPACE = "vfr:ml:feature:vector:"
METADATA_NAMESPACE = "vfr:ml:model:metadata:"
DELETE_BATCH = 1000
# keys written while the switch runs (a publish racing it) are caught by another pass;
# a publisher that keeps writing wins anyway, so the passes are bounded
MAX_PASSES = 3


@dataclass(frozen=True)
class KillReport:
    prediction_keys_removed: int
    feature_keys_removed: int
    metadata_keys_removed: int
    status_written: bool


def glob_escape(text: str) -> str:
    """`text` as a literal inside a Redis MATCH pattern (`*`, `?`, `[`, `]`, `\\` escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _scan(client: redis.Redis, prefix: str, namespace: str) -> list[bytes]:
    pattern = glob_escape(prefix + namespace) + "*"
    wanted = (prefix + namespace).encode()
    # the startswith check is belt and braces: only keys under this prefix are ever touched
    return [key for key in client.scan_iter(match=pattern, count=1000) if _as_bytes(key).startswith(wanted)]


def _as_bytes(key: bytes | str) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


def disable_ml(
    client: redis.Redis,
    prefix: str,
    *,
    include_features: bool = True,
    now_ms: int | None = None,
    version: str,
    retry: RetryPolicy = DEFAULT_RETRY,
    socket_timeout: float | None = None,
) -> KillReport:
    """Remove every prediction (`:meta` / `:compressed` variants included), model metadata
    and, with `include_features`, feature vector key under `prefix`, and write the
    enhancement status with `available: false` (TTL until the next scheduled publish plus
    grace, like any published entry). Keys are found by SCAN and removed by UNLINK in
    MULTI/EXEC batches of DELETE_BATCH; the status goes with the first batch. Running it
    again removes nothing more and rewrites the same status."""
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    ttl = publish_ttl_seconds(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    status = payloads.enhancement_status(available=False, models_loaded=0, features_ready=not include_features, now_ms=now_ms)
    status_value = encode_entry(status, now_ms=now_ms, ttl=ttl, version=version)
    status_command = ("SET", prefix + ENHANCEMENT_STATUS_KEY, status_value, "EX", ttl)

    namespaces = {"prediction": PREDICTION_NAMESPACE, "metadata": METADATA_NAMESPACE}
    if include_features:
        namespaces["feature"] = FEATURE_NAMESPACE
    removed = dict.fromkeys(("prediction", "feature", "metadata"), 0)
    status_written = False
    for _ in range(MAX_PASSES):
        found = {kind: _scan(client, prefix, namespace) for kind, namespace in namespaces.items()}
        batches = [(kind, keys[i : i + DELETE_BATCH]) for kind, keys in found.items() for i in range(0, len(keys), DELETE_BATCH)]
        if not batches:
            break
        for index, (kind, keys) in enumerate(batches):
            commands: list[tuple] = [("UNLINK", *keys)]
            if not status_written:
                commands.insert(0, status_command)
            results, _ = run_transaction(
                client, commands, what=f"disabling ML under {prefix!r} (batch {index + 1} of {len(batches)}, {len(keys)} keys)",
                retry=retry, socket_timeout=socket_timeout,
            )
            status_written = True
            # UNLINK counts keys that still existed (one may have expired since the SCAN)
            removed[kind] += int(results[-1])
    if not status_written:
        run_transaction(
            client, [status_command], what=f"writing the ML-disabled status under {prefix!r}",
            retry=retry, socket_timeout=socket_timeout,
        )
        status_written = True
    return KillReport(
        prediction_keys_removed=removed["prediction"],
        feature_keys_removed=removed["feature"],
        metadata_keys_removed=removed["metadata"],
        status_written=status_written,
    )
