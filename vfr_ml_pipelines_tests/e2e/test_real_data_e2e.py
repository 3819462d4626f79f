"""A realistic price-only vendor export (lib/market_data/realistic_export.py) from CSV
through the whole pipeline on the real servers: every planted real-data case is handled by
the market-data layer without stopping the run, and training and the gate run on it."""

from __future__ import annotations

import secrets
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from vfr_ml_pipelines.defs.resources import CsvMarketDataResource
from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.realistic_export import write_price_only_export
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader
from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine, read_frame
from vfr_ml_pipelines.definitions import ALL_ASSETS, ALL_CHECKS
from vfr_ml_pipelines.defs.pipeline.runs import range_tags
from vfr_ml_pipelines_tests.helpers import pipeline_resources, training_run_config

START, AS_OF = date(2023, 11, 1), date(2026, 11, 20)
FIRST_SESSION = calendar.trading_days(START, AS_OF)[0]


@pytest.fixture(scope="module")
def real_like(make_database, redis_url, redis_client, tmp_path_factory):
    root = tmp_path_factory.mktemp("vendor_export")
    manifest = write_price_only_export(root, seed=11, start=START, end=AS_OF, n_symbols=32)
    state = tmp_path_factory.mktemp("mlflow-real")
    prefix = f"vfrtest-real-{secrets.token_hex(3)}:veritak:mcp:"
    resources = pipeline_resources(make_database("real"), redis_url, prefix, state)
    resources["market_data"] = CsvMarketDataResource(directory=str(root), as_of=AS_OF.isoformat())
    # not raising, so each test can say what ran and why when something did not
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], resources=resources, tags=range_tags(FIRST_SESSION.isoformat(), AS_OF.isoformat()),
        run_config=training_run_config(), raise_on_error=False,
    )
    engine = create_warehouse_engine(resources["warehouse"].database_url)
    yield {"manifest": manifest, "result": result, "engine": engine, "prefix": prefix, "redis": redis_client}
    engine.dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """Check evaluations by `asset/check` (the last one of each)."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.asset_check_evaluation_data
            out[f"{data.asset_key.to_user_string()}/{data.check_name}"] = data
    return out


def test_the_run_is_green_with_every_horizon_trained_gated_and_given_a_verdict(real_like):
    result = real_like["result"]
    checks = _checks(result)
    for name in ("raw_prices/raw_prices_are_valid_bars", "raw_prices/raw_prices_cover_the_universe",
                 "raw_prices/raw_prices_have_no_unadjusted_splits", "feature_matrix/feature_matrix_is_valid"):
        assert checks[name].passed, (name, checks[name].description, checks[name].metadata)
    succeeded = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    for h in ("1d", "1w", "1m"):
        assert f"train_{h}_models" in succeeded
        assert f"challenger_{h}_model/promotion_gate" in checks  # the gate gave its verdict
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == [], failed
    # trained fine and honestly served or not: a horizon without a champion is a verdict, not a failure
    assert result.success
    verdicts = {
        key: value for key, value in result.asset_materializations_for_node("predictions")[0].metadata.items()
        if key.endswith("_verdict")
    }
    assert set(verdicts) == {"1d_verdict", "1w_verdict", "1m_verdict"}, verdicts


def test_delistings_relistings_and_junk_bars_shape_the_universe(real_like):
    manifest, engine = real_like["manifest"], real_like["engine"]
    universe = read_frame(engine, "SELECT symbol, listed_on, delisted_on FROM vfr_ml.universe").set_index("symbol")
    for symbol, last in manifest.delisted.items():
        assert universe.loc[symbol, "delisted_on"] == calendar.next_trading_day(last)
    for symbol, (_, new_first) in manifest.reused.items():
        assert universe.loc[symbol, "listed_on"] == new_first
    for symbol, (junk, regular) in manifest.junk_before_spinoff.items():
        assert universe.loc[symbol, "listed_on"] == regular
    quarantine = read_frame(engine, "SELECT symbol, day, field, reason FROM vfr_ml.quarantine WHERE dataset = 'prices'")
    not_listed = quarantine[quarantine["reason"].str.contains("is not listed on")]
    for symbol, (junk, _) in manifest.junk_before_spinoff.items():
        assert set(junk) <= set(not_listed[not_listed["symbol"] == symbol]["day"])
    for symbol, (old_last, _) in manifest.reused.items():
        assert old_last in set(not_listed[not_listed["symbol"] == symbol]["day"])
    # a delisted symbol leaves the membership: coverage is measured against the listed ones
    members = read_frame(engine, "SELECT symbol, max(trade_date) AS last FROM vfr_ml.universe_membership GROUP BY symbol")
    last = members.set_index("symbol")["last"]
    for symbol, day in manifest.delisted.items():
        assert last[symbol] == day


def test_bad_rows_are_quarantined_and_good_ones_kept(real_like):
    manifest, engine = real_like["manifest"], real_like["engine"]
    quarantine = read_frame(engine, "SELECT symbol, day, reason FROM vfr_ml.quarantine WHERE dataset = 'prices'")
    stored = read_frame(engine, "SELECT symbol, trade_date, close, dividend, split_ratio FROM vfr_ml.raw_prices")
    keys = set(zip(stored["symbol"], stored["trade_date"]))
    for symbol, day in manifest.zero_duplicates:
        assert (symbol, day) in keys  # the real bar is kept
        assert quarantine[(quarantine["symbol"] == symbol) & (quarantine["day"] == day)]["reason"].str.contains("not positive").any()
    bad = quarantine[(quarantine["symbol"] == manifest.bad_as_of_bar) & (quarantine["day"] == AS_OF)]
    assert bad["reason"].str.contains("< low").any() and (manifest.bad_as_of_bar, AS_OF) not in keys
    # no symbol is held out: the genuine moves are kept, and splits come from Adj Close
    assert not quarantine["reason"].str.startswith("unexplained jump").any()
    for symbol, day, _ in manifest.genuine_moves:
        assert (symbol, day) in keys
    events = stored.set_index(["symbol", "trade_date"])
    for symbol, day, ratio in manifest.splits:
        assert events.loc[(symbol, day), "split_ratio"] == pytest.approx(ratio)
    derived = {(s, d) for s, d in events[events["dividend"] > 0].index}
    planted = {(s, d) for s, paid in manifest.dividends.items() for d, _ in paid}
    assert derived == planted


def test_price_only_blocks_stay_out_of_the_matrix_and_the_export(real_like):
    engine = real_like["engine"]
    latest = read_frame(engine, "SELECT names, \"values\", completeness FROM vfr_ml.feature_latest WHERE feature_set = :f",
                        {"f": catalog.MATRIX_VERSION})
    names = list(latest["names"].iloc[0])
    sourceless = (set(fundamental.FEATURE_NAMES) | set(sentiment.FEATURE_NAMES)) - {"trailing_dividend_yield_252"}
    assert not set(names) & sourceless
    assert latest["completeness"].mean() >= 0.6
    # the dividends derived from Adj Close reach the dividend-yield feature
    position = names.index("trailing_dividend_yield_252")
    yields = [values[position] for values in latest["values"]]
    assert sum(1 for y in yields if y is not None and y > 0.005) >= 5
    definitions = read_frame(engine, "SELECT feature_name FROM ml_feature_definitions")
    if not definitions.empty:  # written by vfr_feature_export when the run reached it
        assert not set(definitions["feature_name"]) & sourceless


def test_prediction_payloads_measure_completeness_like_the_feature_vectors(real_like):
    """One definition everywhere: on price-only data the completeness inside a prediction
    payload is measured over the features that have a source, as the vector is, not over
    every feature the catalog knows (which would read about 0.5)."""
    prefix, client = real_like["prefix"], real_like["redis"]
    reader = VfrCacheReader(client, prefix)
    served = sorted(
        key.decode()[len(prefix):] for key in client.scan_iter(match=f"{prefix}vfr:ml:prediction:*", count=1000)
        if not key.decode().endswith((":meta", ":compressed"))
    )
    assert served, "the run published no prediction (not even a shadow)"
    for key in served[:20]:
        _, _, _, symbol, horizon, model_id = key.split(":", 5)
        payload = reader.prediction(symbol, horizon, model_id)
        vector = reader.feature_vector(symbol)
        assert payload is not None and vector is not None, key
        assert payload["features"]["completeness"] == vector["completeness"], key
        assert payload["features"]["qualityScore"] == vector["qualityScore"], key
