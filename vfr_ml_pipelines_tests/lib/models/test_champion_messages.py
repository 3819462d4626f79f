"""What a person reads about a champion change: one correct sentence with the versions that
matter, whatever the case (no champion yet, nothing changed, a first champion, a rollback)."""

from __future__ import annotations

import pytest

from vfr_ml_pipelines.lib.models.champions import ChampionChange


@pytest.mark.parametrize(
    "change, sentence",
    [
        (ChampionChange("1m", "keep", "none", None, "validation Rank IC is not significant: t = 1.25 < 2.0"),
         "vfr-1m has no champion: the challenger was not promoted (validation Rank IC is not significant: t = 1.25 < 2.0)."),
        (ChampionChange("1w", "keep", "3", "3", "the promotion gate failed."),
         "vfr-1w keeps champion v3: the challenger was not promoted (the promotion gate failed)."),
        (ChampionChange("1d", "promote", "1", "1", "already the champion"), "vfr-1d v1 is already the champion."),
        (ChampionChange("1d", "promote", "1", None, "passed the promotion gate"),
         "vfr-1d v1 is promoted to champion, the horizon's first champion (passed the promotion gate)."),
        (ChampionChange("1w", "promote", "4", "3", "passed the promotion gate"),
         "vfr-1w v4 is promoted to champion, replacing v3 (passed the promotion gate)."),
        (ChampionChange("1w", "rollback", "3", "4", "operator rollback"),
         "vfr-1w is rolled back to v3, replacing v4 (operator rollback)."),
    ],
)
def test_every_change_reads_as_one_sentence(change, sentence):
    assert change.describe() == sentence
    assert "none" not in sentence.replace("no champion", "") and "None" not in sentence
