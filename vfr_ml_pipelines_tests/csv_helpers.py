"""Vendor CSV folders for the CSV provider's tests: one way to write a file, and the small
clean price export (three January 2024 sessions) the tests put a bad file beside."""

from __future__ import annotations

from datetime import date
from pathlib import Path

START, END, TODAY = date(2024, 1, 2), date(2024, 1, 31), date(2024, 2, 15)
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
# the sessions of 2024-01-02, 03 and 04
ROWS = [
    "2024-01-02,10.00,11.00,9.00,10.50,10.40,1000",
    "2024-01-03,10.50,10.90,10.10,10.60,10.50,1100",
    "2024-01-04,10.60,10.80,10.20,10.30,10.20,1200",
]


def write(root: Path, relative: str, content: str | bytes) -> Path:
    """`content` at `root/relative` (folders made as needed): bytes as they are, text as UTF-8."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def price_file(root: Path, symbol: str, lines: list[str], header: str = HEADER) -> Path:
    """`prices/{symbol}.csv` with `header` and `lines`."""
    return write(root, f"prices/{symbol}.csv", "\n".join([header, *lines]) + "\n")
