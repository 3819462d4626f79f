"""Market data from a folder of per-symbol CSV files, e.g. exports from a data vendor.

Layout (docs/providers.md has examples):

    <root>/prices/{SYMBOL}.csv        Date,Open,High,Low,Close,Adj Close,Volume[,Dividend,Split Ratio]
    <root>/universe.csv               symbol,name,sector,listed_on[,delisted_on]        (optional)
    <root>/fundamentals/{SYMBOL}.csv  the FUNDAMENTAL_COLUMNS of schema.py              (optional)
    <root>/news/{SYMBOL}.csv          published_at,headline,source,url                  (optional)

Files are UTF-8 text; a UTF-8/UTF-16/UTF-32 byte-order mark is honoured and a gzip file
(recognised by its magic bytes, whatever its name) is decompressed. Anything else that does
not decode (Latin-1, binary) is refused naming the file and the byte offset. Reading a file
is `csv_files.py`, mapping its columns and values to the schema's `csv_columns.py`.

The provider only rejects what makes a whole file unusable (an invalid ticker as a file
name, an empty or undecodable file, missing columns, out-of-order dates, no readable date).
`prices()` and friends raise on the first such file; `load_prices()` and friends (what the
assets call) set that symbol aside with the reason and go on with the others. Row-level
problems are left in the returned frames, typed as far as possible with the offending value
kept as text, so that `validation.py` rejects and quarantines them with the reason like for
any other provider.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.corporate_actions import derive_events_frame
from vfr_ml_pipelines.lib.market_data.csv_columns import (
    EVENT_DEFAULTS,
    aware_or_text,
    day_or_text,
    date_column,
    in_range,
    map_price_header,
    numbers,
    require_a_date,
    require_ascending,
)
from vfr_ml_pipelines.lib.market_data.csv_files import FILE_ERRORS, file_rejection, read_rows, rejected_frame, require_columns
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderError, ProviderLoad
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    FUNDAMENTAL_VALUE_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)
from vfr_ml_pipelines.lib.market_data.rejections import empty_rejected
from vfr_ml_pipelines.lib.progress import Progress

UNIVERSE_REQUIRED = ("symbol", "name", "sector", "listed_on")
NEWS_FILE_COLUMNS = ("published_at", "headline", "source", "url")
DEFAULT_SECTOR = "Unknown"
# Without universe.csv: more than this many sessions without a bar ends a listing. Bars
# before such a gap belong to an earlier listing of the ticker (another company that used
# it, or stray bars before a spin-off's regular trading) and are quarantined.
RELISTING_GAP_SESSIONS = 20
CONFIRMED_MOVES_FILE = "confirmed_moves.csv"

log = logging.getLogger(__name__)


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
        return self._universe(as_of, strict=True).frame

    def load_universe(self, as_of: date) -> ProviderLoad:
        """Like `universe`, but without universe.csv a price file that cannot be read (or
        has no readable date) leaves its symbol out with the reason, not the whole universe."""
        return self._universe(as_of, strict=False)

    def _universe(self, as_of: date, *, strict: bool) -> ProviderLoad:
        path = self.root / "universe.csv"
        if path.exists():
            frame, rejected = self._universe_file(path), empty_rejected()
        else:
            frame, rejected = self._universe_from_price_files(as_of, strict=strict)
        listed = frame["listed_on"].map(lambda v: v if isinstance(v, date) else None)
        # rows whose dates did not parse stay in, so that validation quarantines them
        # delisted symbols stay: a backfill needs them for the sessions they were listed
        keep = [on is None or on <= as_of for on in listed]
        return ProviderLoad(frame[keep].reset_index(drop=True), rejected)

    def prices(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        return self.load_prices(symbols, start, end, strict=True).frame

    def load_prices(self, symbols: Sequence[str], start: date, end: date, *, strict: bool = False) -> ProviderLoad:
        return self._files(
            "prices", symbols, lambda path, symbol: self._price_file(path, symbol, start, end), PRICE_COLUMNS,
            required=True, strict=strict,
        )

    def fundamentals(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        return self.load_fundamentals(symbols, start, end, strict=True).frame

    def load_fundamentals(self, symbols: Sequence[str], start: date, end: date, *, strict: bool = False) -> ProviderLoad:
        return self._files(
            "fundamentals", symbols, lambda path, symbol: self._fundamentals_file(path, symbol, start, end),
            FUNDAMENTAL_COLUMNS, required=False, strict=strict,
        )

    def news(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        return self.load_news(symbols, start, end, strict=True).frame

    def load_news(self, symbols: Sequence[str], start: date, end: date, *, strict: bool = False) -> ProviderLoad:
        return self._files(
            "news", symbols, lambda path, symbol: self._news_file(path, symbol, start, end), NEWS_COLUMNS,
            required=False, strict=strict,
        )

    def _files(
        self, folder: str, symbols: Sequence[str], read: Callable[[Path, str], pd.DataFrame], columns: Sequence[str],
        *, required: bool, strict: bool,
    ) -> ProviderLoad:
        """Each symbol's file of `folder`, read by `read`. Strict: the first unusable file
        raises. Otherwise it becomes one rejected row (dataset `folder`) and the others go on;
        nothing of a refused file is kept, so a symbol is either whole or absent."""
        frames, rejected = [], []
        for symbol in symbols:
            path = self._path(folder, symbol)  # an invalid ticker raises in both modes: a caller bug
            try:
                if not path.exists():
                    if not required:
                        continue
                    raise ProviderError(f"csv: no price file {path} for symbol {symbol}", symbol=symbol, field="file")
                frames.append(read(path, symbol))
            except FILE_ERRORS as error:
                if strict:
                    raise
                rejected.append(file_rejection(folder, symbol, path, error))
        frame = _concat(frames, columns)
        return ProviderLoad(frame, rejected_frame(rejected))

    def confirmed_moves(self) -> set[tuple[str, date]]:
        """`<root>/confirmed_moves.csv` (`symbol,date`, optional): big moves the user has
        checked and confirms as genuine, kept whatever the jump screen concludes."""
        path = self.root / CONFIRMED_MOVES_FILE
        if not path.exists():
            return set()
        header, rows = read_rows(path, None, allow_no_rows=True)
        index = require_columns(path, None, header, ("symbol", "date"))
        confirmed = set()
        for line, row in rows:
            symbol, day = row[index["symbol"]].strip(), day_or_text(row[index["date"]])
            if not is_valid_ticker(symbol) or not isinstance(day, date):
                raise ProviderError(
                    f"csv: {path} line {line}: expected a ticker and an ISO date, got {row[index['symbol']]!r}, "
                    f"{row[index['date']]!r}", symbol=symbol or None, field="symbol" if not is_valid_ticker(symbol) else "date",
                )
            confirmed.add((symbol, day))
        return confirmed

    # --- files ----------------------------------------------------------------------------

    def _price_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = read_rows(path, symbol, allow_no_rows=False)
        columns = map_price_header(path, symbol, header)
        raw = {column: [row[i] for _, row in rows] for i, column in columns.items()}
        days = [day_or_text(v) for v in raw["trade_date"]]
        require_a_date(path, symbol, header, next(i for i, c in columns.items() if c == "trade_date"), rows, days)
        require_ascending(path, symbol, [line for line, _ in rows], days)

        frame = pd.DataFrame({"symbol": symbol, "trade_date": pd.Series(days, dtype=object)})
        for column in ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio"):
            if column in raw:
                frame[column] = numbers(raw[column], default=EVENT_DEFAULTS.get(column))
            else:
                frame[column] = EVENT_DEFAULTS[column]
        frame = frame[list(PRICE_COLUMNS)]
        if "dividend" not in raw and "split_ratio" not in raw:
            # no event columns: the events are what the vendor's Adj Close implies, derived
            # over the whole file (an ex-date needs the bar before it) within each listing
            frame = _derive_per_listing(frame, days)
        return in_range(frame, days, start, end)

    def _universe_file(self, path: Path) -> pd.DataFrame:
        header, rows = read_rows(path, None, allow_no_rows=False)
        index = require_columns(path, None, header, UNIVERSE_REQUIRED, optional=("delisted_on",))
        data = {c: [row[i] if i is not None else "" for _, row in rows] for c, i in index.items()}
        return pd.DataFrame(
            {
                "symbol": [v.strip() for v in data["symbol"]],
                "name": [v.strip() for v in data["name"]],
                "sector": [v.strip() for v in data["sector"]],
                "listed_on": pd.Series([day_or_text(v) for v in data["listed_on"]], dtype=object),
                "delisted_on": pd.Series([day_or_text(v) for v in data["delisted_on"]], dtype=object),
            },
            columns=list(UNIVERSE_COLUMNS),
        )

    def _universe_from_price_files(self, as_of: date, *, strict: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One row per price file. The listing starts at the first bar after the file's last
        gap of more than RELISTING_GAP_SESSIONS sessions. A file that ends before both
        `as_of` and the export's last day (the latest bar of any file) is a delisting: the
        symbol leaves the universe the session after its last bar. A file that merely stops
        with the whole export (a stale export) is not a delisting.

        A file whose dates cannot be read at all (undecodable, empty, no Date column, no
        ISO date) gives no listing: strict, it raises; otherwise the symbol is left out and
        returned among the rejected rows with the file's reason. Only the Date column is
        read here, so a file with other faults (a missing Volume column, unsorted dates) is
        listed and refused by the price load, where the coverage check sees it."""
        folder = self.root / "prices"
        if not folder.is_dir():
            raise ProviderError(f"csv: neither {self.root / 'universe.csv'} nor a prices/ folder in {self.root}")
        records = []
        rejected = []
        spans: dict[str, tuple[object, date | None]] = {}
        files = sorted(folder.glob("*.csv"))
        # every file is opened: thousands of them take a while
        for file in Progress(log, "universe from csv price files", len(files), "files").each(files):
            symbol = file.stem
            listed_on: object = None
            last: date | None = None
            if is_valid_ticker(symbol):
                try:
                    days = self._file_days(symbol)
                except FILE_ERRORS as error:
                    if strict:
                        raise
                    rejected.append(file_rejection("universe", symbol, file, error))
                    continue
                listed_on, last = listing_start(days), days[-1]
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
        frame = pd.DataFrame.from_records(records, columns=list(UNIVERSE_COLUMNS)).astype(object)
        return frame, rejected_frame(rejected)

    def _file_days(self, symbol: str) -> list[date]:
        """The readable dates of a price file, ascending (at least one)."""
        path = self._path("prices", symbol)
        header, rows = read_rows(path, symbol, allow_no_rows=False)
        index = date_column(path, symbol, header)
        parsed = [day_or_text(row[index]) for _, row in rows]
        require_a_date(path, symbol, header, index, rows, parsed)
        return sorted({d for d in parsed if isinstance(d, date)})

    def _fundamentals_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = read_rows(path, symbol, allow_no_rows=True)
        wanted = tuple(c for c in FUNDAMENTAL_COLUMNS if c != "symbol")
        index = require_columns(path, symbol, header, wanted, optional=("symbol",))
        data = {c: [row[i] if i is not None else "" for _, row in rows] for c, i in index.items()}
        for (line, _), value in zip(rows, data["symbol"]):
            if value.strip() and value.strip() != symbol:
                raise ProviderError(
                    f"csv: {path} line {line} has symbol {value.strip()!r}, but the file is for {symbol}",
                    symbol=symbol, field="symbol",
                )
        filing = [day_or_text(v) for v in data["filing_date"]]
        frame = pd.DataFrame(
            {
                "symbol": [symbol] * len(rows),
                "period_end": pd.Series([day_or_text(v) for v in data["period_end"]], dtype=object),
                "filing_date": pd.Series(filing, dtype=object),
                "fiscal_period": [v.strip() for v in data["fiscal_period"]],
                **{c: numbers(data[c]) for c in FUNDAMENTAL_VALUE_COLUMNS},
            },
            columns=list(FUNDAMENTAL_COLUMNS),
        )
        return in_range(frame, filing, start, end)

    def _news_file(self, path: Path, symbol: str, start: date, end: date) -> pd.DataFrame:
        header, rows = read_rows(path, symbol, allow_no_rows=True)
        index = require_columns(path, symbol, header, NEWS_FILE_COLUMNS)
        data = {c: [row[i] for _, row in rows] for c, i in index.items()}
        stamps = [aware_or_text(v) for v in data["published_at"]]
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
        return in_range(frame, sessions, start, end)


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


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[list(columns)]
