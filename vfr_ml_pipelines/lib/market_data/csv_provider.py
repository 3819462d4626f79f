"""Market data from a folder of per-symbol CSV files, e.g. exports from a data vendor.

Layout (docs/providers.md has examples):

    <root>/prices/{SYMBOL}.csv        Date,Open,High,Low,Close,Adj Close,Volume[,Dividend,Split Ratio]
    <root>/universe.csv               symbol,name,sector,listed_on[,delisted_on]        (optional)
    <root>/fundamentals/{SYMBOL}.csv  the FUNDAMENTAL_COLUMNS of schema.py              (optional)
    <root>/news/{SYMBOL}.csv          published_at,headline,source,url                  (optional)

Files are UTF-8 text; a UTF-8/UTF-16/UTF-32 byte-order mark is honoured and a gzip file
(recognised by its magic bytes, whatever its name) is decompressed. Anything else that does
not decode (Latin-1, binary) is refused naming the file and the byte offset.

The provider only rejects what makes a whole file unusable (an invalid ticker as a file
name, an empty or undecodable file, missing columns, out-of-order dates, no readable date).
`prices()` and friends raise on the first such file; `load_prices()` and friends (what the
assets call) set that symbol aside with the reason and go on with the others. Row-level
problems are left in the returned frames, typed as far as possible with the offending value
kept as text, so that `validation.py` rejects and quarantines them with the reason like for
any other provider.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.corporate_actions import derive_events_frame
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderError, ProviderLoad
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    FUNDAMENTAL_VALUE_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)
from vfr_ml_pipelines.lib.market_data.validation import (
    REJECTED_COLUMNS,
    SchemaError,
    empty_rejected,
    is_missing,
    parse_day,
    parse_timestamp,
)

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
GZIP_MAGIC = b"\x1f\x8b"
# longest first: the UTF-32 LE mark starts with the UTF-16 LE one
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# a daily file of 30 years is ~2 MB; this bounds what a corrupt or hostile (gzip bomb) file
# can make the provider hold in memory
MAX_FILE_BYTES = 256 * 1024 * 1024
# what makes a file unusable as a whole: the provider's own errors and the schema's
FILE_ERRORS = (SchemaError, ProviderError)


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
        return ProviderLoad(frame, _rejected_frame(rejected))

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
        _require_a_date(path, symbol, header, next(i for i, c in columns.items() if c == "trade_date"), rows, days)
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
        for file in sorted(folder.glob("*.csv")):
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
        return frame, _rejected_frame(rejected)

    def _file_days(self, symbol: str) -> list[date]:
        """The readable dates of a price file, ascending (at least one)."""
        path = self._path("prices", symbol)
        header, rows = _read(path, symbol, allow_no_rows=False)
        index = _date_column(path, symbol, header)
        parsed = [_day_or_text(row[index]) for _, row in rows]
        _require_a_date(path, symbol, header, index, rows, parsed)
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


def _decode(path: Path, symbol: str | None) -> str:
    """The file's text. Gzip (by its magic bytes, whatever the file is called) is
    decompressed; a byte-order mark picks UTF-8, UTF-16 or UTF-32; anything else must be
    UTF-8. What does not decode is refused naming the file and the byte offset: guessing
    Latin-1 against Windows-1252 would silently change characters."""
    about = f" (symbol {symbol})" if symbol else ""
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    where = ""
    if data.startswith(GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(MAX_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise SchemaError(
                f"{path}: starts like a gzip file but does not decompress ({error}){about}", source=str(path), symbol=symbol,
            ) from None
        where = " of the decompressed text"
    if len(data) > MAX_FILE_BYTES:
        raise SchemaError(
            f"{path}: more than {MAX_FILE_BYTES // (1024 * 1024)} MiB{where}; a per-symbol daily file is a few MB{about}",
            source=str(path), symbol=symbol,
        )
    encoding = next((name for mark, name in BYTE_ORDER_MARKS if data.startswith(mark)), None)
    if encoding is None:
        nul = data.find(b"\x00")
        if nul >= 0:
            raise SchemaError(
                f"{path}: NUL byte at offset {nul}{where} (line {_line_at(data, nul)}): a binary file, "
                f"or UTF-16 text without a byte-order mark; save it as UTF-8 CSV{about}",
                source=str(path), symbol=symbol,
            )
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        bad = data[error.start:error.start + 4].hex(" ")
        raise SchemaError(
            f"{path}: not {encoding.removesuffix('-sig').upper()} text: byte offset {error.start}{where} "
            f"(line {_line_at(data, error.start)}, bytes {bad}) does not decode; save the file as UTF-8 "
            f"(a Latin-1 or Windows-1252 export cannot be read without guessing){about}",
            source=str(path), symbol=symbol,
        ) from None


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


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
    reader = csv.reader(io.StringIO(_decode(path, symbol), newline=""))
    header: list[str] | None = None
    try:
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
    except csv.Error as error:  # a field over csv's size limit, a stray quote at the end of the file
        raise SchemaError(f"{path}: line {reader.line_num} is not CSV ({error}){about}", source=str(path), symbol=symbol) from None
    if header is None:
        raise SchemaError(f"{path}: the file is empty{about}", source=str(path), symbol=symbol)
    if not rows and not allow_no_rows:
        raise SchemaError(f"{path}: the file has a header but no rows{about}", source=str(path), symbol=symbol)
    return header, rows


def file_rejection(dataset: str, symbol: str, path: Path, error: Exception) -> dict:
    """The rejected row that stands for a whole refused file: day None (no bar of it is
    kept), field from the error (`header` for missing columns, else `file`)."""
    field = getattr(error, "field", None) or ("header" if getattr(error, "missing", ()) else "file")
    return {
        "dataset": dataset, "symbol": symbol, "day": None, "field": field,
        "reason": f"{error}; the whole file is refused, the other symbols go on",
        "raw": {"file": str(path), "error": type(error).__name__},
    }


def _rejected_frame(records: list[dict]) -> pd.DataFrame:
    if not records:
        return empty_rejected()
    return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS)).astype(object)


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


def _date_column(path: Path, symbol: str, header: list[str]) -> int:
    for i, name in enumerate(header):
        if PRICE_HEADER.get(name.lower().replace("_", " ").strip()) == "trade_date":
            return i
    raise SchemaError(
        f"{path}: missing columns Date (symbol {symbol}); the header is {','.join(header)}",
        source=str(path), symbol=symbol, missing=["Date"],
    )


def _require_a_date(
    path: Path, symbol: str, header: list[str], index: int, rows: list[tuple[int, list[str]]], days: list[object],
) -> None:
    """A file none of whose dates reads (e.g. all `01/02/2024`) is refused as a whole,
    naming the user's column and its first value: quarantining every row for the same
    reason would hide the one fix needed."""
    if any(isinstance(d, date) for d in days):
        return
    line, first = next(((line, row[index]) for line, row in rows if row[index].strip()), (rows[0][0], ""))
    raise ProviderError(
        f"csv: {path}: no value of column {header[index]!r} is a YYYY-MM-DD date (line {line} has {first!r}; "
        f"the order of day and month in other formats would be a guess); convert the dates to ISO",
        symbol=symbol, field=header[index],
    )


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
