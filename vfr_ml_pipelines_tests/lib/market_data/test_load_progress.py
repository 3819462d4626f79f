"""What a market-data load says while it runs (`loads.fetch_in_batches`, `lib/progress.py`):
asking the provider a tenth of the symbols at a time gives the same rows and refusals as one
call; a long load reports each tenth with the time left; every load ends with what was
delivered and what was stored, in counts that match the warehouse."""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
from sqlalchemy import text

from vfr_ml_pipelines.lib.market_data import loads
from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider
from vfr_ml_pipelines.lib.market_data.fmp_provider import FmpMarketDataProvider
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig
from vfr_ml_pipelines.lib.market_data.synthetic.provider import SyntheticMarketProvider
from vfr_ml_pipelines_tests.csv_helpers import END, ROWS, START, price_file, write
from vfr_ml_pipelines_tests.lib.market_data.test_fmp_provider import API_KEY, Reply, fmp  # noqa: F401 (fixture)

LOGGER = "vfr_ml_pipelines.lib.market_data.loads"
SYNTHETIC = SyntheticMarketConfig(as_of=date(2024, 3, 28), start=date(2024, 1, 2), n_symbols=6)


def said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_batches_give_the_rows_and_refusals_of_one_call(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    synthetic = SyntheticMarketProvider(SYNTHETIC)
    symbols = synthetic.all_symbols()
    for fetch in (synthetic.load_prices, synthetic.load_fundamentals, synthetic.load_news):
        whole, batched = fetch(symbols, SYNTHETIC.start, SYNTHETIC.as_of), loads.fetch_in_batches(
            fetch, "x", "synthetic", symbols, SYNTHETIC.start, SYNTHETIC.as_of)
        assert len(whole.frame) > 0
        pd.testing.assert_frame_equal(batched.frame, whole.frame)

    # csv: 12 symbols, one of them an empty file refused as a whole, in the second batch of 2
    symbols = [f"S{i:02d}" for i in range(12)]
    for symbol in symbols:
        price_file(tmp_path, symbol, ROWS)
    write(tmp_path, "prices/S03.csv", "")
    csv = CsvMarketDataProvider(tmp_path)
    whole = csv.load_prices(symbols, START, END)
    batched = loads.fetch_in_batches(csv.load_prices, "prices", "csv", symbols, START, END)
    pd.testing.assert_frame_equal(batched.frame, whole.frame)
    pd.testing.assert_frame_equal(batched.rejected, whole.rejected)
    assert batched.rejected["symbol"].tolist() == ["S03"] and len(batched.frame) == 11 * len(ROWS)
    assert said(caplog)[-1].startswith("prices: csv delivered 33 rows for 12 symbols x 21 sessions")
    assert said(caplog)[-1].endswith("; 1 symbol refused as a whole")


def test_a_long_fmp_load_reports_each_tenth_with_the_time_left(fmp, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger=LOGGER)
    symbols = [f"A{c}" for c in "ABCDEFGHIJKLMNOPQRST"]  # 20 symbols: batches of 2
    bars = [{"date": "2024-01-03", "open": 10.5, "high": 10.9, "low": 10.1, "close": 10.6, "adjClose": 10.6, "volume": 1100},
            {"date": "2024-01-02", "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "adjClose": 10.5, "volume": 1000}]
    for symbol in symbols:
        fmp.script(f"/api/v3/historical-price-full/{symbol}", Reply(body={"symbol": symbol, "historical": bars}))
    provider = FmpMarketDataProvider(API_KEY, symbols=symbols, base_url=fmp.url, corporate_actions=False,
                                     calls_per_minute=100_000)
    clock = Clock()

    def slow_fetch(batch, start, end):  # 5 s a symbol, as a rate-limited plan would take
        clock.now += 5 * len(batch)
        return provider.load_prices(batch, start, end)

    load = loads.fetch_in_batches(slow_fetch, "prices", "fmp", symbols, START, END, clock=clock)
    assert len(load.frame) == 40
    lines = said(caplog)
    # a tenth (2 symbols, 4 bars) in 10 s: 18 symbols left take 90 s at that pace
    assert lines[0] == "prices from fmp: 2 of 20 symbols (10 %), 4 rows so far; 10 s so far, about 1 min 30 s left"
    assert lines[8] == "prices from fmp: 18 of 20 symbols (90 %), 36 rows so far; 1 min 30 s so far, about 10 s left"
    # January 2024 from the 2nd to the 31st: 21 NYSE sessions (1 Jan and 15 Jan closed)
    assert lines[9] == "prices: fmp delivered 40 rows for 20 symbols x 21 sessions (2024-01-02 to 2024-01-31) in 1 min 40 s"
    assert len(lines) == 10
    assert all(API_KEY not in line for line in lines)


def test_a_load_ends_with_what_was_delivered_and_stored(market_engine, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    provider = SyntheticMarketProvider(SYNTHETIC)
    start, end = SYNTHETIC.start, SYNTHETIC.as_of
    log = logging.getLogger("test.load")
    loads.load_universe(market_engine, provider, start, end, run_id=None, log=log)
    loads.load_prices(market_engine, provider, start, end, today=end, run_id=None, log=log)
    with market_engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM vfr_ml.raw_prices")).scalar_one()
        quarantined = conn.execute(text("SELECT count(*) FROM vfr_ml.quarantine WHERE dataset = 'prices'")).scalar_one()
        sessions = conn.execute(text("SELECT count(DISTINCT trade_date) FROM vfr_ml.universe_membership")).scalar_one()
        members = conn.execute(text("SELECT count(*) FROM vfr_ml.universe_membership")).scalar_one()
    lines = said(caplog)
    assert len(lines) == 3  # a short load: no progress line, only what was done
    assert lines[0].startswith(f"universe: synthetic lists 6 symbols over {sessions} sessions ({start} to {end}); "
                               f"{members:,} (session, symbol) rows stored in ")
    assert lines[1].startswith(f"prices: synthetic delivered {stored + quarantined:,} rows for 6 symbols x {sessions} "
                               f"sessions ({start} to {end}) in ")
    assert lines[2].startswith(f"prices: stored {stored:,} rows and quarantined {quarantined:,} for {start} to {end} in ")
    assert stored > 6 * 50


def test_an_empty_universe_is_one_call_and_one_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    csv = CsvMarketDataProvider(tmp_path)
    load = loads.fetch_in_batches(csv.load_prices, "prices", "csv", [], START, END)
    assert load.frame.empty and load.rejected.empty
    lines = said(caplog)
    assert len(lines) == 1
    assert lines[0].startswith(f"prices: csv delivered 0 rows for 0 symbols x 21 sessions ({START} to {END}) in ")


def test_fmps_universe_reports_its_profile_requests(fmp, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger="vfr_ml_pipelines.lib.market_data.fmp_provider")
    symbols = [f"B{c}" for c in "ABCDEFGHIJKLMNOPQRST"]
    for symbol in symbols:
        fmp.script(f"/api/v3/profile/{symbol}", Reply(body=[{"symbol": symbol, "companyName": symbol, "sector": "Tech",
                                                            "ipoDate": "2010-06-29"}]))
    ticks = iter(range(0, 1000, 3))  # each reading of the clock is 3 s later: one per profile
    provider = FmpMarketDataProvider(API_KEY, symbols=symbols, base_url=fmp.url, calls_per_minute=100_000,
                                     clock=lambda: float(next(ticks)))
    load = provider.load_universe(END)
    assert len(load.frame) == 20
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("fmp_provider")]
    # silent for 10 s; the 4th profile at 12 s is the 2nd tenth: 16 left at 3 s each take 48 s
    assert lines[0] == "universe from fmp: 4 of 20 profiles (20 %); 12 s so far, about 48 s left"
    assert lines[-1] == "universe from fmp: 18 of 20 profiles (90 %); 54 s so far, about 6.0 s left"
    assert len(lines) == 8
