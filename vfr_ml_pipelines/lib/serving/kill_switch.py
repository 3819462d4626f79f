"""The kill switch: take this project's ML out of the live VFR at once.

VFR falls back to its own path on a miss, so "ML off" means: no prediction key, no model
metadata key (and, by default, no feature vector key) of ours under the deployment's prefix,
and the enhancement status saying `available: false`. (VFR's live ensemble reads `ml_models`
instead: `live_path.disable_live_path` is the other half, run by `disable_ml_job`.) There is
no "enable" here: the next publish writes everything back (pause the daily schedule to keep
ML off).

Only keys this project wrote are removed: VFR writes keys in the same namespaces itself
(`vfr:ml:feature:vector:{SYMBOL}` from its feature integrators and FeatureStore, predictions
it caches, its models' metadata). Every value we write is an envelope whose `source` is
`vfr_codec.SOURCE`, so that is the mark: a Lua script checks it and unlinks in one atomic
step per batch (a key VFR rewrote since the SCAN carries VFR's source and survives).
A test pins that every envelope `publish` and `encode_entry` write carries that mark.

What a VFR reader sees while it runs: the status is written in the same MULTI/EXEC as the
FIRST batch of deletions, so from the first moment any key is gone the status already says
unavailable; predictions not yet deleted are still complete, valid entries (each key is either
there or gone, never half-written). Had the status gone with the last batch, an interrupted
run would leave `available: true` beside half the predictions removed; this way an interrupted
run leaves an honest status and a re-run finishes the job (the switch is idempotent).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.live_path import disable_live_path
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.redis_transport import DEFAULT_RETRY, RetryPolicy, run_transaction
from vfr_ml_pipelines.lib.serving.vfr_codec import SOURCE, encode_entry
from vfr_ml_pipelines.lib.serving.vfr_keys import (
    ENHANCEMENT_STATUS_KEY,
    FEATURE_VECTOR_NAMESPACE,
    MODEL_METADATA_NAMESPACE,
    PREDICTION_NAMESPACE,
    glob_escape,
)

# the feature vectors go too unless told otherwise (the job's config defaults to this)
INCLUDE_FEATURES_DEFAULT = True
DELETE_BATCH = 1000
# keys written while the switch runs (a publish racing it) are caught by another pass;
# a publisher that keeps writing wins anyway, so the passes are bounded
MAX_PASSES = 3
# Unlink each key whose value is an envelope of ours: every envelope this project writes
# (vfr_codec.encode_entry and publish) ends with `,"source":<SOURCE>,"version":<v>}`, so
# the script looks for OUR_MARK (ARGV[1]) in the value's last TAIL_BYTES (ARGV[2]) instead
# of parsing kilobytes of JSON per key. Anything else stays: another writer's envelope (VFR
# puts its own source there), a value that is not an envelope, a key of another type.
# Returns {removed count, the keys kept}; a key gone since the SCAN is in neither.
OUR_MARK = ',"source":' + json.dumps(SOURCE) + ',"version":'
TAIL_BYTES = 512
UNLINK_OURS_SCRIPT = """
local removed, kept = 0, {}
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'string' then
    local raw = redis.call('GET', key)
    local tail = string.sub(raw, -tonumber(ARGV[2]))
    if string.sub(raw, -1) == '}' and string.find(tail, ARGV[1], 1, true) then
      redis.call('UNLINK', key)
      removed = removed + 1
    else
      kept[#kept + 1] = key
    end
  elseif kind ~= 'none' then
    kept[#kept + 1] = key
  end
end
return {removed, kept}
"""


@dataclass(frozen=True)
class KillReport:
    prediction_keys_removed: int
    feature_keys_removed: int
    metadata_keys_removed: int
    status_written: bool
    # keys in those namespaces that another writer (VFR itself) owns, left in place
    foreign_keys_kept: int = 0


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
    include_features: bool = INCLUDE_FEATURES_DEFAULT,
    now_ms: int | None = None,
    version: str,
    retry: RetryPolicy = DEFAULT_RETRY,
    socket_timeout: float | None = None,
) -> KillReport:
    """Remove every prediction (`:meta` / `:compressed` variants included), model metadata
    and, with `include_features`, feature vector key under `prefix` that this project wrote
    (envelope source SOURCE; keys of other writers stay), and write the enhancement status
    with `available: false` (TTL until the next scheduled publish plus grace, like any
    published entry). Keys are found by SCAN and removed by UNLINK_OURS_SCRIPT in MULTI/EXEC
    batches of DELETE_BATCH; the status goes with the first batch. Running it again removes
    nothing more and rewrites the same status."""
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    ttl = publish_ttl_seconds(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    status = payloads.enhancement_status(available=False, models_loaded=0, features_ready=not include_features, now_ms=now_ms)
    status_value = encode_entry(status, now_ms=now_ms, ttl=ttl, version=version)
    status_command = ("SET", prefix + ENHANCEMENT_STATUS_KEY, status_value, "EX", ttl)

    namespaces = {"prediction": PREDICTION_NAMESPACE, "metadata": MODEL_METADATA_NAMESPACE}
    if include_features:
        namespaces["feature"] = FEATURE_VECTOR_NAMESPACE
    removed = dict.fromkeys(("prediction", "feature", "metadata"), 0)
    kept: set[bytes] = set()  # keys found not ours (or gone): not looked at again
    status_written = False
    for _ in range(MAX_PASSES):
        found = {kind: [k for k in _scan(client, prefix, namespace) if _as_bytes(k) not in kept] for kind, namespace in namespaces.items()}
        batches = [(kind, keys[i : i + DELETE_BATCH]) for kind, keys in found.items() for i in range(0, len(keys), DELETE_BATCH)]
        if not batches:
            break
        for index, (kind, keys) in enumerate(batches):
            commands: list[tuple] = [("EVAL", UNLINK_OURS_SCRIPT, len(keys), *keys, OUR_MARK, TAIL_BYTES)]
            if not status_written:
                commands.insert(0, status_command)
            results, _ = run_transaction(
                client, commands, what=f"disabling ML under {prefix!r} (batch {index + 1} of {len(batches)}, {len(keys)} keys)",
                retry=retry, socket_timeout=socket_timeout,
            )
            status_written = True
            count, others = results[-1]
            removed[kind] += int(count)
            kept.update(_as_bytes(k) for k in others)
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
        foreign_keys_kept=len(kept),
    )


@dataclass(frozen=True)
class SwitchedOff:
    undeployed: list[str]  # model ids of ours that left `deployed` (VFR's live ensemble)
    report: KillReport  # what left VFR's Redis (its cache path)
    seconds: float


def switch_ml_off(
    engine: Engine, client: redis.Redis, prefix: str, *, version: str, include_features: bool = INCLUDE_FEATURES_DEFAULT
) -> SwitchedOff:
    """Both halves of the kill switch: our `deployed` rows of `ml_models` leave `deployed` first
    (recorded for the next publish to restore), then `disable_ml` empties our Redis keys."""
    started = time.perf_counter()
    with engine.begin() as conn:
        undeployed = disable_live_path(conn)
    report = disable_ml(
        client, prefix, include_features=include_features, now_ms=int(datetime.now(UTC).timestamp() * 1000), version=version
    )
    return SwitchedOff(undeployed, report, time.perf_counter() - started)
