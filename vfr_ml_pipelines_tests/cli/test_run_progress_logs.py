"""The local instance `vfr-ml run` and `vfr-ml ui` write hands the core's progress lines (Python
logging under `vfr_ml_pipelines`, which never imports dagster) to the run's log: what the
console prints during a long training step or market-data load and what the UI shows."""

from __future__ import annotations

import logging
from datetime import date

import dagster as dg
import yaml

from vfr_ml_pipelines.cli import local_instance_yaml
from vfr_ml_pipelines.lib.market_data.loads import fetch_in_batches
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig
from vfr_ml_pipelines.lib.market_data.synthetic.provider import SyntheticMarketProvider


@dg.asset
def noisy_core_step() -> None:
    logging.getLogger("vfr_ml_pipelines.lib.models.tuning").info("tuning lightgbm: trial 5 of at most 20")
    logging.getLogger("some_library").info("a library's chatter stays out")


def test_the_core_progress_lines_reach_the_run_log(tmp_path):
    config = yaml.safe_load(local_instance_yaml(str(tmp_path)))
    assert config["python_logs"]["managed_python_loggers"] == ["vfr_ml_pipelines"]
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"python_logs": config["python_logs"]}) as instance:
        result = dg.materialize([noisy_core_step], instance=instance)
        assert result.success
        messages = [r.event_log_entry.user_message for r in instance.get_records_for_run(result.run_id).records]
    assert any("tuning lightgbm: trial 5 of at most 20" in m for m in messages)
    assert not any("a library's chatter" in m for m in messages)


MARKET = SyntheticMarketConfig(as_of=date(2024, 3, 28), start=date(2024, 1, 2), n_symbols=6)


@dg.asset
def market_data_load() -> None:
    provider = SyntheticMarketProvider(MARKET)
    fetch_in_batches(provider.load_prices, "prices", "synthetic", provider.all_symbols(), MARKET.start, MARKET.as_of)


def test_a_market_data_load_says_what_it_delivered_in_the_run_log(tmp_path):
    config = yaml.safe_load(local_instance_yaml(str(tmp_path)))
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"python_logs": config["python_logs"]}) as instance:
        result = dg.materialize([market_data_load], instance=instance)
        assert result.success
        messages = [r.event_log_entry.user_message for r in instance.get_records_for_run(result.run_id).records]
    # 6 symbols x 61 sessions (2 January to 28 March 2024), fewer bars where a symbol was not yet listed
    line = next(m for m in messages if "prices: synthetic delivered" in m)
    assert "for 6 symbols x 61 sessions (2024-01-02 to 2024-03-28) in " in line
