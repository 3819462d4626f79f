"""The engine of the synthetic market: one pass over the sessions, vectorised across symbols.

`simulate(config, end)` runs the market from a burn-in year before `config.start` to `end`
and keeps everything in arrays of shape (sessions, symbols); `provider.py` turns them into
frames for a date range and symbol subset. docs/synthetic_market.md describes the model.

History stability: every random draw comes from its own stream, keyed by (seed, component),
drawn in time order (day-major arrays, quarter-major arrays, headline-major arrays), and the
state of day t is computed from days <= t only. So a longer run starts with exactly the
numbers of a shorter one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.special import ndtri

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.synthetic import fundamentals, text
from vfr_ml_pipelines.lib.market_data.synthetic.companies import SECTORS, Static, static_params
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig, stream

BURN_IN_SESSIONS = 252  # latent history before `start`: momentum windows, GARCH state, first filings

MARKET_DRIFT = 0.0003  # per day, times beta (about 7.5% a year)
MARKET_VOL, SECTOR_VOL = 0.0095, 0.006
# GARCH(1,1) (alpha, beta) and Student-t degrees of freedom; each keeps a finite 4th moment
MARKET_GARCH, MARKET_DF = (0.10, 0.88), 8
SECTOR_GARCH, SECTOR_DF = (0.06, 0.92), 6
IDIO_GARCH, IDIO_DF = (0.06, 0.92), 5
MAX_VARIANCE_RATIO = 25.0  # a GARCH variance never exceeds 25x its long-run level
SHOCK_CLIP = 12.0  # standardised shocks are clipped at +-12 sigma; daily returns are floored at -80%

REVERSAL_WINDOW = 5
MOMENTUM_SKIP, MOMENTUM_WINDOW = 21, 105  # idiosyncratic return from t-125 to t-21
NEWS_DECAY = 0.8  # the news drift halves in about 3 sessions
NEWS_REACTION = 0.5  # share of an event day's idiosyncratic shock that is the news itself


@dataclass
class Simulation:
    """Arrays of shape (sessions, symbols) unless noted; row `first` is `config.start`."""

    days: list[date]
    ordinals: np.ndarray  # day.toordinal() of `days`, for date lookups
    first: int
    static: Static
    close: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray
    dividend: np.ndarray
    split: np.ndarray
    total_return: np.ndarray
    oracle: dict[str, np.ndarray]
    signals: dict[str, np.ndarray]  # value score, news memory and the drift mu, for inspection
    quarters: dict[str, np.ndarray]  # (quarters, symbols) report columns, see fundamentals.statements
    news_inputs: dict[str, np.ndarray]
    config: SyntheticMarketConfig
    _news: pd.DataFrame | None = field(default=None, repr=False)
    _news_day: np.ndarray | None = field(default=None, repr=False)

    def news(self) -> tuple[pd.DataFrame, np.ndarray]:
        """All headlines and, per row, the session index they belong to (built once)."""
        if self._news is None:
            self._news, self._news_day = _build_news(self)
        return self._news, self._news_day


def _std_t(rng: np.random.Generator, df: int, size) -> np.ndarray:
    return np.clip(rng.standard_t(df, size=size) / np.sqrt(df / (df - 2.0)), -SHOCK_CLIP, SHOCK_CLIP)


def sessions(config: SyntheticMarketConfig, end: date) -> tuple[list[date], int]:
    """Burn-in sessions before `start` (as many of BURN_IN_SESSIONS as the calendar has)
    followed by the sessions from `start` to `end`."""
    before = calendar.trading_days(config.start - timedelta(days=400), config.start - timedelta(days=1))
    burn = before[-BURN_IN_SESSIONS:]
    return burn + calendar.trading_days(config.start, end), len(burn)


def _next_sessions(last: date, count: int) -> list[date]:
    days = calendar.trading_days(last + timedelta(days=1), last + timedelta(days=2 * count + 10))
    while len(days) < count:  # past the calendar's end: weekdays stand in
        nxt = (days[-1] if days else last) + timedelta(days=1)
        while nxt.weekday() >= 5:
            nxt += timedelta(days=1)
        days.append(nxt)
    return days[:count]


def simulate(config: SyntheticMarketConfig, end: date) -> Simulation:
    engine = _Engine(config, end)
    for t in range(engine.n_days):
        engine.step(t)
    return engine.result()


class _Engine:
    """The state of the market at the close of the last simulated session. `step(t)` moves
    it one session on: shocks, returns, corporate actions, the drift for tomorrow, and the
    quarter's report when t ends a quarter."""

    def __init__(self, config: SyntheticMarketConfig, end: date):
        self.config = config
        self.st = st = static_params(config)
        self.days, self.first = sessions(config, end)
        self.n_days, n = len(self.days), config.n_symbols
        self.future = _next_sessions(self.days[-1], max(HORIZON_DAYS.values()) + 1)

        # regimes: the shock scale of each session, and the signal scale of mu[t], which
        # drives the return of the session after t
        shifted = np.array([config.shift_start is not None and d >= config.shift_start for d in self.days + self.future])
        self.vol_scale = np.where(shifted[: self.n_days], config.shift_vol_multiplier, 1.0)
        self.signal_scale = np.where(shifted[1:], config.shift_signal_multiplier, 1.0)  # index t -> session t+1

        self.z_market = _std_t(stream(config, 2), MARKET_DF, self.n_days)
        self.z_sector = _std_t(stream(config, 3), SECTOR_DF, (self.n_days, len(SECTORS)))
        self.z_idio = _std_t(stream(config, 4), IDIO_DF, (self.n_days, n))
        self.event = stream(config, 5).random((self.n_days, n)) < st.event_rate
        self.surprise = stream(config, 6).standard_normal((self.n_days, n))
        self.split_draw = stream(config, 9).random((self.n_days, n, 2))
        self.ex_day, self.years = _ex_dividend_days(st, self.days)
        n_quarters = fundamentals.count_quarters(self.days, self.future[0])
        self.quarters = fundamentals.quarter_schedule(
            self.days, self.future[0],
            stream(config, 11).random((n_quarters, n)), stream(config, 10).standard_normal((n_quarters, n, 8)),
        )

        # GARCH(1,1) variances start at, and revert to, their long-run levels
        self.h_m, self.h_s, self.h_i = MARKET_VOL**2, np.full(len(SECTORS), SECTOR_VOL**2), st.idio_vol**2
        self.w_m = (1 - sum(MARKET_GARCH)) * MARKET_VOL**2
        self.w_s = (1 - sum(SECTOR_GARCH)) * SECTOR_VOL**2
        self.w_i = (1 - sum(IDIO_GARCH)) * st.idio_vol**2
        self.close = st.price0.copy()
        self.shares = st.shares0.copy()
        self.book = st.book_to_market0 * st.price0 * st.shares0
        self.visible_book = np.full(n, np.nan)  # book value of the latest filed report
        self.dps = np.zeros(n)
        self.dps_year = np.zeros(n, dtype=np.int64)
        self.paid_in_quarter = np.zeros(n)
        self.profit_state = np.zeros(n)
        self.news_memory = np.zeros(n)
        self.value = np.zeros(n)
        self.mu = np.zeros(n)
        self.cum_idio = np.zeros((self.n_days + 1, n))  # cum_idio[t + 1]: idiosyncratic shocks up to t
        self.cum_noise = np.zeros((self.n_days + 1, n))  # the same, without the part caused by news
        self.quarter = 0
        self.quarter_start = 0
        names = ("close", "ret", "dividend", "split", "shock", "idio_sigma", "value", "news", "mu")
        self.out = {k: np.empty((self.n_days, n)) for k in names}
        self.market_sigma = np.empty(self.n_days)
        self.sector_sigma = np.empty((self.n_days, len(SECTORS)))

    def step(self, t: int) -> None:
        for qi, who in self.quarters["filings"].get(t, ()):
            self.visible_book[who] = self.quarters["book"][qi, who]
        ret, z_total = self._returns(t)
        close, realized, div, ratio = self._corporate_actions(t, ret)
        self._drift(t, close)
        if self.quarter < len(self.quarters["row"]) and self.quarters["row"][self.quarter] == t:
            self._close_quarter(t)
        out = self.out
        out["close"][t], out["ret"][t], out["dividend"][t], out["split"][t] = close, realized, div, ratio
        out["shock"][t], out["value"][t], out["news"][t], out["mu"][t] = z_total, self.value, self.news_memory, self.mu
        self.close = close

    def _returns(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Today's total return before corporate actions; GARCH variances move on."""
        st, rho = self.st, NEWS_REACTION
        sm, ss, si = np.sqrt(self.h_m), np.sqrt(self.h_s), np.sqrt(self.h_i)
        self.market_sigma[t], self.sector_sigma[t], self.out["idio_sigma"][t] = sm, ss, si
        ev = self.event[t]
        z_noise = np.where(ev, np.sqrt(1 - rho**2), 1.0) * self.z_idio[t]
        z_total = np.where(ev, rho * self.surprise[t], 0.0) + z_noise
        m, s, e = sm * self.z_market[t], ss * self.z_sector[t], si * z_total
        vs = self.vol_scale[t]
        ret = np.maximum(st.beta * MARKET_DRIFT + self.mu + vs * (st.beta * m + s[st.sector_idx] + e), -0.8)
        self.cum_idio[t + 1] = self.cum_idio[t] + vs * e
        self.cum_noise[t + 1] = self.cum_noise[t] + vs * si * z_noise
        self.news_memory = NEWS_DECAY * self.news_memory + np.where(ev, self.surprise[t], 0.0)
        # the regime's scale stays out of the GARCH state: a shift moves the level, not the dynamics
        (a_m, b_m), (a_s, b_s), (a_i, b_i) = MARKET_GARCH, SECTOR_GARCH, IDIO_GARCH
        self.h_m = min(self.w_m + a_m * m * m + b_m * self.h_m, MAX_VARIANCE_RATIO * MARKET_VOL**2)
        self.h_s = np.minimum(self.w_s + a_s * s * s + b_s * self.h_s, MAX_VARIANCE_RATIO * SECTOR_VOL**2)
        self.h_i = np.minimum(self.w_i + a_i * e * e + b_i * self.h_i, MAX_VARIANCE_RATIO * st.idio_vol**2)
        return ret, z_total

    def _corporate_actions(self, t: int, ret: np.ndarray) -> tuple[np.ndarray, ...]:
        """Raw close, realised total return, dividend and split ratio of the day. Dividends
        reset once a year to the target yield; a split comes once the raw price has run
        above the symbol's comfort level."""
        st, close_prev = self.st, self.close
        ex = self.ex_day[t]
        reset = ex & (self.dps_year != self.years[t])
        self.dps = np.where(reset, np.maximum(np.round(st.dividend_yield * close_prev / 4, 2), 0.01), self.dps)
        self.dps_year = np.where(reset, self.years[t], self.dps_year)
        div = np.where(ex, self.dps, 0.0)
        draw = self.split_draw[t]
        do_split = (close_prev > st.split_threshold) & ~ex & (draw[:, 0] < 0.03)
        ratio = np.where(do_split, np.where(draw[:, 1] < 0.6, 2.0, np.where(draw[:, 1] < 0.8, 3.0, 1.5)), 1.0)
        close = _round_price((close_prev * (1 + ret) - div) / ratio)
        realized = (close * ratio + div) / close_prev - 1
        self.paid_in_quarter += div * self.shares
        self.shares = self.shares * ratio
        self.dps = self.dps / ratio
        return close, realized, div, ratio

    def _drift(self, t: int, close: np.ndarray) -> None:
        """mu[t]: the planted expected return of tomorrow, from what is known at today's close."""
        cfg = self.config
        self.value = _value_score(self.visible_book, close, self.shares)
        reversal = self.cum_noise[t + 1] - self.cum_noise[max(t + 1 - REVERSAL_WINDOW, 0)]
        momentum = _momentum(self.cum_idio, t, self.st.idio_vol)
        self.mu = self.signal_scale[t] * (
            -cfg.reversal_strength * reversal
            + cfg.momentum_strength * momentum
            + cfg.news_strength * self.news_memory
            + cfg.value_strength * self.value
        )

    def _close_quarter(self, t: int) -> None:
        """The quarter's report: profit follows the firm's return over the quarter (with
        noise), the book grows by retained earnings."""
        q, quarters = self.quarter, self.quarters
        idio_quarter = self.cum_idio[t + 1] - self.cum_idio[self.quarter_start]
        self.profit_state = 0.5 * self.profit_state + 0.006 * quarters["noise"][q, :, 0] + 0.04 * idio_quarter
        net_income = (self.st.roe / 4 + self.profit_state) * self.book
        self.book = np.maximum(self.book + net_income - self.paid_in_quarter, 0.3 * self.book)  # floor: a capital raise
        quarters["book"][q], quarters["net_income"][q] = self.book, net_income
        quarters["dividends_paid"][q], quarters["shares"][q] = self.paid_in_quarter, self.shares
        self.paid_in_quarter = np.zeros(len(self.book))
        self.quarter_start = t + 1
        self.quarter += 1

    def result(self) -> Simulation:
        out = self.out
        bars = _bars(self.config, self.st, out, self.market_sigma, self.sector_sigma, self.vol_scale, self.n_days)
        return Simulation(
            days=self.days, ordinals=np.array([d.toordinal() for d in self.days]), first=self.first, static=self.st,
            close=out["close"], open=bars["open"], high=bars["high"], low=bars["low"], volume=bars["volume"],
            dividend=out["dividend"], split=out["split"], total_return=out["ret"],
            oracle=_oracle(self.config, self.st, out, self.cum_noise, self.cum_idio, self.signal_scale),
            signals={"value": out["value"], "news": out["news"], "mu": out["mu"]},
            quarters=fundamentals.statements(self.st, self.quarters),
            news_inputs={"event": self.event, "surprise": self.surprise, "shock": out["shock"]},
            config=self.config,
        )


def _ex_dividend_days(st: Static, days: list[date]) -> tuple[np.ndarray, np.ndarray]:
    """(sessions, symbols) mask of ex-dividend days: payers go ex on a fixed session of
    the month, in a fixed month of each quarter; and the year of each session."""
    months = np.array([d.month for d in days])
    rows = np.arange(len(days))
    new_month = np.r_[True, months[1:] != months[:-1]]
    session_of_month = rows - np.maximum.accumulate(np.where(new_month, rows, 0))
    ex_day = (
        st.payer[None, :]
        & (((months[:, None] - 1) % 3) == st.ex_phase[None, :])
        & (session_of_month[:, None] == st.ex_session[None, :])
    )
    return ex_day, np.array([d.year for d in days])


def _round_price(x: np.ndarray) -> np.ndarray:
    # cents above a dollar, 1/100 cent below (as exchanges quote sub-dollar stocks)
    return np.where(x >= 1.0, np.round(x, 2), np.maximum(np.round(x, 4), 0.0001))


def _value_score(visible_book: np.ndarray, close: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score of log book-to-market (latest filed book over today's market
    value), clipped at +-3; 0 for a symbol with no filed report yet."""
    has = np.isfinite(visible_book) & (visible_book > 0)
    score = np.zeros(len(close))
    if has.sum() >= 3:
        x = np.log(visible_book[has] / (close[has] * shares[has]))
        sd = x.std()
        if sd > 0:
            score[has] = np.clip((x - x.mean()) / sd, -3.0, 3.0)
    return score


def _momentum(cum_idio: np.ndarray, t: int, idio_vol: np.ndarray) -> np.ndarray:
    """Idiosyncratic return from t-125 to t-21 in units of its standard deviation, clipped
    at +-3. At t+k (k <= 20) the window still ends on or before t: known today."""
    hi = t + 1 - MOMENTUM_SKIP
    if hi <= 0:
        return np.zeros(len(idio_vol))
    lo = max(hi - MOMENTUM_WINDOW, 0)
    return np.clip((cum_idio[hi] - cum_idio[lo]) / (idio_vol * np.sqrt(MOMENTUM_WINDOW)), -3.0, 3.0)


def _bars(config, st: Static, out: dict, market_sigma, sector_sigma, vol_scale, n_days: int) -> dict[str, np.ndarray]:
    """Open, high, low and volume around the simulated close. A part of the day's move
    happens overnight; the range and the volume grow with the day's volatility and shock."""
    n = config.n_symbols
    noise = stream(config, 7).standard_normal((n_days, n, 4))
    close, ret = out["close"], out["ret"]
    sigma = vol_scale[:, None] * np.sqrt(
        (st.beta[None, :] * market_sigma[:, None]) ** 2 + sector_sigma[:, st.sector_idx] ** 2 + out["idio_sigma"] ** 2
    )
    reference = close / (1 + ret)  # yesterday's close in today's terms (after a split or dividend)
    log_move = np.log1p(ret)
    open_ = _round_price(reference * np.exp(0.3 * log_move + 0.35 * sigma * noise[:, :, 0]))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    step = np.where(top >= 1.0, 0.01, 0.0001)
    high = np.ceil(top * np.exp(0.45 * sigma * np.abs(noise[:, :, 1])) / step - 1e-9) * step
    high = np.maximum(np.round(high, 4), top)
    step = np.where(bottom >= 1.0, 0.01, 0.0001)
    low = np.floor(bottom * np.exp(-0.45 * sigma * np.abs(noise[:, :, 2])) / step + 1e-9) * step
    low = np.clip(np.round(low, 4), 0.0001, bottom)

    shares = st.shares0[None, :] * np.cumprod(out["split"], axis=0)
    calm = np.sqrt(st.beta**2 * MARKET_VOL**2 + SECTOR_VOL**2 + st.idio_vol**2)
    activity = (0.55 + 0.45 * np.abs(out["shock"])) * np.sqrt(sigma / calm[None, :])
    volume = shares * st.turnover[None, :] * activity * np.exp(0.3 * noise[:, :, 3] - 0.045)
    return {"open": open_, "high": high, "low": low, "volume": np.maximum(np.round(volume), 100).astype(np.int64)}


def _oracle(config, st: Static, out: dict, cum_noise, cum_idio, signal_scale) -> dict[str, np.ndarray]:
    """Expected return from the close of t to the close of t+h: the sum over k < h of
    E[return of t+1+k | close of t] = beta * market drift + E[mu(t+k) | t], with
      reversal: only the non-news shocks up to t still inside the 5-day window at t+k,
      momentum: exact (its window ends 21 sessions back, so at t+k <= t+20 it is known),
      news: decays as NEWS_DECAY**k (future news has mean zero),
      value: held at today's score (its drift over a month is small; the one approximation),
    each scaled by the regime in force on that day. Compounding is ignored (sums of
    simple returns)."""
    n_days, n = out["mu"].shape
    t = np.arange(n_days)
    result = {}
    for name, h in HORIZON_DAYS.items():
        total = np.zeros((n_days, n))
        for k in range(h):
            scale = signal_scale[t + k][:, None]
            lo = np.maximum(t + k + 1 - REVERSAL_WINDOW, 0)
            reversal = np.where(k < REVERSAL_WINDOW, cum_noise[t + 1] - cum_noise[np.minimum(lo, t + 1)], 0.0)
            hi = t + k + 1 - MOMENTUM_SKIP
            momentum = np.zeros((n_days, n))
            ok = hi > 0
            hi_ok = hi[ok]
            lo_m = np.maximum(hi_ok - MOMENTUM_WINDOW, 0)
            momentum[ok] = np.clip(
                (cum_idio[hi_ok] - cum_idio[lo_m]) / (st.idio_vol * np.sqrt(MOMENTUM_WINDOW)), -3.0, 3.0
            )
            drift = (
                -config.reversal_strength * reversal
                + config.momentum_strength * momentum
                + config.news_strength * NEWS_DECAY**k * out["news"]
                + config.value_strength * out["value"]
            )
            total += st.beta[None, :] * MARKET_DRIFT + scale * drift
        result[name] = total
    return result


def _build_news(sim: Simulation) -> tuple[pd.DataFrame, np.ndarray]:
    """Headlines per (session, symbol): event news on the days a news surprise hits (tone
    read off the surprise, with noise), routine announcements, and market-move stories on
    days of large moves (tone = the move's sign). More headlines on big-move days."""
    cfg, st = sim.config, sim.static
    event, surprise, shock = sim.news_inputs["event"], sim.news_inputs["surprise"], sim.news_inputs["shock"]
    n_days, n = event.shape
    big = np.abs(shock)
    n_event = np.where(event, 1 + stream(cfg, 12).poisson(0.3 + 0.3 * big), 0)
    n_other = stream(cfg, 15).poisson(st.routine_rate[None, :] * (0.7 + 0.3 * big**2))
    counts = (n_event + n_other).ravel()
    cell = np.repeat(np.arange(n_days * n), counts)
    day, sym = cell // n, cell % n
    total = len(cell)
    # headline index within its cell: event headlines first, then the others
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    j = np.arange(total) - starts
    is_event = j < n_event.ravel()[cell]
    draws = stream(cfg, 13).random((total, 5))

    tone_latent = surprise.ravel()[cell] + 0.6 * ndtri(np.clip(draws[:, 3], 1e-12, 1 - 1e-12))
    event_tone = np.where(tone_latent > 0.3, 0, np.where(tone_latent < -0.3, 1, 2))
    is_move = ~is_event & (big.ravel()[cell] > 2.0) & (draws[:, 4] < 0.35)
    move_tone = np.where(shock.ravel()[cell] > 0, 0, 1)
    kind = np.where(is_event, 0, np.where(is_move, 2, 1))
    tone = np.where(is_event, event_tone, np.where(is_move, move_tone, 2))

    days = sim.days
    prev = [calendar.previous_trading_day(days[0])] + days[:-1]
    early = _early_closes()
    frame = text.build_news(
        day=day, symbol_index=sym, kind=kind, tone=tone, draws=draws[:, :3], sessions=days, previous_session=prev,
        session_close_hour=text.session_close_hours(days, early), symbols=st.symbols, names=st.names,
    )
    return frame, day


def _early_closes() -> frozenset[date]:
    """Sessions on which the NYSE closes at 13:00 (news of those days stops at the close)."""
    return calendar.early_closes()
