"""With no environment set, the pipeline runs on embedded real servers that it starts and
stops itself, under one state folder."""

from __future__ import annotations

import redis
from sqlalchemy import text

from vfr_ml_pipelines.defs.resources import build_resources
from vfr_ml_pipelines.lib import embedded
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader, validate_prediction
from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine
from vfr_ml_pipelines_tests.helpers import AS_OF, HISTORY_START, N_SYMBOLS, materialize_range

ENV = ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "VFR_REDIS_KEY_PREFIX", "DAGSTER_HOME")


def test_zero_configuration_run_on_embedded_servers(tmp_path, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("VFR_ML_HOME", str(state))
    # the same market as the end-to-end tests (so the same models pass the promotion gate)
    monkeypatch.setenv("VFR_SYNTHETIC_SYMBOLS", str(N_SYMBOLS))
    monkeypatch.setenv("VFR_HISTORY_START", HISTORY_START)
    monkeypatch.setenv("VFR_AS_OF", AS_OF)

    resources = build_resources()
    assert resources["redis"].key_prefix == "veritak:mcp:"
    result = materialize_range(resources, start=HISTORY_START, end=AS_OF)
    assert result.success

    # a finished run leaves no server behind
    assert embedded.postgres_pid(state) is None
    assert embedded.redis_pid(state) is None
    assert (state / "mlflow" / "mlflow.db").exists()

    # the state persists: start the servers again and read what VFR would read
    with embedded.embedded_redis(state) as url:
        client = redis.Redis.from_url(url)
        reader = VfrCacheReader(client, "veritak:mcp:")
        keys = sorted(k.decode() for k in client.scan_iter(match="veritak:mcp:vfr:ml:prediction:*:1w:default"))
        assert len(keys) == N_SYMBOLS
        for key in keys:
            symbol = key.split(":")[-3]
            assert validate_prediction(reader.prediction(symbol)) == []
        client.close()
    with embedded.embedded_postgres(state) as url:
        engine = create_warehouse_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(DISTINCT ticker) FROM ml_predictions")).scalar_one() == N_SYMBOLS
        engine.dispose()
    assert embedded.postgres_pid(state) is None and embedded.redis_pid(state) is None
