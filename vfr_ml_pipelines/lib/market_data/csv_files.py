"""Reading a vendor's CSV file: bytes to text (gzip, byte-order marks, UTF-8 only
otherwise), text to a header and numbered rows, and the rejected row that stands for a
whole refused file. Every refusal names the file and where in it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vfr_ml_pipelines.lib.market_data.provider import ProviderError
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS, SchemaError, empty_rejected

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


def read_rows(
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


def require_columns(
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


def file_rejection(dataset: str, symbol: str, path: Path, error: Exception) -> dict:
    """The rejected row that stands for a whole refused file: day None (no bar of it is
    kept), field from the error (`header` for missing columns, else `file`)."""
    field = getattr(error, "field", None) or ("header" if getattr(error, "missing", ()) else "file")
    return {
        "dataset": dataset, "symbol": symbol, "day": None, "field": field,
        "reason": f"{error}; the whole file is refused, the other symbols go on",
        "raw": {"file": str(path), "error": type(error).__name__},
    }


def rejected_frame(records: list[dict]) -> pd.DataFrame:
    if not records:
        return empty_rejected()
    return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS)).astype(object)
