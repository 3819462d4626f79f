"""The live model's k: per k, the 1w live model (`live_training.train_live_model`: LightGBM on
the top k inputs by gain of a LightGBM fitted on the first fold's training rows) on the study's
synthetic market, with the figures the promotion gate reads (validation Rank IC and its t) and
the test figures (reported, never used to choose), per candidate (`--algorithms`, default the
live line's: LightGBM and the ridge, and so their ensembles).

    nice -n 10 .venv/bin/python benchmarks/study_live_topk.py [--seed 7] [--start 2019-01-02] [--k 8 12 16] \
        [--trials 0] [--algorithms lightgbm linear]

The market, matrix, labels and oracle are `study_models.py`'s (cached under --cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_models import cached, dataset  # noqa: E402

from vfr_ml_pipelines.lib.models.live_training import LIVE_ALGORITHMS, LIVE_SELECTION, SELECTIONS, train_live_model  # noqa: E402
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig  # noqa: E402
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy  # noqa: E402
from vfr_ml_pipelines.lib.models.training_record import significance  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2019, 1, 2))
    parser.add_argument("--k", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--trials", type=int, default=0)
    parser.add_argument("--algorithms", nargs="+", default=list(LIVE_ALGORITHMS))
    parser.add_argument("--selection", choices=sorted(SELECTIONS), default=LIVE_SELECTION)
    # how sensitive the figures are to the run's last session: drop the last N sessions of the
    # matrix (as if the run had ended N sessions earlier; every window moves with it)
    parser.add_argument("--drop-sessions", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/study"))
    parser.add_argument("--symbols", type=int, default=100, help="universe size (the default market's is 100)")
    args = parser.parse_args()
    data, names, oracle = dataset(cached(args.seed, args.start, args.cache, args.symbols), "1w", "base")
    if args.drop_sessions:
        last = sorted(data["trade_date"].unique())[-args.drop_sessions]
        data = data[(data["trade_date"] < last) & (data["known_date"] < last)].reset_index(drop=True)
    config = HorizonTrainingConfig(horizon="1w", tuning_trials=args.trials, canary_seeds=(11,))
    min_t = PromotionPolicy().min_validation_t
    for k in args.k:
        started = time.process_time()
        inputs, result = train_live_model(data, names, config, k, oracle=oracle, algorithms=args.algorithms, selection=args.selection)
        chosen = result.selected()
        t = significance(chosen.validation, "1w")
        print(json.dumps({
            "seed": args.seed, "symbols": args.symbols, "start": args.start.isoformat(), "selection": args.selection, "dropped": args.drop_sessions, "k": k, "of": len(names), "inputs": inputs,
            "val_rank_ic": round(chosen.validation["rank_ic"], 4), "val_t": round(t, 2), "significant": bool(t >= min_t),
            "test_rank_ic": round(chosen.test["rank_ic"], 4), "oracle": round(chosen.test.get("oracle_rank_ic", float("nan")), 4),
            "ratio": round(chosen.test.get("model_oracle_ratio", float("nan")), 3),
            "shuffled_canary": result.shuffled_canary.passed, "oracle_canary": not result.leaked(),
            "selected": chosen.name,
            # every candidate: [validation Rank IC, its t, test Rank IC]
            "candidates": {n: [round(c.validation["rank_ic"], 4), round(significance(c.validation, "1w"), 2),
                               round(c.test["rank_ic"], 4)] for n, c in result.candidates.items()},
            "cpu_s": round(time.process_time() - started, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
