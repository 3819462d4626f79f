"""Backtest settings: one frozen dataclass per concern, with the documented defaults that the
Dagster config classes of `defs/backtests` take as theirs (one source per default).

Units: basis points are 1e-4 of the traded (or borrowed) value; `notional` is the portfolio size
in currency, held constant through the run so that costs, participation and capacity are read at
one known size (equity growth would otherwise change the cost rate along the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vfr_ml_pipelines.lib.horizons import horizon_days

TOPK_DROPOUT = "topk_dropout"
LONG_SHORT = "long_short"
EQUAL_WEIGHT = "equal_weight"
STRATEGIES = (TOPK_DROPOUT, LONG_SHORT, EQUAL_WEIGHT)
EXECUTION_PRICES = ("open", "close")
ANNUALIZATION = 252
# Qlib's TopkDropout default holds 50 names of CSI300: a sixth of the universe
QLIB_TOPK_SHARE = 50 / 300


@dataclass(frozen=True)
class CostConfig:
    """Trading costs. Defaults describe a liquid US large-cap book traded by an institution:
    1 bp commission with a 1.0 minimum per order, 2 bp half-spread, square-root impact with
    coefficient 0.5 (cost per traded unit = 0.5 * daily volatility * sqrt(order / ADV), the
    order of magnitude of published meta-order studies), orders capped at 10 % of ADV, and
    50 bp a year to borrow shorted stock (general collateral)."""

    commission_bps: float = 1.0
    min_commission: float = 1.0
    half_spread_bps: float = 2.0
    impact_coefficient: float = 0.5
    participation_cap: float = 0.10
    borrow_bps_per_year: float = 50.0
    adv_window: int = 20
    # daily volatility used by the impact model while a symbol has fewer than 2 past returns
    fallback_daily_vol: float = 0.02

    def __post_init__(self) -> None:
        for name in ("commission_bps", "min_commission", "half_spread_bps", "impact_coefficient", "borrow_bps_per_year"):
            if getattr(self, name) < 0:
                raise ValueError(f"CostConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.participation_cap <= 1:
            raise ValueError(f"CostConfig.participation_cap must be in (0, 1], got {self.participation_cap}")
        if self.adv_window < 1:
            raise ValueError(f"CostConfig.adv_window must be >= 1, got {self.adv_window}")

    @classmethod
    def free(cls) -> CostConfig:
        """No cost at all and no participation limit (the before-cost view)."""
        return cls(commission_bps=0.0, min_commission=0.0, half_spread_bps=0.0, impact_coefficient=0.0, participation_cap=1.0, borrow_bps_per_year=0.0)


@dataclass(frozen=True)
class BacktestConfig:
    """One strategy's settings. Defaults: Qlib's TopkDropout rebalanced every session at the
    next session's open, a 10 million book, `CostConfig()` costs.

    * `topk` / `n_drop` are the book at its largest (Qlib's 50 / 5); `topk_share` is the book as
      a share of the universe (default Qlib's own ratio, 50 of CSI300's 300 names = 1/6).
      `for_universe(n)` holds min(topk, round(topk_share x n)) names (at least 1) and drops
      n_drop in proportion (at least 1 when n_drop > 0): 50 / 5 at 300 symbols and above, 8 / 1
      on the 50-symbol synthetic market. `topk_share` 1 keeps `topk` as given. The engine trades
      the config it is handed; the pipeline's backtests, risk and live record call
      `for_universe` first.

    * `rebalance_every`: sessions between rebalances (1 for `1d`, 5 for `1w`, 21 for `1m`; see
      `for_horizon`); with `overlapping_tranches`, k tranches start on k consecutive sessions,
      each with 1/k of the notional, and the daily returns of the tranches are averaged, so the
      result does not depend on the start day.
    * `execution_price`: the signal of session t trades at session t+1's `open` (default) or
      `close`; never on session t's own bar.
    * `quantile`: the share of the tradable universe in each leg of `long_short`; each leg holds
      `long_short_leg` of the capital (0.5: long 50 %, short 50 %, gross 1, dollar-neutral).
    """

    strategy: str = TOPK_DROPOUT
    topk: int = 50
    n_drop: int = 5
    topk_share: float = QLIB_TOPK_SHARE
    quantile: float = 0.2
    long_short_leg: float = 0.5
    rebalance_every: int = 1
    overlapping_tranches: bool = True
    execution_price: str = "open"
    notional: float = 10_000_000.0
    costs: CostConfig = field(default_factory=CostConfig)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"BacktestConfig.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.execution_price not in EXECUTION_PRICES:
            raise ValueError(f"BacktestConfig.execution_price must be one of {EXECUTION_PRICES}, got {self.execution_price!r}")
        if self.topk < 1 or not 0 <= self.n_drop <= self.topk:
            raise ValueError(f"BacktestConfig needs topk >= 1 and 0 <= n_drop <= topk, got topk={self.topk}, n_drop={self.n_drop}")
        if not 0 < self.topk_share <= 1:
            raise ValueError(f"BacktestConfig.topk_share must be in (0, 1], got {self.topk_share}")
        if not 0 < self.quantile <= 0.5:
            raise ValueError(f"BacktestConfig.quantile must be in (0, 0.5], got {self.quantile}")
        if self.rebalance_every < 1:
            raise ValueError(f"BacktestConfig.rebalance_every must be >= 1, got {self.rebalance_every}")
        if self.notional <= 0:
            raise ValueError(f"BacktestConfig.notional must be > 0, got {self.notional}")

    def for_horizon(self, horizon: str) -> BacktestConfig:
        """This config rebalancing at the horizon's length in sessions (`1w` -> every 5)."""
        return replace(self, rebalance_every=horizon_days(horizon))

    def for_universe(self, n_symbols: int) -> BacktestConfig:
        """This config with the book sized to a universe of `n_symbols` (class docstring)."""
        if n_symbols < 1:
            raise ValueError(f"BacktestConfig.for_universe needs at least one symbol, got {n_symbols}")
        topk = min(self.topk, max(1, round(self.topk_share * n_symbols)))
        if topk == self.topk:
            return self
        n_drop = min(topk, max(1, round(topk * self.n_drop / self.topk))) if self.n_drop else 0
        return replace(self, topk=topk, n_drop=n_drop)

    def book_rule(self, n_symbols: int) -> str:
        """The sizing rule in words, for reports: what `for_universe(n_symbols)` holds and why."""
        sized = self.for_universe(n_symbols)
        return (
            f"top {sized.topk} drop {sized.n_drop} of {n_symbols} symbols: min(topk {self.topk}, "
            f"round({self.topk_share:.4g} x {n_symbols})), n_drop in proportion to {self.n_drop} of {self.topk}"
        )

    def with_(self, **changes) -> BacktestConfig:
        return replace(self, **changes)
