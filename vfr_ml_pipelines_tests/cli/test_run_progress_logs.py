"""The local instance `vfr-ml run` and `vfr-ml ui` write hands the core's progress lines (Python
logging under `vfr_ml_pipelines`, which never imports dagster) to the run's log: what the
console prints during a long training step and what the UI shows."""

from __future__ import annotations

import logging

import dagster as dg
import yaml

from vfr_ml_pipelines.cli import local_instance_yaml


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
