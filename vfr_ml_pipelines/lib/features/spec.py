"""What every feature declares about itself (written to VFR's `ml_feature_definitions`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FEATURE_TYPES = ("technical", "fundamental", "sentiment", "macro", "options", "custom")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    feature_type: str = "technical"
    source: str = "prices"  # the raw dataset it is computed from: prices, fundamentals, news

    def __post_init__(self) -> None:
        if self.feature_type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name}: type {self.feature_type!r} is not one of {FEATURE_TYPES}")


def spec_maker(feature_type: str, default_source: str) -> Callable[..., FeatureSpec]:
    """`make(name, description, source=default_source)` for a block whose specs share a type."""

    def make(name: str, description: str, source: str = default_source) -> FeatureSpec:
        return FeatureSpec(name, description, feature_type=feature_type, source=source)

    return make
