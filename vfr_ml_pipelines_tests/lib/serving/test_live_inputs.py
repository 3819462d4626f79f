"""The live model's inputs as `ml_feature_store` rows (`live_path.write_live_inputs`), read back
from the real PostgreSQL: one `valid` row per symbol and input with the value VFR must send
(computed here one value at a time with `live_values.live_inputs`, the reference), the row's
quality, the session's timestamp; a re-run replaces the rows; a value that cannot be sent
is an error naming the symbol and feature."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving import live_path, live_values
from vfr_ml_pipelines.lib.serving.vfr_tables import prediction_timestamp

DAY = date(2026, 11, 20)
NAMES = ["rsi_14", "ret_5d_rank", "pe_z"]


def _vectors(rng) -> pd.DataFrame:
    values = rng.normal(size=(40, len(NAMES))) * 7.123456789
    values[rng.random(values.shape) < 0.2] = np.nan
    values[0, 0], values[1, 1], values[2, 2] = np.inf, -np.inf, 123456.123456789
    frame = pd.DataFrame(values, columns=NAMES)
    frame.insert(0, "symbol", [f"s{i:02d}" for i in range(len(frame))])
    frame["quality_score"] = np.linspace(0.5, 1.0, len(frame)) + 1e-6
    return frame


def _stored(engine) -> dict[tuple[str, str], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT fs.ticker, fd.feature_name, fs.value, fs.data_quality_score, fs.confidence_score, fs.timestamp, "
            "fs.validation_status, fs.source_provider FROM ml_feature_store fs JOIN ml_feature_definitions fd USING (feature_id)"
        )).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_every_input_of_every_symbol_is_one_valid_row(make_engine):
    engine = make_engine("live_inputs")
    vectors = _vectors(np.random.default_rng(1))
    with engine.begin() as conn:
        ids = live_path.upsert_live_feature_definitions(conn, NAMES, "test", "matrix-v1")
        assert live_path.write_live_inputs(conn, vectors, ids, DAY, "test") == len(vectors) * len(NAMES)
    stored = _stored(engine)
    assert len(stored) == len(vectors) * len(NAMES)
    for rec in vectors.to_dict("records"):
        expected = live_values.live_inputs(rec, NAMES, "reference")
        quality = Decimal(str(round(rec["quality_score"], 4)))
        for name in NAMES:
            value, dq, confidence, stamp, status, provider = stored[(rec["symbol"].upper(), live_path.live_feature_name(name))]
            assert value == Decimal(str(round(expected[name], 8))), (rec["symbol"], name)
            assert dq == confidence == quality and status == "valid" and provider == "test"
            assert stamp == prediction_timestamp(DAY)
    assert stored[("S00", "vfr_live_rsi_14")][0] == Decimal(str(live_values.POSITIVE_INFINITY_VALUE))
    assert stored[("S02", "vfr_live_pe_z")][0] == Decimal("123456.12345679")

    # a re-run of the session replaces its rows (a value that changed leaves no older row)
    changed = vectors.assign(rsi_14=1.5)
    with engine.begin() as conn:
        live_path.write_live_inputs(conn, changed, ids, DAY, "test")
    stored = _stored(engine)
    assert len(stored) == len(vectors) * len(NAMES)
    assert {v[0] for (t, n), v in stored.items() if n == "vfr_live_rsi_14"} == {Decimal("1.5")}


def test_a_value_that_cannot_be_sent_is_refused_by_name(make_engine):
    engine = make_engine("live_inputs_bad")
    vectors = _vectors(np.random.default_rng(2))
    vectors.loc[7, "ret_5d_rank"] = 2e12
    with engine.begin() as conn:
        ids = live_path.upsert_live_feature_definitions(conn, NAMES, "test", "matrix-v1")
        with pytest.raises(live_values.LiveExportError, match="S07 on 2026-11-20: feature ret_5d_rank = 2"):
            live_path.write_live_inputs(conn, vectors, ids, DAY, "test")


def test_session_inputs_for_redis_are_the_per_value_reference_in_row_order():
    vectors = _vectors(np.random.default_rng(3))
    session = live_path.session_live_inputs(vectors, NAMES, DAY)
    assert len(session) == len(vectors)
    for rec, inputs in zip(vectors.to_dict("records"), session, strict=True):
        reference = {live_path.live_feature_name(n): v for n, v in live_values.live_inputs(rec, NAMES, "reference").items()}
        assert inputs == reference and list(inputs) == list(reference), rec["symbol"]
        assert all(type(v) is float for v in inputs.values())  # plain floats: the JSON codec's input
    vector = {"symbol": "S00", "features": {"rsi_14": 1.0}, "featureNames": ["rsi_14"], "completeness": 1.0}
    attached = live_path.attach_live_inputs(vector, session[0])
    assert attached["featureNames"] == ["rsi_14", *session[0]] and attached["features"]["vfr_live_rsi_14"] == session[0]["vfr_live_rsi_14"]
    assert attached["completeness"] == 1.0 and vector["featureNames"] == ["rsi_14"]  # the raw vector is left as it was
    bad = vectors.copy()
    bad.loc[7, "ret_5d_rank"] = 2e12
    with pytest.raises(live_values.LiveExportError, match="s07 on 2026-11-20: feature ret_5d_rank = 2"):
        live_path.session_live_inputs(bad, NAMES, DAY)
