"""The market-data assets and their checks over a real PostgreSQL, fed by the CSV provider:
bad rows land in the quarantine with their reason, checks block what would poison models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS
from vfr_ml_pipelines.defs.market_data import checks as market_data_checks
from vfr_ml_pipelines.defs.market_data.assets import raw_prices, universe
from vfr_ml_pipelines.defs.resources import CsvMarketDataResource, WarehouseResource
from vfr_ml_pipelines.defs.pipeline.runs import range_tags
from vfr_ml_pipelines.lib.market_data import calendar, loads
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS
from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine

START, END = "2024-03-25", "2024-04-05"  # includes Good Friday 2024-03-29 (no session)
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume,Dividend,Split Ratio"


def _write_folder(root: Path, bad_row: bool = True, unadjusted_split: bool = False) -> None:
    days = calendar.trading_days(date.fromisoformat(START), date.fromisoformat(END))
    (root / "prices").mkdir(parents=True)
    for symbol in ("AAA", "BBB"):
        lines = [HEADER]
        price = 100.0
        for i, day in enumerate(days):
            if unadjusted_split and symbol == "AAA" and i == 5:
                price /= 2  # a 2:1 split the vendor forgot to flag
            high, low = price * 1.01, price * 0.99
            if bad_row and symbol == "BBB" and i == 3:
                high, low = price * 0.98, price * 1.02  # high < low
            lines.append(f"{day},{price:.2f},{high:.2f},{low:.2f},{price:.2f},{price:.2f},1000,,")
            price *= 1.001
        (root / "prices" / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
    (root / "universe.csv").write_text(
        "symbol,name,sector,listed_on,delisted_on\nAAA,Alpha,Energy,2020-01-02,\nBBB,Beta,Utilities,2020-01-02,\n"
    )


def _market_assets():
    keep = {"universe", "raw_prices", "raw_fundamentals", "raw_news", "synthetic_oracle"}
    return [a for a in ALL_ASSETS if {k.to_user_string() for k in a.keys} <= keep] + list(
        dg.load_asset_checks_from_modules([market_data_checks])
    )


def _run(folder: Path, database_url: str, start: str = START, end: str = END) -> dg.ExecuteInProcessResult:
    resources = {
        "warehouse": WarehouseResource(database_url=database_url),
        "market_data": CsvMarketDataResource(directory=str(folder), as_of="2024-04-08"),
    }
    return dg.materialize(_market_assets(), resources=resources, tags=range_tags(start, end), raise_on_error=False)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_bad_row_is_quarantined_with_its_reason_and_blocks_coverage(tmp_path, make_database):
    url = make_database("csv_quarantine")
    _write_folder(tmp_path / "csv")
    result = _run(tmp_path / "csv", url)
    checks = _checks(result)
    assert checks["raw_prices_are_valid_bars"] is True
    # BBB lost one session of two symbols: 50 % coverage that day
    assert checks["raw_prices_cover_the_universe"] is False
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        sessions = conn.execute(text("SELECT count(DISTINCT trade_date) FROM vfr_ml.raw_prices")).scalar_one()
        counts = dict(conn.execute(text("SELECT symbol, count(*) FROM vfr_ml.raw_prices GROUP BY symbol")).all())
        quarantined = conn.execute(text("SELECT dataset, symbol, day, field, reason, raw FROM vfr_ml.quarantine")).all()
    assert sessions == 9  # ten weekdays minus Good Friday
    assert counts == {"AAA": 9, "BBB": 8}
    assert len(quarantined) == 1
    row = quarantined[0]
    assert (row.dataset, row.symbol, str(row.day)) == ("prices", "BBB", "2024-03-28")
    assert "high" in row.field and "low" in row.reason
    assert row.raw["symbol"] == "BBB"

    # re-running the same range neither duplicates nor loses anything
    _run(tmp_path / "csv", url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vfr_ml.raw_prices")).scalar_one() == 17
        assert conn.execute(text("SELECT count(*) FROM vfr_ml.quarantine")).scalar_one() == 1
    engine.dispose()


def test_clean_folder_passes_every_check_and_stores_no_oracle(tmp_path, make_database):
    url = make_database("csv_clean")
    _write_folder(tmp_path / "csv", bad_row=False)
    result = _run(tmp_path / "csv", url)
    assert result.success
    assert all(_checks(result).values()), _checks(result)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"universe", "raw_prices", "raw_fundamentals", "raw_news"} <= materialized
    # the csv provider has no oracle: the asset is materialized (training depends on it and
    # must not be skipped) and stores nothing
    oracle = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "synthetic_oracle"]
    assert oracle and all(e.materialization.metadata["rows"].value == 0 for e in oracle)
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vfr_ml_oracle.expected_returns")).scalar_one() == 0
    engine.dispose()


def test_unflagged_split_holds_out_that_symbol_only(tmp_path, make_database):
    """A 2:1 split the vendor flagged nowhere (Split Ratio blank, Adj Close halves too,
    volume unchanged) is in doubt: AAA's bars from that session on are quarantined with the
    reason, BBB goes on, and no unexplained jump is stored."""
    url = make_database("csv_split")
    _write_folder(tmp_path / "csv", bad_row=False, unadjusted_split=True)
    result = _run(tmp_path / "csv", url)
    checks = _checks(result)
    assert checks["raw_prices_have_no_unadjusted_splits"] is True
    assert checks["raw_prices_are_valid_bars"] is True
    # two symbols, one held out: 50 % coverage, and the check says where to look
    assert checks["raw_prices_cover_the_universe"] is False
    coverage = next(e for e in result.get_asset_check_evaluations() if e.check_name == "raw_prices_cover_the_universe")
    assert "AAA" in coverage.description and "vfr_ml.quarantine" in coverage.description
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT symbol, count(*) FROM vfr_ml.raw_prices GROUP BY symbol")).all())
        held = conn.execute(text("SELECT symbol, day, reason FROM vfr_ml.quarantine ORDER BY day")).all()
    engine.dispose()
    days = calendar.trading_days(date.fromisoformat(START), date.fromisoformat(END))
    assert counts == {"AAA": 5, "BBB": len(days)}
    assert [(r.symbol, r.day) for r in held] == [("AAA", d) for d in days[5:]]
    assert "2-for-1 split" in held[0].reason and all(r.reason.startswith(f"unexplained jump on {days[5]}") for r in held)


def test_backfills_are_single_runs_over_the_range():
    assert raw_prices.backfill_policy == dg.BackfillPolicy.single_run()
    assert universe.backfill_policy == dg.BackfillPolicy.single_run()


@pytest.mark.parametrize("bad_symbol", ["../etc", "A;DROP", "TOOLONGTICKER1"])
def test_invalid_tickers_never_reach_the_filesystem_or_the_database(tmp_path, make_database, bad_symbol):
    from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider
    from vfr_ml_pipelines.lib.market_data.provider import ProviderError
    from vfr_ml_pipelines.lib.market_data.rejections import SchemaError

    _write_folder(tmp_path / "csv", bad_row=False)
    provider = CsvMarketDataProvider(tmp_path / "csv")
    with pytest.raises((ProviderError, SchemaError), match="ticker|symbol"):
        provider.prices([bad_symbol], date.fromisoformat(START), date.fromisoformat(END))


def test_a_doubt_carries_over_to_later_daily_loads_until_explained(tmp_path, make_database):
    """Loaded a session at a time (as the daily run does): the split day is compared with
    the stored bar before it, and the next sessions stay held out; adding the split to the
    file and re-loading from that session brings the symbol back."""
    url = make_database("csv_split_daily")
    _write_folder(tmp_path / "csv", bad_row=False, unadjusted_split=True)
    days = calendar.trading_days(date.fromisoformat(START), date.fromisoformat(END))
    _run(tmp_path / "csv", url, START, str(days[4]))
    for day in days[5:7]:
        _run(tmp_path / "csv", url, str(day), str(day))
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT day, reason FROM vfr_ml.quarantine WHERE symbol = 'AAA' ORDER BY day")).all()
        stored = conn.execute(text("SELECT max(trade_date) FROM vfr_ml.raw_prices WHERE symbol = 'AAA'")).scalar_one()
    assert [r.day for r in held] == days[5:7] and stored == days[4]
    assert all(r.reason.startswith(f"unexplained jump on {days[5]}") for r in held)
    # the user records the split (Split Ratio 2 on that day) and re-loads from there
    path = tmp_path / "csv" / "prices" / "AAA.csv"
    lines = path.read_text().splitlines()
    lines[6] = lines[6][: -len(",,")] + ",,2"
    path.write_text("\n".join(lines) + "\n")
    result = _run(tmp_path / "csv", url, str(days[5]), END)
    assert _checks(result)["raw_prices_have_no_unadjusted_splits"] is True
    with engine.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM vfr_ml.quarantine WHERE symbol = 'AAA'")).scalar_one()
        count = conn.execute(text("SELECT count(*) FROM vfr_ml.raw_prices WHERE symbol = 'AAA'")).scalar_one()
    engine.dispose()
    assert held == 0 and count == len(days)


def test_a_move_the_user_confirms_is_kept(tmp_path, make_database):
    """confirmed_moves.csv is the per-symbol override: the split-shaped move is stored as a
    genuine one and the stored-bar check agrees."""
    url = make_database("csv_confirmed")
    _write_folder(tmp_path / "csv", bad_row=False, unadjusted_split=True)
    days = calendar.trading_days(date.fromisoformat(START), date.fromisoformat(END))
    (tmp_path / "csv" / "confirmed_moves.csv").write_text(f"symbol,date\nAAA,{days[5]}\n")
    result = _run(tmp_path / "csv", url)
    assert result.success and all(_checks(result).values()), _checks(result)
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vfr_ml.quarantine")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM vfr_ml.raw_prices WHERE symbol = 'AAA'")).scalar_one() == len(days)
    engine.dispose()


def _write_fundamentals(root: Path) -> None:
    values = ",".join(["1000"] * (len(FUNDAMENTAL_COLUMNS) - 4))
    (root / "fundamentals").mkdir(parents=True, exist_ok=True)
    (root / "fundamentals" / "AAA.csv").write_text("\n".join([
        ",".join(FUNDAMENTAL_COLUMNS[1:]),
        f"2022-12-31,2023-02-10,2022Q4,{values}",  # filed more than a year before START
        f"2023-06-30,2023-08-04,2023Q2,{values}",  # filed in the year before START
        f"2023-12-31,2024-02-09,2023Q4,{values}",  # filed in the year before START
        f"2024-03-31,2024-04-02,2024Q1,{values}",  # filed in the range
    ]) + "\n")


def _stored_filings(url: str) -> list[date]:
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        days = conn.execute(text("SELECT filing_date FROM vfr_ml.raw_fundamentals ORDER BY filing_date")).scalars().all()
    engine.dispose()
    return list(days)


def test_the_first_partition_also_stores_the_reports_filed_in_the_year_before_it(tmp_path, make_database, monkeypatch):
    # a report filed before the history starts is public on its first session: without it the
    # trailing-twelve-month fundamentals would be missing for the history's first year
    monkeypatch.setenv("VFR_HISTORY_START", START)
    url = make_database("csv_prior_filings")
    _write_folder(tmp_path / "csv", bad_row=False)
    _write_fundamentals(tmp_path / "csv")
    result = _run(tmp_path / "csv", url)
    assert result.success and all(_checks(result).values()), _checks(result)
    expected = [date(2023, 8, 4), date(2024, 2, 9), date(2024, 4, 2)]
    assert _stored_filings(url) == expected
    assert loads.filings_start(date.fromisoformat(START)) == date(2023, 3, 25)
    # a re-run replaces the same filing days: no duplicate, nothing lost
    assert _run(tmp_path / "csv", url).success
    assert _stored_filings(url) == expected


def test_a_later_partition_stores_only_the_reports_filed_in_its_range(tmp_path, make_database, monkeypatch):
    monkeypatch.setenv("VFR_HISTORY_START", "2024-01-02")  # START is not the history's first session
    url = make_database("csv_range_filings")
    _write_folder(tmp_path / "csv", bad_row=False)
    _write_fundamentals(tmp_path / "csv")
    assert _run(tmp_path / "csv", url).success
    assert _stored_filings(url) == [date(2024, 4, 2)]
    assert loads.filings_start(date.fromisoformat(START)) == date.fromisoformat(START)
