"""The promotion gate against a registry (`lib/models/promotion_gate.py`): what it reads,
the verdict and severity it gives, and the tags it leaves for the champion asset. The
registry is a stand-in holding the two aliases; the real MLflow path is covered by the
model-lifecycle tests."""

from __future__ import annotations

from types import SimpleNamespace

from vfr_ml_pipelines.lib.models.champions import GATE_REASON_TAG, GATE_TAG
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy
from vfr_ml_pipelines.lib.models.promotion_gate import run_promotion_gate
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, RegisteredVersion

SKILLED = {
    "canary_shuffled_passed": "true", "canary_shuffled_message": "no skill on shuffled labels",
    "canary_oracle_passed": "n/a", "canary_oracle_message": "no oracle",
    "validation_rank_ic": "0.05", "validation_rank_ic_t": "3.0",
}


class AliasRegistry:
    def __init__(self, challenger: RegisteredVersion | None, champion: RegisteredVersion | None = None,
                 load_seconds: float = 0.01, size_bytes: int = 1_000, wall_seconds: float | None = None) -> None:
        self.aliases = {CHALLENGER: challenger, CHAMPION: champion}
        self.load_seconds, self.size_bytes = load_seconds, size_bytes
        self.wall_seconds = load_seconds if wall_seconds is None else wall_seconds
        self.written: dict[str, dict[str, str]] = {}

    def by_alias(self, name, alias):
        return self.aliases[alias]

    def load_serving_model(self, name, version):
        return SimpleNamespace(seconds=self.wall_seconds, cpu_seconds=self.load_seconds)

    def model_size_bytes(self, name, version):
        return self.size_bytes

    def set_version_tags(self, name, version, tags):
        self.written.setdefault(version, {}).update(tags)


def _version(number: str, **tags: str) -> RegisteredVersion:
    return RegisteredVersion("vfr-1w", number, f"run-{number}", {**SKILLED, **tags})


def test_no_challenger_fails_and_blocks_downstream():
    verdict = run_promotion_gate(AliasRegistry(None), "1w", PromotionPolicy())
    assert (verdict.passed, verdict.blocks_downstream) == (False, True)
    assert verdict.description == "vfr-1w has no 'challenger' version"


def test_the_champion_itself_passes_without_being_judged_again():
    same = _version("3")
    registry = AliasRegistry(same, same)
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    assert verdict.passed and verdict.description == "vfr-1w.v3 is already the champion"
    assert registry.written == {}


def test_a_skilled_first_challenger_passes_and_is_tagged_for_promotion():
    registry = AliasRegistry(_version("1"))
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    assert verdict.passed
    assert registry.written["1"][GATE_TAG] == "passed"
    assert registry.written["1"][GATE_REASON_TAG] == verdict.description
    assert verdict.figures["champion"] == "none" and verdict.figures["paired_comparison"] == "none (no champion)"
    assert verdict.figures["validation_t"] == 3.0 and verdict.figures["size_bytes"] == 1_000


def test_a_challenger_without_skill_keeps_the_champion_without_blocking_the_run():
    registry = AliasRegistry(_version("2", validation_rank_ic_t="0.4"), _version("1"))
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    assert (verdict.passed, verdict.blocks_downstream) == (False, False)
    assert "not significant" in verdict.description and "vfr-1w.v2 vs vfr-1w.v1" in verdict.description
    assert registry.written["2"][GATE_TAG] == "failed"
    assert verdict.figures["paired_comparison"] == "not recorded"


def test_a_failed_leakage_canary_blocks_downstream():
    registry = AliasRegistry(_version("2", canary_shuffled_passed="false", canary_shuffled_message="skill on noise"))
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    assert (verdict.passed, verdict.blocks_downstream) == (False, True)
    assert "FAILED: shuffled canary: skill on noise" in verdict.description


def test_the_policy_limits_apply_to_load_time_and_size():
    registry = AliasRegistry(_version("1"), load_seconds=2.5, size_bytes=10)
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy(max_load_seconds=1.0, max_size_bytes=5))
    assert not verdict.passed and verdict.figures["failed_conditions"] == 2
    assert "loads in 2.500 s of CPU (limit 1.0 s)" in verdict.description and "exceeds 5" in verdict.description


def test_the_load_limit_is_on_cpu_time_so_a_busy_machine_does_not_refuse_a_cheap_model():
    busy = AliasRegistry(_version("1"), load_seconds=0.08, wall_seconds=3.0)
    verdict = run_promotion_gate(busy, "1w", PromotionPolicy(max_load_seconds=1.0))
    assert verdict.passed, verdict.description
    assert "loads in 0.080 s of CPU (< 1.0 s)" in verdict.description
    assert (verdict.figures["load_cpu_seconds"], verdict.figures["load_wall_seconds"]) == (0.08, 3.0)


def test_missing_or_non_finite_figures_are_empty_in_the_metadata():
    registry = AliasRegistry(_version("1", validation_rank_ic="nan", validation_rank_ic_t="x"))
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    assert verdict.figures["validation_rank_ic"] is None and verdict.figures["validation_t"] is None
