"""The offline Parquet feature store: exact round trips, per-year replacement, filters,
validation, crash safety and two concurrent writers."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from vfr_ml_pipelines.lib.features import offline_store, offline_year_files
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore

FEATURES = ["rsi_14", "pe_ratio", "tone"]
SYMBOLS = ["AAPL", "BRK.B", "MSFT", "ZZZ"]


def wide_frame(start: date, end: date, *, seed: int = 0, symbols=SYMBOLS, features=FEATURES) -> pd.DataFrame:
    """Weekdays from start to end x symbols, shuffled, with NaN and awkward floats."""
    days = [d.date() for d in pd.bdate_range(start, end)]
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "symbol": np.tile(np.array(symbols, dtype=object), len(days)),
            "trade_date": np.repeat(np.array(days, dtype=object), len(symbols)),
        }
    )
    for name in features:
        values = rng.standard_normal(len(frame)) * 10.0 ** rng.integers(-8, 8, len(frame))
        values[rng.random(len(frame)) < 0.1] = np.nan
        frame[name] = values
    frame.loc[0, features[0]] = -0.0
    frame.loc[1, features[0]] = 5e-324  # the smallest subnormal
    frame.loc[2, features[0]] = 1.7976931348623157e308
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def assert_bit_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for name in expected.columns[2:]:
        assert np.array_equal(got[name].to_numpy().view(np.int64), expected[name].to_numpy().view(np.int64)) or np.array_equal(
            got[name].to_numpy(), expected[name].to_numpy(), equal_nan=True
        ), name
        # -0.0 keeps its sign bit
        assert np.array_equal(np.signbit(got[name].to_numpy()), np.signbit(expected[name].to_numpy())), name


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_ino


@pytest.fixture
def store(tmp_path: Path) -> OfflineFeatureStore:
    return OfflineFeatureStore(tmp_path / "feature_store", row_group_rows=40)


def test_round_trip_is_exact_including_nan(store: OfflineFeatureStore) -> None:
    frame = wide_frame(date(2020, 11, 2), date(2022, 2, 28))
    report = store.write("technical-v2", frame, lineage={"code_version": "1.2.3", "input": ["2020-11-02", "2022-02-28"]})

    assert report.years == (2020, 2021, 2022)
    assert report.rows == len(frame)
    assert [p.relative_to(store.root).as_posix() for p in report.files] == [
        f"technical-v2/year={y}/data.parquet" for y in (2020, 2021, 2022)
    ]
    back = store.read("technical-v2")
    assert list(back.columns) == ["symbol", "trade_date", *FEATURES]
    assert all(type(d) is date for d in back["trade_date"])
    assert back[FEATURES].isna().sum().sum() == frame[FEATURES].isna().sum().sum() > 0
    assert_bit_identical(back, canonical(frame))

    # files hold float64 (never float32), sorted by (trade_date, symbol), row groups of whole days
    file = pq.ParquetFile(report.files[1])
    assert all(str(file.schema_arrow.field(n).type) == "double" for n in FEATURES)
    table = file.read()
    assert table.to_pandas().equals(canonical(table.to_pandas()))
    groups = [file.read_row_group(i).column("trade_date").to_pylist() for i in range(file.num_row_groups)]
    assert file.num_row_groups > 1
    assert all(a[-1] < b[0] for a, b in zip(groups[:-1], groups[1:]))
    assert file.metadata.row_group(0).column(2).compression.lower().startswith("lz4")


def test_manifest_carries_columns_rows_days_and_lineage(store: OfflineFeatureStore) -> None:
    frame = wide_frame(date(2021, 12, 20), date(2022, 1, 10))
    lineage = {"code_version": "abc123", "input_first_day": date(2021, 12, 20), "input_last_day": "2022-01-10"}
    store.write("fundamental-v1", frame, lineage=lineage)
    manifest = store.manifest("fundamental-v1")
    assert manifest["columns"] == FEATURES
    assert manifest["rows"] == len(frame)
    assert manifest["first_day"] == "2021-12-20" and manifest["last_day"] == "2022-01-10"
    assert manifest["lineage"] == {"code_version": "abc123", "input_first_day": "2021-12-20", "input_last_day": "2022-01-10"}
    assert manifest["written_at"]
    assert sorted(manifest["years"]) == ["2021", "2022"]
    assert sum(e["rows"] for e in manifest["years"].values()) == len(frame)
    assert manifest == json.loads((store.root / "fundamental-v1" / "_manifest.json").read_text())
    # each file describes itself too
    meta = pq.read_schema(store.root / "fundamental-v1" / "year=2022" / "data.parquet").metadata
    assert json.loads(meta[b"vfr.lineage"])["code_version"] == "abc123"


def test_replacing_one_year_leaves_the_others_untouched(store: OfflineFeatureStore) -> None:
    old = wide_frame(date(2020, 12, 1), date(2021, 1, 29), seed=1)
    store.write("sentiment-v1", old, lineage={"run": 1})
    year_2020 = store.root / "sentiment-v1" / "year=2020" / "data.parquet"
    year_2021 = store.root / "sentiment-v1" / "year=2021" / "data.parquet"
    before_2020, before_2021 = digest(year_2020), digest(year_2021)

    new_2021 = wide_frame(date(2021, 1, 4), date(2021, 2, 26), seed=2)
    report = store.write("sentiment-v1", new_2021, lineage={"run": 2})

    assert report.years == (2021,)
    assert digest(year_2020) == before_2020  # same bytes, same inode: never rewritten
    assert digest(year_2021) != before_2021
    back = store.read("sentiment-v1")
    expected = canonical(pd.concat([old[[d.year == 2020 for d in old["trade_date"]]], new_2021]))
    assert_bit_identical(back, expected)
    manifest = store.manifest("sentiment-v1")
    assert manifest["years"]["2020"]["lineage"] == {"run": 1}
    assert manifest["years"]["2021"]["lineage"] == {"run": 2}
    assert manifest["lineage"] == {"run": 2}
    assert manifest["rows"] == len(expected)
    assert manifest["last_day"] == "2021-02-26"


def test_filters_are_pushed_down_and_results_sorted(store: OfflineFeatureStore) -> None:
    frame = wide_frame(date(2019, 12, 2), date(2021, 3, 31))
    store.write("feature-matrix-v1", frame, lineage={})
    expected = canonical(frame)

    got = store.read("feature-matrix-v1", columns=["tone", "rsi_14"], start=date(2020, 12, 30), end=date(2021, 1, 5),
                     symbols=["ZZZ", "AAPL"])
    days = expected["trade_date"]
    mask = (days >= date(2020, 12, 30)) & (days <= date(2021, 1, 5)) & expected["symbol"].isin(["ZZZ", "AAPL"])
    assert_bit_identical(got, expected.loc[mask, ["symbol", "trade_date", "tone", "rsi_14"]].reset_index(drop=True))
    assert got["trade_date"].min() == date(2020, 12, 30) and got["trade_date"].max() == date(2021, 1, 5)

    only_start = store.read("feature-matrix-v1", start=date(2021, 3, 30))
    assert sorted(set(only_start["trade_date"])) == [date(2021, 3, 30), date(2021, 3, 31)]
    only_end = store.read("feature-matrix-v1", end=date(2019, 12, 3), symbols="MSFT")
    assert list(only_end["symbol"]) == ["MSFT", "MSFT"]

    nothing = store.read("feature-matrix-v1", columns=["pe_ratio"], start=date(2030, 1, 1))
    assert nothing.empty and list(nothing.columns) == ["symbol", "trade_date", "pe_ratio"]
    with pytest.raises(KeyError, match="no_such_feature"):
        store.read("feature-matrix-v1", columns=["no_such_feature"])

    assert store.latest_day("feature-matrix-v1") == date(2021, 3, 31)
    assert store.latest_day("feature-matrix-v1", on_or_before=date(2021, 1, 2)) == date(2021, 1, 1)
    assert store.latest_day("feature-matrix-v1", on_or_before=date(2020, 7, 4)) == date(2020, 7, 3)
    with pytest.raises(LookupError):
        store.latest_day("feature-matrix-v1", on_or_before=date(2019, 1, 1))

    vectors = store.vectors("feature-matrix-v1", date(2020, 6, 3), ["MSFT", "NOPE", "AAPL"], columns=["tone", "pe_ratio"])
    assert list(vectors["symbol"]) == ["MSFT", "AAPL"]  # requested order, absent symbols left out
    want = expected[(expected["trade_date"] == date(2020, 6, 3))].set_index("symbol").loc[["MSFT", "AAPL"], ["tone", "pe_ratio"]]
    np.testing.assert_array_equal(vectors[["tone", "pe_ratio"]].to_numpy(), want.to_numpy())
    assert list(store.vectors("feature-matrix-v1", date(2020, 6, 3), ["AAPL"]).columns) == ["symbol", "trade_date", *FEATURES]
    assert store.vectors("feature-matrix-v1", date(2024, 6, 3), ["AAPL"]).empty


def test_missing_feature_set_names_it_and_the_root(store: OfflineFeatureStore) -> None:
    for call in (lambda: store.read("nope-v1"), lambda: store.latest_day("nope-v1"), lambda: store.manifest("nope-v1"),
                 lambda: store.vectors("nope-v1", date(2020, 1, 2), ["AAPL"])):
        with pytest.raises(LookupError) as raised:
            call()
        assert "nope-v1" in str(raised.value) and str(store.root) in str(raised.value)
    with pytest.raises(ValueError, match="feature set name"):
        store.read("../escape")


def test_invalid_frames_are_rejected_naming_column_and_example(store: OfflineFeatureStore) -> None:
    frame = canonical(wide_frame(date(2021, 1, 4), date(2021, 1, 8)))

    duplicated = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate \(symbol, trade_date\).*'BRK.B' on 2021-01-05"):
        store.write("x-v1", duplicated, lineage={})

    infinite = frame.copy()
    infinite.loc[6, "pe_ratio"] = -np.inf
    with pytest.raises(ValueError, match=r"'pe_ratio'.*-inf.*'MSFT' on 2021-01-05"):
        store.write("x-v1", infinite, lineage={})

    with pytest.raises(ValueError, match="'trade_date'"):
        store.write("x-v1", frame.drop(columns=["trade_date"]), lineage={})
    with pytest.raises(ValueError, match="'symbol'"):
        store.write("x-v1", frame.drop(columns=["symbol"]), lineage={})

    as_int = frame.assign(tone=np.arange(len(frame)))
    with pytest.raises(ValueError, match=r"'tone' has dtype int64.*'AAPL' on 2021-01-04"):
        store.write("x-v1", as_int, lineage={})
    as_text = frame.assign(tone="high")
    with pytest.raises(ValueError, match="'tone' has dtype object"):
        store.write("x-v1", as_text, lineage={})
    timestamps = frame.assign(trade_date=pd.to_datetime(frame["trade_date"]) + pd.Timedelta(hours=9))
    with pytest.raises(ValueError, match="'trade_date' must hold dates"):
        store.write("x-v1", timestamps, lineage={})
    assert not (store.root / "x-v1").exists() or not list((store.root / "x-v1").rglob("*.parquet"))


def test_accepted_inputs_are_normalised(store: OfflineFeatureStore) -> None:
    frame = canonical(wide_frame(date(2021, 1, 4), date(2021, 1, 8)))
    midnight = frame.assign(trade_date=pd.to_datetime(frame["trade_date"]), tone=frame["tone"].astype("float32"))
    store.write("x-v1", midnight, lineage={})
    back = store.read("x-v1")
    assert back["tone"].dtype == np.float64 and all(type(d) is date for d in back["trade_date"])
    np.testing.assert_array_equal(back["tone"].to_numpy(), frame["tone"].astype("float32").astype("float64").to_numpy())
    empty = store.write("x-v1", frame.iloc[:0], lineage={})
    assert empty.years == () and empty.rows == 0
    assert len(store.read("x-v1")) == len(frame)


def test_changing_columns_needs_every_stored_year(store: OfflineFeatureStore) -> None:
    store.write("x-v1", wide_frame(date(2020, 12, 28), date(2021, 1, 8)), lineage={})
    narrower = wide_frame(date(2021, 1, 4), date(2021, 1, 8), features=["rsi_14", "tone"])
    with pytest.raises(ValueError, match="pe_ratio"):
        store.write("x-v1", narrower, lineage={})
    assert store.manifest("x-v1")["columns"] == FEATURES
    # a write covering every stored year may change the columns
    store.write("x-v1", wide_frame(date(2020, 12, 28), date(2021, 1, 8), features=["rsi_14", "tone"]), lineage={})
    assert store.manifest("x-v1")["columns"] == ["rsi_14", "tone"]
    assert list(store.read("x-v1").columns) == ["symbol", "trade_date", "rsi_14", "tone"]


def test_a_crash_mid_write_leaves_the_previous_files(store: OfflineFeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    old = wide_frame(date(2020, 12, 1), date(2021, 1, 29), seed=3)
    store.write("technical-v2", old, lineage={"run": "old"})
    set_dir = store.root / "technical-v2"
    files = sorted(set_dir.glob("year=*/data.parquet"))
    before = [digest(p) for p in files]
    manifest_before = (set_dir / "_manifest.json").read_text()

    real = offline_year_files.frame_to_table
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated) while converting the second year")
        return real(*args, **kwargs)

    monkeypatch.setattr(offline_year_files, "frame_to_table", failing)
    new = wide_frame(date(2020, 12, 1), date(2021, 1, 29), seed=4)
    with pytest.raises(OSError, match="simulated"):
        store.write("technical-v2", new, lineage={"run": "new"})

    assert len(calls) == 2
    assert [digest(p) for p in files] == before  # the first year's new file was never moved into place
    assert (set_dir / "_manifest.json").read_text() == manifest_before
    assert not [p for p in set_dir.rglob("*") if p.name.endswith(".tmp")]
    assert_bit_identical(store.read("technical-v2"), canonical(old))

    monkeypatch.setattr(offline_year_files, "frame_to_table", real)
    store.write("technical-v2", new, lineage={"run": "new"})
    assert_bit_identical(store.read("technical-v2"), canonical(new))


def _write_year_repeatedly(root: str, year: int, rounds: int, barrier) -> None:
    store = OfflineFeatureStore(Path(root), row_group_rows=40)
    barrier.wait()
    for i in range(rounds):
        frame = wide_frame(date(year, 1, 1), date(year, 3, 31), seed=year * 100 + i)
        store.write("concurrent-v1", frame, lineage={"writer_year": year, "round": i})


def test_two_processes_writing_different_years(tmp_path: Path) -> None:
    root = tmp_path / "feature_store"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    rounds = 8
    workers = [context.Process(target=_write_year_repeatedly, args=(str(root), year, rounds, barrier)) for year in (2019, 2020)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]

    store = OfflineFeatureStore(root)
    expected = canonical(pd.concat([wide_frame(date(y, 1, 1), date(y, 3, 31), seed=y * 100 + rounds - 1) for y in (2019, 2020)]))
    assert_bit_identical(store.read("concurrent-v1"), expected)
    manifest = store.manifest("concurrent-v1")
    assert sorted(manifest["years"]) == ["2019", "2020"]
    assert manifest["rows"] == len(expected)
    assert manifest["first_day"] == "2019-01-01" and manifest["last_day"] == "2020-03-31"
    for year in (2019, 2020):
        entry = manifest["years"][str(year)]
        assert entry["lineage"] == {"writer_year": year, "round": rounds - 1}
        assert entry["rows"] == pq.read_metadata(root / "concurrent-v1" / f"year={year}" / "data.parquet").num_rows
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_readers_keep_a_consistent_file_while_it_is_replaced(store: OfflineFeatureStore) -> None:
    first = wide_frame(date(2021, 1, 4), date(2021, 2, 26), seed=5)
    store.write("x-v1", first, lineage={})
    day = date(2021, 2, 1)
    before = store.vectors("x-v1", day, SYMBOLS)
    second = wide_frame(date(2021, 1, 4), date(2021, 2, 26), seed=6)
    store.write("x-v1", second, lineage={})
    after = store.vectors("x-v1", day, SYMBOLS)  # the replaced file is reopened, not read with a stale footer
    expected = canonical(second)
    expected = expected[expected["trade_date"] == day].reset_index(drop=True)
    assert_bit_identical(after, expected)
    assert not before.equals(after)
    assert store.feature_sets() == ["x-v1"]


def test_default_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFR_FEATURE_STORE_DIR", str(tmp_path / "elsewhere"))
    assert offline_store.default_root() == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("VFR_FEATURE_STORE_DIR")
    monkeypatch.setenv("VFR_ML_HOME", str(tmp_path / "home"))
    assert offline_store.default_root() == (tmp_path / "home").resolve() / "feature_store"

