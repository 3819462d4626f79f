"""What a Redis publish tells the operator (`publish_plan.publish_prediction_set`): per horizon,
the prediction keys written by model id, or why none; counted against the keys a real Redis
holds afterwards."""

from __future__ import annotations

import logging

from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, RegisteredVersion
from vfr_ml_pipelines.lib.serving.publish_plan import PredictionSet, prediction_writes, publish_prediction_set
from vfr_ml_pipelines.lib.serving.served_models import ServedVersion, serving_verdicts
from vfr_ml_pipelines.lib.serving.vfr_keys import parse_prediction_key
from vfr_ml_pipelines_tests.lib.serving.test_publish_plan import NOW_MS, _rows

LOGGER = "vfr_ml_pipelines.lib.serving.publish_plan"


def test_each_horizon_says_what_it_published(redis_client, key_prefix, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    champion = ServedVersion("1w", CHAMPION, RegisteredVersion("vfr-1w", "3", "run", {}))
    shadow = ServedVersion("1m", CHALLENGER, RegisteredVersion("vfr-1m", "4", "run", {}))
    writes = prediction_writes(champion, _rows(["AAA", "BBB"]), NOW_MS, 600)
    writes += prediction_writes(shadow, _rows(["AAA"]), NOW_MS, 600)
    plan = PredictionSet(writes, [], NOW_MS, 600, verdicts=serving_verdicts([champion, shadow]))

    publish_prediction_set(redis_client, key_prefix, plan, version="test")

    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == [
        "Redis publish, 1d: no prediction keys (no model trained for 1d, nothing served)",
        "Redis publish, 1w: 4 prediction keys written (default: 2, vfr-1w.v3: 2)",
        "Redis publish, 1m: 1 prediction key written (vfr-1m.v4: 1); trained, no significant skill, nothing served "
        "for 1m (challenger vfr-1m.v4 published as a shadow under its own id only)",
    ]
    stored = [parse_prediction_key(k.decode()[len(key_prefix):]) for k in redis_client.scan_iter(match=f"{key_prefix}*")]
    by_horizon = {h: sum(1 for k in stored if k is not None and k.horizon == h) for h in ("1d", "1w", "1m")}
    assert by_horizon == {"1d": 0, "1w": 4, "1m": 1}
