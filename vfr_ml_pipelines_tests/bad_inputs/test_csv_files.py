"""Broken vendor files for the CSV provider. Each case puts one bad file (or one bad row)
beside a clean symbol and asserts the exact outcome class:

- READ: an unambiguous encoding or compression (a byte-order mark, gzip magic bytes) is
  read, every row kept;
- REFUSED: the symbol's file is refused as a whole with a reason naming the file (and the
  byte offset, line, column or value where it helps), the symbol set aside in the rejected
  rows, and the clean symbol's rows all kept;
- QUARANTINED: the bad row is rejected with a reason naming the field and the raw value,
  and every other row (of both symbols) is kept;
- WARNING: the bars are stored and a warning check names the symbol and the date range.

The references are the files as written here, not the code under test.
"""

from __future__ import annotations

import codecs
import gzip
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS
from vfr_ml_pipelines.defs.market_data import checks as market_data_checks
from vfr_ml_pipelines.defs.resources import CsvMarketDataResource, WarehouseResource
from vfr_ml_pipelines.defs.pipeline.runs import range_tags
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider
from vfr_ml_pipelines.lib.market_data.rejections import SchemaError
from vfr_ml_pipelines.lib.market_data.validation import validate_fundamentals, validate_prices
from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine
from vfr_ml_pipelines_tests.csv_helpers import END, HEADER, ROWS, START, TODAY, write

DAYS = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
TEXT = "\n".join([HEADER, *ROWS]) + "\n"


def folder(tmp_path: Path, bad: bytes | str | None, name: str = "BBB.csv", sub: str = "prices") -> Path:
    """AAA clean, and `bad` as BBB's file (bytes as they are, text as UTF-8)."""
    write(tmp_path, "prices/AAA.csv", TEXT)
    if bad is not None:
        write(tmp_path, f"{sub}/{name}", bad)
    return tmp_path


def load(root: Path, symbols=("AAA", "BBB")):
    return CsvMarketDataProvider(root).load_prices(list(symbols), START, END)


def assert_aaa_kept(frame) -> None:
    rows = frame[frame["symbol"] == "AAA"]
    assert rows["trade_date"].tolist() == DAYS
    assert rows["close"].tolist() == [10.5, 10.6, 10.3]


def refused(root: Path, words: list[str], field: str = "file"):
    """REFUSED: BBB set aside with a reason naming its file and `words`; AAA whole."""
    result = load(root)
    assert_aaa_kept(result.frame)
    assert "BBB" not in set(result.frame["symbol"]), "nothing of a refused file is kept"
    assert len(result.rejected) == 1
    row = result.rejected.iloc[0]
    path = str(root / "prices" / "BBB.csv")
    assert (row["dataset"], row["symbol"], row["day"], row["field"]) == ("prices", "BBB", None, field)
    assert path in row["reason"] and row["raw"]["file"] == path
    for word in words:
        assert word in row["reason"], f"{word!r} not in {row['reason']!r}"
    return row


# --- READ: unambiguous encodings and compression -----------------------------------------

READABLE = {
    "utf-8 byte-order mark": codecs.BOM_UTF8 + TEXT.encode("utf-8"),
    "utf-16 little-endian with its mark": TEXT.encode("utf-16"),  # Python writes the LE mark first
    "utf-16 big-endian with its mark": codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    "utf-32 with its mark": TEXT.encode("utf-32"),
    "gzip named .csv": gzip.compress(TEXT.encode("utf-8")),
    "gzip of utf-16 with its mark": gzip.compress(TEXT.encode("utf-16")),
    "windows line endings": TEXT.replace("\n", "\r\n").encode("utf-8"),
}


@pytest.mark.parametrize("case", sorted(READABLE))
def test_an_unambiguous_encoding_is_read(case, tmp_path):
    result = load(folder(tmp_path, READABLE[case]))
    assert result.rejected.empty, result.rejected["reason"].tolist()
    assert_aaa_kept(result.frame)
    bbb = result.frame[result.frame["symbol"] == "BBB"]
    assert bbb["trade_date"].tolist() == DAYS and bbb["volume"].tolist() == [1000, 1100, 1200]


# --- REFUSED: one symbol's file is unusable, the others load -----------------------------

LATIN_1 = (HEADER + ",Exchange\n" + ROWS[0] + ",Bourse\n" + ROWS[1] + ",Zürich\n").encode("latin-1")
U_UMLAUT = LATIN_1.index("ü".encode("latin-1"))  # its offset, counted independently of the code
UNREADABLE = {
    # (file bytes, words the reason must contain, field)
    "latin-1 text": (LATIN_1, ["not UTF-8 text", f"byte offset {U_UMLAUT}", "line 3", "bytes fc"], "file"),
    "binary file": (bytes(range(256)) * 4, ["NUL byte at offset 0", "a binary file"], "file"),
    "utf-16 without a byte-order mark": (TEXT.encode("utf-16-le"), ["NUL byte at offset 1", "UTF-16 text without a byte-order mark"], "file"),
    "gzip magic then garbage": (b"\x1f\x8b" + b"not really gzip" * 10, ["starts like a gzip file but does not decompress"], "file"),
    "truncated gzip": (gzip.compress(TEXT.encode() * 50)[:60], ["does not decompress"], "file"),
    "utf-16 mark, odd bytes after it": (codecs.BOM_UTF16_LE + b"D\x00a\x00t", ["not UTF-16 text"], "file"),
    "empty file": (b"", ["the file is empty"], "file"),
    "only blank lines": (b"\n\n  \n", ["the file is empty"], "file"),
    "header without rows": ((HEADER + "\n").encode(), ["header but no rows"], "file"),
    "wrong header (no Volume)": ("Date,Open,High,Low,Close,Adj Close,Vol\n" + ROWS[0] + "\n").encode(),
    "unsorted dates": ("\n".join([HEADER, ROWS[1], ROWS[0], ROWS[2]]) + "\n").encode(),
    "US dates (MM/DD/YYYY)": ("\n".join([HEADER, "01/02/2024,10,11,9,10.5,10.4,1000", "01/03/2024,10.5,10.9,10.1,10.6,10.5,1100"]) + "\n").encode(),
    "row longer than the header": ((TEXT + "2024-01-05,1,1,1,1,1,1,extra\n").encode(), ["line 5 has 8 fields but the header has 7"], "file"),
    "unterminated quote at the end": ((TEXT + '2024-01-05,"10.0,10.1\n').encode(), [], "file"),
}
UNREADABLE["wrong header (no Volume)"] = (UNREADABLE["wrong header (no Volume)"], ["missing columns Volume", "the header is Date,Open"], "header")
UNREADABLE["unsorted dates"] = (UNREADABLE["unsorted dates"], ["dates are not ascending: line 3 has 2024-01-02 after 2024-01-03 on line 2"], "trade_date")
UNREADABLE["US dates (MM/DD/YYYY)"] = (UNREADABLE["US dates (MM/DD/YYYY)"], ["column 'Date'", "line 2 has '01/02/2024'"], "Date")


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_an_unusable_file_holds_out_its_symbol_only(case, tmp_path):
    content, words, field = UNREADABLE[case]
    root = folder(tmp_path, content)
    if case == "unterminated quote at the end":
        # csv reads the quoted field to the end of the file: a short row, padded, whose
        # values validation rejects; the file itself is still readable
        result = load(root)
        assert_aaa_kept(result.frame)
        assert result.rejected.empty
        bbb = validate_prices(result.frame, start=START, end=END, today=TODAY)
        assert len(bbb.clean) == 6 and list(bbb.rejected["symbol"]) == ["BBB"]
        return
    refused(root, words, field)


def test_a_missing_file_holds_out_its_symbol_only(tmp_path):
    refused(folder(tmp_path, None), ["no price file", "for symbol BBB"])


def test_strict_read_names_the_file_instead_of_a_bare_decode_error(tmp_path):
    root = folder(tmp_path, LATIN_1)
    with pytest.raises(SchemaError) as info:
        CsvMarketDataProvider(root).prices(["AAA", "BBB"], START, END)
    assert str(root / "prices" / "BBB.csv") in str(info.value) and "symbol BBB" in str(info.value)
    assert not isinstance(info.value, UnicodeDecodeError) and info.value.__cause__ is None


def test_a_latin_1_news_file_holds_out_that_symbol_s_news_only(tmp_path):
    root = folder(tmp_path, "published_at,headline,source,url\n2024-01-03T14:00:00Z,Caf\xe9 chain beats,wire,\n".encode("latin-1"),
                  name="BBB.csv", sub="news")
    (root / "news" / "AAA.csv").write_text("published_at,headline,source,url\n2024-01-03T14:00:00Z,AAA beats,wire,\n")
    result = CsvMarketDataProvider(root).load_news(["AAA", "BBB"], START, END)
    assert result.frame["headline"].tolist() == ["AAA beats"]
    assert list(result.rejected["symbol"]) == ["BBB"] and "not UTF-8 text" in result.rejected.iloc[0]["reason"]
    assert result.rejected.iloc[0]["dataset"] == "news"


# --- the universe derived from the files: the user's column and value, not `listed_on` ---


def test_us_dates_leave_the_symbol_out_of_the_universe_naming_the_user_s_column(tmp_path):
    root = folder(tmp_path, "Date,Open,High,Low,Close,Adj Close,Volume\n01/02/2024,10,11,9,10.5,10.4,1000\n")
    result = CsvMarketDataProvider(root).load_universe(TODAY)
    assert result.frame["symbol"].tolist() == ["AAA"]
    row = result.rejected.iloc[0]
    assert (row["dataset"], row["symbol"], row["field"]) == ("universe", "BBB", "Date")
    assert "column 'Date'" in row["reason"] and "'01/02/2024'" in row["reason"] and "listed_on" not in row["reason"]


def test_an_empty_file_leaves_its_symbol_out_of_the_universe(tmp_path):
    result = CsvMarketDataProvider(folder(tmp_path, b"")).load_universe(TODAY)
    assert result.frame["symbol"].tolist() == ["AAA"]
    assert list(result.rejected["symbol"]) == ["BBB"] and "the file is empty" in result.rejected.iloc[0]["reason"]


def test_unsorted_dates_still_list_the_symbol_so_that_coverage_counts_it(tmp_path):
    """Its dates are readable: BBB is listed from its first bar and the price load refuses
    the file, so the coverage check sees a listed symbol without bars."""
    result = CsvMarketDataProvider(folder(tmp_path, "\n".join([HEADER, ROWS[1], ROWS[0]]) + "\n")).load_universe(TODAY)
    assert result.rejected.empty
    listed = dict(zip(result.frame["symbol"], result.frame["listed_on"]))
    assert listed == {"AAA": date(2024, 1, 2), "BBB": date(2024, 1, 2)}


# --- QUARANTINED: absurd magnitudes and days that are not sessions -------------------------

BAD_ROWS = {
    # (BBB's second row, field, words of the reason, raw value kept as text)
    "volume 1e20 (overflowed int64 before)": ("2024-01-03,10.5,10.9,10.1,10.6,10.5,1e20", "volume",
                                               ["volume 1e+20 is above the plausible maximum 1e+12"], ("volume", "1e+20")),
    "volume of 21 digits": ("2024-01-03,10.5,10.9,10.1,10.6,10.5,100000000000000000000", "volume",
                            ["volume 1e+20 is above the plausible maximum"], ("volume", "1e+20")),
    "high 1e300": ("2024-01-03,10.5,1e300,10.1,10.6,10.5,1100", "high",
                   ["high 1e+300 is above the plausible maximum 1e+07"], ("high", "1e+300")),
    "close beyond float range": ("2024-01-03,10.5,10.9,10.1,1e400,10.5,1100", "close", ["close is infinite"], ("close", "inf")),
    "high 25 x low": ("2024-01-03,10.5,260,10.1,10.6,10.5,1100", "high",
                      ["high 260.0 is more than 20 x low 10.1", "bad print"], ("high", 260.0)),
    "split ratio 1e6": ("2024-01-03,10.5,10.9,10.1,10.6,10.5,1100,,1000000", "split_ratio",
                        ["split_ratio 1000000.0 is outside the plausible range 0.0001..10000"], ("split_ratio", 1000000.0)),
    "dividend 1e9": ("2024-01-03,10.5,10.9,10.1,10.6,10.5,1100,1e9,", "dividend",
                     ["dividend 1000000000.0 is above the plausible maximum 1e+07"], ("dividend", 1e9)),
    "a Saturday": ("2024-01-06,10.5,10.9,10.1,10.6,10.5,1100", "trade_date",
                   ["trade_date 2024-01-06 is a Saturday, not an NYSE session"], ("trade_date", "2024-01-06")),
    "a Sunday": ("2024-01-07,10.5,10.9,10.1,10.6,10.5,1100", "trade_date",
                 ["trade_date 2024-01-07 is a Sunday, not an NYSE session"], ("trade_date", "2024-01-07")),
    "an exchange holiday (Martin Luther King Jr. Day)": ("2024-01-15,10.5,10.9,10.1,10.6,10.5,1100", "trade_date",
                                                        ["trade_date 2024-01-15 is an NYSE holiday"], ("trade_date", "2024-01-15")),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_an_implausible_row_is_quarantined_with_its_raw_value(case, tmp_path):
    line, field, words, (raw_field, raw_value) = BAD_ROWS[case]
    events = line.count(",") == 8
    header = HEADER + (",Dividend,Split Ratio" if events else "")
    rows = [r + (",," if events else "") for r in ROWS]
    bad_day = date.fromisoformat(line[:10])
    ordered = sorted([rows[0], line, rows[2]], key=lambda r: r[:10])
    root = folder(tmp_path, "\n".join([header, *ordered]) + "\n")
    loaded = load(root)
    assert loaded.rejected.empty
    result = validate_prices(loaded.frame, start=START, end=END, today=TODAY)
    assert len(result.rejected) == 1, result.rejected["reason"].tolist()
    row = result.rejected.iloc[0]
    assert (row["symbol"], row["field"]) == ("BBB", field)
    assert row["day"] == bad_day
    for word in words:
        assert word in row["reason"], f"{word!r} not in {row['reason']!r}"
    assert row["raw"][raw_field] == raw_value
    # the other rows of both symbols are kept, with exact values and no overflow
    kept = result.clean
    assert kept[kept["symbol"] == "AAA"]["trade_date"].tolist() == DAYS
    assert kept[kept["symbol"] == "BBB"]["trade_date"].tolist() == [DAYS[0], DAYS[2]]
    assert kept["volume"].tolist() == [1000, 1100, 1200, 1000, 1200] and str(kept["volume"].dtype) == "int64"


def test_an_absurd_statement_amount_is_quarantined(tmp_path):
    columns = ["symbol", "period_end", "filing_date", "fiscal_period", "revenue", "gross_profit", "operating_income", "ebitda",
               "net_income", "interest_expense", "eps", "total_assets", "total_debt", "cash", "current_assets",
               "current_liabilities", "inventory", "book_value", "free_cash_flow", "shares_outstanding", "dividends_paid"]
    good = ["2023-12-31", "2024-01-20", "2023Q4", *["1e9"] * 15, "5e8", "1e8"]
    bad = ["2023-09-30", "2024-01-10", "2023Q3", "1e300", *["1e9"] * 14, "5e8", "1e8"]
    root = folder(tmp_path, ",".join(columns[1:]) + "\n" + ",".join(bad) + "\n" + ",".join(good) + "\n",
                  name="BBB.csv", sub="fundamentals")
    frame = CsvMarketDataProvider(root).load_fundamentals(["BBB"], START, END).frame
    result = validate_fundamentals(frame, start=START, end=END, today=TODAY)
    assert result.clean["period_end"].tolist() == [date(2023, 12, 31)]
    row = result.rejected.iloc[0]
    assert row["field"] == "revenue" and "revenue 1e+300 is beyond the plausible magnitude 1e+15" in row["reason"]
    assert row["raw"]["revenue"] == "1e+300"


# --- the assets on a real PostgreSQL: one bad file among many, stale data that looks alive ---

RANGE = ("2024-03-11", "2024-04-05")  # 19 sessions (Good Friday 2024-03-29 is none)


def _export(root: Path, n_symbols: int) -> list[str]:
    days = calendar.trading_days(date.fromisoformat(RANGE[0]), date.fromisoformat(RANGE[1]))
    symbols = [f"S{i:02d}" for i in range(n_symbols)]
    (root / "prices").mkdir(parents=True)
    for k, symbol in enumerate(symbols):
        lines = [HEADER]
        price = 50.0 + k
        for i, day in enumerate(days):
            volume = 0 if symbol == "S01" and 3 <= i < 15 else 1000 + i  # S01: 12 sessions of zero volume
            lines.append(f"{day},{price:.2f},{price * 1.01:.2f},{price * 0.99:.2f},{price:.2f},{price:.2f},{volume}")
            price *= 1.002 if i % 2 else 0.999  # the close moves every session
        (root / "prices" / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
    # S02: a gzip export of a Windows machine; S03: a Latin-1 export; S04: a US-dated row
    # among ISO ones becomes one quarantined row; S05: a Saturday bar; S06: volume 1e20
    s02 = (root / "prices" / "S02.csv")
    s02.write_bytes(gzip.compress(codecs.BOM_UTF8 + s02.read_bytes().replace(b"\n", b"\r\n")))
    (root / "prices" / "S03.csv").write_bytes((root / "prices" / "S03.csv").read_text().replace("Volume", "Volume,Börse").encode("latin-1"))
    for symbol, old, new in (("S04", f"{days[4]},", "03/15/2024,"), ("S06", f"{days[6]},", None)):
        path = root / "prices" / f"{symbol}.csv"
        lines = path.read_text().splitlines()
        index = next(i for i, line in enumerate(lines) if line.startswith(old))
        lines[index] = new + lines[index][len(old):] if new else lines[index].rsplit(",", 1)[0] + ",1e20"
        path.write_text("\n".join(lines) + "\n")
    s05 = root / "prices" / "S05.csv"
    lines = s05.read_text().splitlines()
    lines.insert(6, "2024-03-16" + lines[6][10:])  # after 2024-03-15 (line 6), before 2024-03-18
    s05.write_text("\n".join(lines) + "\n")
    (root / "universe.csv").write_text(
        "symbol,name,sector,listed_on,delisted_on\n" + "".join(f"{s},{s} Inc,Energy,2020-01-02,\n" for s in symbols)
    )
    return symbols


def test_one_bad_file_among_many_leaves_the_others_loaded_and_coverage_decides(tmp_path, make_database):
    """40 symbols: S03's Latin-1 file is refused (logged as an error, quarantined with the
    reason, listed in the metadata), S04/S05/S06 lose one row each; 39/40 = 97.5 % and, on
    the day of S04's bad row, 38/40 = 95 %: coverage passes and the run goes on. S01's weeks
    of zero volume while its close moves are stored and warned about by symbol and range."""
    url = make_database("csv_bad_files")
    root = tmp_path / "export"
    symbols = _export(root, 40)
    keep = {"universe", "raw_prices"}
    assets = [a for a in ALL_ASSETS if {k.to_user_string() for k in a.keys} <= keep]
    checks = [c for c in dg.load_asset_checks_from_modules([market_data_checks])
              if {k.asset_key.to_user_string() for k in c.check_keys} <= keep]
    resources = {"warehouse": WarehouseResource(database_url=url),
                 "market_data": CsvMarketDataResource(directory=str(root), as_of="2024-04-08")}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*assets, *checks], resources=resources, tags=range_tags(*RANGE), raise_on_error=False,
                            instance=instance)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["raw_prices_cover_the_universe"].passed is True
    assert evaluations["raw_prices_are_valid_bars"].passed is True
    stale = evaluations["raw_prices_trade_when_they_move"]
    assert stale.passed is False and stale.severity == dg.AssetCheckSeverity.WARN
    days = calendar.trading_days(date.fromisoformat(RANGE[0]), date.fromisoformat(RANGE[1]))
    assert f"S01 {days[3]}..{days[14]} (12 sessions)" in stale.description
    assert stale.metadata["symbols"].value == ["S01"]

    prices = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_prices")
    refused = prices.materialization.metadata["symbols_refused"].value
    assert list(refused) == ["S03"] and "not UTF-8 text" in refused["S03"]
    logged = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level >= 40]  # ERROR
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT symbol, count(*) FROM vfr_ml.raw_prices GROUP BY symbol")).all())
        quarantined = conn.execute(text(
            "SELECT symbol, day, field, reason, raw FROM vfr_ml.quarantine WHERE dataset = 'prices' ORDER BY symbol")).all()
        volume = conn.execute(text("SELECT max(volume) FROM vfr_ml.raw_prices")).scalar_one()
    engine.dispose()
    assert "S03" not in counts and len(counts) == 39
    assert {s: n for s, n in counts.items() if n != len(days)} == {"S04": len(days) - 1, "S06": len(days) - 1}
    assert counts["S02"] == len(days)  # the gzip + BOM + CRLF file is read whole
    by_symbol = {r.symbol: r for r in quarantined}
    assert set(by_symbol) == {"S03", "S04", "S05", "S06"}
    assert by_symbol["S03"].day is None and "Börse" not in by_symbol["S03"].reason
    assert "not UTF-8 text" in by_symbol["S03"].reason and str(root / "prices" / "S03.csv") in by_symbol["S03"].reason
    assert "trade_date '03/15/2024' is not a date" in by_symbol["S04"].reason
    assert by_symbol["S05"].day == date(2024, 3, 16) and "is a Saturday" in by_symbol["S05"].reason
    assert by_symbol["S06"].raw["volume"] == "1e+20" and "above the plausible maximum" in by_symbol["S06"].reason
    assert volume < 10_000
    assert any("prices: symbol S03 refused as a whole" in m and "not UTF-8 text" in m for m in logged), logged
    assert len(symbols) == 40
