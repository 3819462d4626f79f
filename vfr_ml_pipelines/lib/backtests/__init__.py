"""Backtests, risk and reports: the pure core of the `backtests` domain (never imports dagster).

Modules, in the order data flows through them:
* `config`: the frozen settings (strategy, rebalancing, execution price, costs) whose defaults the
  Dagster config classes take;
* `panel`: long price / score frames -> aligned (dates x symbols) arrays;
* `costs`: commission, spread, square-root impact, borrow; `capacity`;
* `engine`: TopkDropout and long-short rebalancers and the simulator (tranches, t+1 execution);
* `metrics`, `factor_metrics`, `significance`: performance, alphalens-style and Sharpe statistics;
* `report`: every strategy through the same engine, share of oracle, leak flag; `plots`;
* `var`, `stress`, `optimizer`: risk (VaR backtests, stress scenarios, constrained optimizer).

Conventions are written down in docs/backtests.md.
"""
