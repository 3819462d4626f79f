"""Market data from a folder of per-symbol CSV files, e.g. exports from a data vendor.

Layout (docs/providers.md has examples):

    <root>/prices/{SYMBOL}.csv        Date,Open,High,Low,Close,Adj Close,Volume[,Dividend,Split Ratio]
    <root>/universe.csv               symbol,name,sector,listed_on[,delisted_on]        (optional)
    <root>/fundamentals/{SYMBOL}.csv  the FUNDAMENTAL_COLUMNS of schema.py              (optional)
    <root>/news/{SYMBOL}.csv          published_at,headline,source,url                  (optional)

The provider only rejects what makes a whole file unusable (an invalid ticker as a file
name, an empty file, missing columns, out-of-order dates). Row-level problems are left in
the returned frames, typed as far as possible with the offending value kept as text, so that
`validation.py` rejects and quarantines them with the reason like for any other provider.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.corporate_actions import derive_events_frame
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderError
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    FUNDAMENTAL_VALUE_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)
from vfr_ml_pipelines.lib.market_data.validation import SchemaError, is_missing, parse_day, parse_timestamp

# Vendor header (compared case-insensitively, "_" read as " ") -> schema column
PRICE_HEADER = {
    "date": "trade_date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "volume": "volume",
    "dividend": "dividend",
    "split ratio": "split_ratio",
}
PRICE_REQUIRED = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
# vendors leave event columns blank on days without an event
EVENT_DEFAULTS = {"dividend": 0.0, "split_ratio": 1.0}
UNIVERSE_REQUIRED = ("symbol", "name", "sector", "listed_on")
NEWS_FILE_COLUMNS = ("published_at", "headline", "source", "url")
DEFAULT_SECTOR = "Unknown"
# Without universe.csv: more than this many sessions without a bar ends a listing. Bars
# before such a gap belong to an earlier listing of the ticker (another company that used
# it, or stray bars before a spin-off's regular trading) and are quarantined.
RELISTING_GAP_SESSIONS = 20
CONFIRMED_MOVES_FILE = "confirmed_moves.csv"


class CsvMarketDataProvider(MarketDataProvider):
    name = "csv"

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ProviderError(f"csv: data folder {self.root} does not exist or is not a folder")

    def __repr__(self) -> str:
        return f"CsvMarketDataProvider({str(self.root)!r})"

    # --- paths: a symbol is checked before it becomes part of any path -------------------

    def _path(self, folder: str, symbol: object) -> Path:
        if not is_valid_ticker(symbol):
            shown = repr(symbol) if not isinstance(symbol, str) or len(symbol) <= 40 else repr(symbol[:40] + "...")
            raise ProviderError(
                f"csv: {shown} is not a valid ticker (1-10 upper-case letters or digits, optional .X or -X "
                f"class suffix); refusing to build a path from it",
                symbol=symbol if isinstance(symbol, str) else None, field="symbol",
            )
        path = self.root / folder / f"{symbol}.csv"
        # belt and braces: the pattern admits no separators, but never leave the folder
        if path.resolve().parent != (self.root / folder).resolve():
            raise ProviderError(f"csv: {symbol!r} resolves outside {self.root / folder}", symbol=str(symbol), field="symbol")
        return path

    # --- the interface --------------------------------------------------------------------

    def universe(self, as_of: date) -> pd.DataFrame:
        path = self.root / "universe.csv"
        frame = self._universe_file(path) if path.exists() else self._universe_from_price_files(as_of)
        listed = frame["listed_on"].map(lambda v: v if isinstance(v, date) else None)
        # rows whose dates did not parse stay in, so that validation quarantines them
        # delisted symbols stay: a backfill needs them for the sessions they were listed
        keep = [on is None or on <= as_of for on in listed]
        return frame[keep].reset_index(drop=True)

    def prices(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        paths = [(symbol, self._path("prices", symbol)) for symbol in symbols]
        frames = []
        for symbol, path in paths:
            if not path.exists():
                raise ProviderError(f"csv: no price file {path} for symbol {symbol}", symbol=symbol)
            frames.append(self._price_file(path, symbol, start, end))
        return _concat(frames, PRICE_COLUMNS)

    def fundamentals(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        frames = []
        for symbol in symbols:
            path = self._path("fundamentals", symbol)
            if path.exists():
                frames.append(self._fundamentals_file(path, symbol, start, end))
        return _concat(frames, FUNDAMENTAL_COLUMNS)

    def news(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        frames = []
        for symbol in symbols:
            path = self._path("news", symbol)
            if path.exists():
                frames.append(self._news_file(path, symbol, start, end))
        return _concat(frames, NEWS_COLUMNS)

    def confirmed_moves(self) -> set[tuple[str, date]]:
        """`<root>/confirmed_moves.csv` (`symbol,date`, optional): big moves the user has
        checked and confirms as genuine, kept whatever the jump screen concludes."""
        path = self.root / CONFIRMED_MOVES_FILE
        if not path.exists():
            return set()
        header, rows = _read(path, None, allow_no_rows=True)
        index = _require_columns(path, None, header, ("symbol", "date"))
        confirmed = set()
        for line, row in rows:
            symbol, day = row[index["symbol"]].strip(), _day_or_text(row[index["date"]])
            if not is_valid_ticker(symbol) or not isinstance(day, date):
                raise ProviderError(
                    f"csv: {path} line {line}: expected a ticker and an ISO date, got {row[index['symbol']]!r}, "
                    f"{row[index['date']]!r}", symbol=symbol or None, field="symbol" if not is_valid_ticker(symbol) else "date",
                )
            confirmed.add((symbol, day))
        return confirmed

    # --- files ----------------------------------------------------------------------------

    def _price_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = _read(path, symbol, allow_no_rows=False)
        columns = _map_price_header(path, symbol, header)
        raw = {column: [row[i] for _, row in rows] for i, column in columns.items()}
        days = [_day_or_text(v) for v in raw["trade_date"]]
        _require_ascending(path, symbol, [line for line, _ in rows], days)

        frame = pd.DataFrame({"symbol": symbol, "trade_date": pd.Series(days, dtype=object)})
        for column in ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio"):
            if column in raw:
                frame[column] = _numbers(raw[column], default=EVENT_DEFAULTS.get(column))
            else:
                frame[column] = EVENT_DEFAULTS[column]
        frame = frame[list(PRICE_COLUMNS)]
        if "dividend" not in raw and "split_ratio" not in raw:
            # no event columns: the events are what the vendor's Adj Close implies, derived
            # over the whole file (an ex-date needs the bar before it) within each listing
            frame = _derive_per_listing(frame, days)
        return _in_range(frame, days, start, end)

    def _universe_file(self, path: Path) -> pd.DataFrame:
        header, rows = _read(path, None, allow_no_rows=False)
        index = _require_columns(path, None, header, UNIVERSE_REQUIRED, optional=("delisted_on",))
        data = {c: [row[i] if i is not None else "" for _, row in rows] for c, i in index.items()}
        return pd.DataFrame(
            {
                "symbol": [v.strip() for v in data["symbol"]],
                "name": [v.strip() for v in data["name"]],
                "sector": [v.strip() for v in data["sector"]],
                "listed_on": pd.Series([_day_or_text(v) for v in data["listed_on"]], dtype=object),
                "delisted_on": pd.Series([_day_or_text(v) for v in data["delisted_on"]], dtype=object),
            },
            columns=list(UNIVERSE_COLUMNS),
        )

    def _universe_from_price_files(self, as_of: date) -> pd.DataFrame:
        """One row per price file. The listing starts at the first bar after the file's last
        gap of more than RELISTING_GAP_SESSIONS sessions. A file that ends before both
        `as_of` and the export's last day (the latest bar of any file) is a delisting: the
        symbol leaves the universe the session after its last bar. A file that merely stops
        with the whole export (a stale export) is not a delisting."""
        folder = self.root / "prices"
        if not folder.is_dir():
            raise ProviderError(f"csv: neither {self.root / 'universe.csv'} nor a prices/ folder in {self.root}")
        records = []
        spans: dict[str, tuple[object, date | None]] = {}
        for file in sorted(folder.glob("*.csv")):
            symbol = file.stem
            listed_on: object = None
            last: date | None = None
            if is_valid_ticker(symbol):
                days = self._file_days(symbol)
                listed_on = listing_start(days) if days else None
                last = days[-1] if days else None  # no parseable date: validation rejects the row
            # a file name that is no ticker is listed (never opened) so that it gets quarantined
            spans[symbol] = (listed_on, last)
        ends = [last for _, last in spans.values() if last is not None]
        export_end = min(max(ends), as_of) if ends else None
        for symbol, (listed_on, last) in spans.items():
            delisted_on = None
            if last is not None and export_end is not None and last < export_end:
                delisted_on = calendar.next_trading_day(last)
            records.append(
                {"symbol": symbol, "name": symbol, "sector": DEFAULT_SECTOR, "listed_on": listed_on, "delisted_on": delisted_on}
            )
        return pd.DataFrame.from_records(records, columns=list(UNIVERSE_COLUMNS)).astype(object)

    def _file_days(self, symbol: str) -> list[date]:
        """The parseable dates of a price file, ascending (checked)."""
        path = self._path("prices", symbol)
        header, rows = _read(path, symbol, allow_no_rows=False)
        date_index = next(i for i, c in _map_price_header(path, symbol, header).items() if c == "trade_date")
        parsed = [_day_or_text(row[date_index]) for _, row in rows]
        _require_ascending(path, symbol, [line for line, _ in rows], parsed)
        return sorted({d for d in parsed if isinstance(d, date)})

    def _fundamentals_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = _read(path, symbol, allow_no_rows=True)
        wanted = tuple(c for c in FUNDAMENTAL_COLUMNS if c != "symbol")
        index = _require_columns(path, symbol, header, wanted, optional=("symbol",))
        data = {c: [row[i] if i is not None else "" for _, row in rows] for c, i in index.items()}
        for (line, _), value in zip(rows, data["symbol"]):
            if value.strip() and value.strip() != symbol:
                raise ProviderError(
                    f"csv: {path} line {line} has symbol {value.strip()!r}, but the file is for {symbol}",
                    symbol=symbol, field="symbol",
                )
        filing = [_day_or_text(v) for v in data["filing_date"]]
        frame = pd.DataFrame(
            {
                "symbol": [symbol] * len(rows),
                "period_end": pd.Series([_day_or_text(v) for v in data["period_end"]], dtype=object),
                "filing_date": pd.Series(filing, dtype=object),
                "fiscal_period": [v.strip() for v in data["fiscal_period"]],
                **{c: _numbers(data[c]) for c in FUNDAMENTAL_VALUE_COLUMNS},
            },
            columns=list(FUNDAMENTAL_COLUMNS),
        )
        return _in_range(frame, filing, start, end)

    def _news_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = _read(path, symbol, allow_no_rows=True)
        index = _require_columns(path, symbol, header, NEWS_FILE_COLUMNS)
        data = {c: [row[i] for _, row in rows] for c, i in index.items()}
        stamps = [_aware_or_text(v) for v in data["published_at"]]
        sessions: list[date | None] = []
        for stamp in stamps:
            try:
                sessions.append(calendar.session_of(stamp) if isinstance(stamp, pd.Timestamp) else None)
            except Exception:  # outside the calendar: kept, and validation says so
                sessions.append(None)
        frame = pd.DataFrame(
            {
                "symbol": [symbol] * len(rows),
                "published_at": pd.Series(stamps, dtype=object),
                "headline": data["headline"],
                "source": data["source"],
                "url": data["url"],
            },
            columns=list(NEWS_COLUMNS),
        )
        return _in_range(frame, sessions, start, end)


# --- helpers -------------------------------------------------------------------------------


def _gap_sessions(before: date, after: date) -> int:
    """Sessions strictly between two bars' days."""
    return max(0, len(calendar.trading_days(before, after)) - 2)


def listing_start(days: list[date]) -> date:
    """The first day of the last listing in ascending `days`: after the last gap of more
    than RELISTING_GAP_SESSIONS sessions without a bar."""
    start = days[0]
    for before, after in zip(days, days[1:]):
        if (after - before).days > RELISTING_GAP_SESSIONS and _gap_sessions(before, after) > RELISTING_GAP_SESSIONS:
            start = after
    return start


def _derive_per_listing(frame: pd.DataFrame, days: list[object]) -> pd.DataFrame:
    """derive_events_frame on each listing of the file (split at relisting gaps), so that no
    event is read from the step between two listings."""
    parsed = sorted({d for d in days if isinstance(d, date)})
    if not parsed:
        return frame
    start = listing_start(parsed)
    listing = pd.Series([isinstance(d, date) and d >= start for d in days], index=frame.index)
    earlier = frame[~listing].assign(symbol=lambda f: f["symbol"].astype(str) + "\0earlier")
    derived = pd.concat([derive_events_frame(earlier), derive_events_frame(frame[listing])]).sort_index()
    derived["symbol"] = frame["symbol"]
    return derived


def _read(
    path: Path, symbol: str | None, *, allow_no_rows: bool, max_rows: int | None = None,
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of each non-blank data row. Short rows are padded
    with blanks (validation rejects the missing values); a row longer than the header means
    the file is not the format it claims to be."""
    about = f" (symbol {symbol})" if symbol else ""
    if path.stat().st_size == 0:
        raise SchemaError(f"{path}: the file is empty{about}", source=str(path), symbol=symbol)
    rows: list[tuple[int, list[str]]] = []
    # utf-8-sig: spreadsheet exports often start with a byte-order mark
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header: list[str] | None = None
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                continue
            if len(fields) > len(header):
                raise SchemaError(
                    f"{path}: line {reader.line_num} has {len(fields)} fields but the header has {len(header)}{about}",
                    source=str(path), symbol=symbol,
                )
            rows.append((reader.line_num, fields + [""] * (len(header) - len(fields))))
            if max_rows is not None and len(rows) >= max_rows:
                break
    if header is None:
        raise SchemaError(f"{path}: the file is empty{about}", source=str(path), symbol=symbol)
    if not rows and not allow_no_rows:
        raise SchemaError(f"{path}: the file has a header but no rows{about}", source=str(path), symbol=symbol)
    return header, rows


def _require_columns(
    path: Path, symbol: str | None, header: list[str], required: Sequence[str], optional: Sequence[str] = (),
) -> dict[str, int | None]:
    positions = {h.lower(): i for i, h in enumerate(header)}
    missing = [c for c in required if c.lower() not in positions]
    if missing:
        about = f" (symbol {symbol})" if symbol else ""
        raise SchemaError(
            f"{path}: missing columns {', '.join(missing)}{about}; the header is {','.join(header)}",
            source=str(path), symbol=symbol, missing=missing,
        )
    return {c: positions.get(c.lower()) for c in (*required, *optional)}


def _map_price_header(path: Path, symbol: str, header: list[str]) -> dict[int, str]:
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        column = PRICE_HEADER.get(name.lower().replace("_", " ").strip())
        if column is None:
            continue  # extra vendor columns (e.g. "Currency") are ignored
        if column in columns.values():
            raise SchemaError(f"{path}: column {name!r} appears twice (symbol {symbol})", source=str(path), symbol=symbol)
        columns[i] = column
    present = set(columns.values())
    missing = [name for name in PRICE_REQUIRED if PRICE_HEADER[name.lower()] not in present]
    if missing:
        raise SchemaError(
            f"{path}: missing columns {', '.join(missing)} (symbol {symbol}); expected "
            f"{','.join(PRICE_REQUIRED)}[,Dividend,Split Ratio], the header is {','.join(header)}",
            source=str(path), symbol=symbol, missing=missing,
        )
    return columns


def _require_ascending(path: Path, symbol: str, lines: list[int], days: list[object]) -> None:
    previous: tuple[int, date] | None = None
    for line, day in zip(lines, days):
        if not isinstance(day, date):
            continue
        if previous is not None and day < previous[1]:
            raise ProviderError(
                f"csv: {path}: dates are not ascending: line {line} has {day} after {previous[1]} on line "
                f"{previous[0]} (vendor exports are sorted; the file is corrupt or two exports were concatenated)",
                symbol=symbol, day=day, field="trade_date",
            )
        previous = (line, day)


def _day_or_text(value: str) -> object:
    try:
        return parse_day(value)
    except ValueError:
        return value


def _aware_or_text(value: str) -> object:
    """A tz-aware UTC timestamp, or the text itself when it is unparseable or naive
    (validation rejects both and shows the original text)."""
    try:
        stamp = parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return value
    if stamp is None or stamp.tzinfo is None:
        return value if stamp is not None else None
    return stamp.tz_convert("UTC")


def _numbers(values: list[str], default: float | None = None) -> pd.Series:
    """float64 if every value parses; otherwise an object column in which the values that
    do not parse stay as text."""
    out: list[object] = []
    clean = True
    for value in values:
        if is_missing(value):
            out.append(np.nan if default is None else default)
            continue
        try:
            # no thousands-separator stripping: "10,5" may be a European decimal, so it is rejected
            out.append(float(value))
        except ValueError:
            out.append(value)
            clean = False
    return pd.Series(out, dtype="float64" if clean else object)


def _in_range(frame: pd.DataFrame, days: list[object], start: date, end: date) -> pd.DataFrame:
    # a row whose day could not be read is kept: validation rejects it with the reason
    keep = [not isinstance(d, date) or start <= d <= end for d in days]
    return frame[keep].reset_index(drop=True)


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[list(columns)]
