"""A feature set's manifest and the commit of its staged year files.

    <root>/<feature_set>/_manifest.json   columns, rows, days, lineage per year
    <root>/<feature_set>/.lock            writers serialise on it (fcntl)

The year files are the truth: a year file the manifest does not know is described from
the file itself (each file carries its lineage in its Parquet key-value metadata) at the
next commit. The manifest is replaced whole (temporary file, fsync, os.replace)."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import iso_day
from vfr_ml_pipelines.lib.features.offline_year_files import KEY_COLUMNS, fsync_dir, row_group_day_ranges, year_paths

MANIFEST_NAME = "_manifest.json"
LOCK_NAME = ".lock"
FORMAT_VERSION = "vfr-offline-feature-store/1"


def commit_years(
    set_dir: Path, feature_set: str, staged: dict[int, tuple[Path, Path, dict[str, Any]]], features: list[str],
    written_at: str, lineage_json: str,
) -> Path:
    """Move the staged year files (year -> (temporary file, target, manifest entry)) into
    place and update the manifest, under the set's lock; returns the manifest's path.
    ValueError, before anything moves, when the years this write keeps hold other columns."""
    with locked(set_dir):
        manifest = load_manifest(set_dir)
        on_disk = year_paths(set_dir)
        kept = sorted(set(on_disk) - set(staged))
        columns_kept = stored_columns(manifest, on_disk, kept)
        if kept and columns_kept is not None and set(columns_kept) != set(features):
            added = [c for c in features if c not in columns_kept]
            dropped = [c for c in columns_kept if c not in features]
            raise ValueError(
                f"feature set {feature_set!r} stores {len(columns_kept)} columns in years {kept} that this "
                f"write does not replace; this frame adds {added[:10]} and lacks {dropped[:10]}. Write every "
                "stored year at once to change the columns, or store the new columns as a new feature set"
            )
        columns = list(columns_kept) if kept and columns_kept is not None else list(features)
        for year in sorted(staged):
            temp, final, _ = staged[year]
            os.replace(temp, final)
            fsync_dir(final.parent)
        years = {str(y): e for y, e in (manifest.get("years") or {}).items() if int(y) in on_disk}
        for year in kept:
            if str(year) not in years:
                years[str(year)] = entry_from_file(on_disk[year], set_dir)
        for year in staged:
            years[str(year)] = staged[year][2]
        return save_manifest(set_dir, feature_set, columns, years, written_at, json.loads(lineage_json))


@contextmanager
def locked(set_dir: Path) -> Iterator[None]:
    """Held while year files move into place and the manifest changes (an exclusive fcntl
    lock on the set's `.lock`: writers of other years of the set wait, never tear it)."""
    with open(set_dir / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def load_manifest(set_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((set_dir / MANIFEST_NAME).read_text())
    except FileNotFoundError:
        return {}


def save_manifest(
    set_dir: Path,
    feature_set: str,
    columns: list[str],
    years: dict[str, dict[str, Any]],
    written_at: str,
    lineage: dict[str, Any],
) -> Path:
    ordered = dict(sorted(years.items()))
    firsts = [e["first_day"] for e in ordered.values() if e.get("first_day")]
    lasts = [e["last_day"] for e in ordered.values() if e.get("last_day")]
    manifest = {
        "format": FORMAT_VERSION,
        "feature_set": feature_set,
        "key_columns": list(KEY_COLUMNS),
        "columns": columns,
        "dtype": "float64",
        "rows": sum(int(e.get("rows", 0)) for e in ordered.values()),
        "first_day": min(firsts) if firsts else None,
        "last_day": max(lasts) if lasts else None,
        "written_at": written_at,
        "lineage": lineage,
        "years": ordered,
    }
    path = set_dir / MANIFEST_NAME
    temp = set_dir / f".{MANIFEST_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temp, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(set_dir)
    return path


def stored_columns(manifest: dict[str, Any], on_disk: dict[int, Path], kept: list[int]) -> list[str] | None:
    if not kept:
        return None
    if manifest.get("columns"):
        return list(manifest["columns"])
    schema = pq.read_schema(str(on_disk[kept[0]]))
    return [n for n in schema.names if n not in KEY_COLUMNS]


def entry_from_file(path: Path, set_dir: Path) -> dict[str, Any]:
    """A manifest entry for a year file, read from its footer."""
    footer = pq.read_metadata(str(path))
    meta = footer.schema.to_arrow_schema().metadata or {}
    lo, hi = row_group_day_ranges(footer)
    known_lo, known_hi = lo[lo >= 0], hi[hi >= 0]
    lineage = meta.get(b"vfr.lineage")
    return {
        "file": str(path.relative_to(set_dir)),
        "rows": footer.num_rows,
        "first_day": iso_day(int(known_lo.min())) if len(known_lo) else None,
        "last_day": iso_day(int(known_hi.max())) if len(known_hi) else None,
        "row_groups": footer.num_row_groups,
        "bytes": path.stat().st_size,
        "written_at": meta.get(b"vfr.written_at", b"").decode() or None,
        "lineage": json.loads(lineage) if lineage else {},
    }
