"""`vfr-ml read-prediction` (what `make read` runs), in a subprocess against a real Redis: a
served prediction prints with exit 0, an unknown ticker is an error (exit 1, says which
tickers are served), a horizon nobody serves is an answer (exit 0, says what VFR does and
what is served), a payload VFR would refuse is another error (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from vfr_ml_pipelines.cli import EXIT_INVALID_PAYLOAD, EXIT_UNKNOWN_SYMBOL
from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, publish

REPO = Path(__file__).resolve().parents[2]


def _read(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url, "VFR_REDIS_KEY_PREFIX": prefix, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "vfr_ml_pipelines.cli", "read-prediction", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def _prediction(symbol: str, horizon: str, model_id: str) -> dict:
    now = int(time.time() * 1000)
    vector = payloads.feature_vector(symbol, {"rsi_14": 55.0}, ["rsi_14"], now)
    return payloads.ml_prediction(
        symbol=symbol, model_id=model_id, model_version="3", horizon=horizon, expected_return=0.01,
        probability=0.6, direction="BUY", confidence=0.2, features=vector, made_at_ms=now, ttl_seconds=600,
    )


def _serve(redis_client, prefix: str, entries: dict[tuple[str, str, str], dict]) -> None:
    writes = [CacheWrite(prediction_key(*key), payload, 600) for key, payload in entries.items()]
    publish(redis_client, prefix, writes, version="t")


def test_read_answers_errors_and_informs_with_matching_exit_codes(redis_client, redis_url, key_prefix):
    _serve(redis_client, key_prefix, {
        ("AAA", "1w", "default"): _prediction("AAA", "1w", "default"),
        ("BBB", "1w", "default"): {**_prediction("BBB", "1w", "default"), "horizon": "2w"},  # VFR would refuse it
        ("AAA", "1m", "vfr-1m.v2"): _prediction("AAA", "1m", "vfr-1m.v2"),  # a shadow only
    })

    listed = _read(redis_url, key_prefix)
    assert listed.returncode == 0, listed.stderr
    assert "2 symbols served for (1w, default): AAA BBB" in listed.stdout

    served = _read(redis_url, key_prefix, "aaa")
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["symbol"] == "AAA"

    unknown = _read(redis_url, key_prefix, "ZZZZ")
    assert unknown.returncode == EXIT_UNKNOWN_SYMBOL == 1
    assert "'ZZZZ'" in unknown.stderr and "not one of the 2 symbols served there (AAA BBB)" in unknown.stderr

    for args in (["AAA", "--horizon", "1m"], ["--horizon", "1m"]):
        nothing = _read(redis_url, key_prefix, *args)
        assert nothing.returncode == 0, nothing.stderr
        assert "Nothing is served for (1m, default)" in nothing.stdout
        assert "VFR finds no ML prediction there and uses its classic analysis" in nothing.stdout
        assert "(1m, vfr-1m.v2), (1w, default)" in nothing.stdout

    invalid = _read(redis_url, key_prefix, "BBB")
    assert invalid.returncode == EXIT_INVALID_PAYLOAD == 2
    assert "not a valid MLPrediction" in invalid.stderr and "horizon '2w'" in invalid.stderr


def test_an_empty_cache_is_an_answer_that_says_so(redis_url, key_prefix):
    result = _read(redis_url, key_prefix, "AAA")
    assert result.returncode == 0, result.stderr
    assert "Served (horizon, model id): nothing at all" in result.stdout
