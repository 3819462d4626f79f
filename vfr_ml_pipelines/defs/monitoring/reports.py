"""What the monitoring assets and sensors share: their reports as Dagster metadata (tables,
inline plots), the flat record a sensor reads back from the latest materialization, and
whether a run a sensor requested has finished. Defines no asset, check, job or sensor."""

import base64
import math

import dagster as dg
import pandas as pd

_TYPES = {"b": "bool", "i": "int", "u": "int", "f": "float"}


def _cell(value: object) -> object:
    value = value.item() if hasattr(value, "item") else value  # numpy scalars to Python
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


def table_metadata(frame: pd.DataFrame, columns: list[str]) -> dg.TableMetadataValue:
    """`columns` of `frame` as a UI table (floats to 4 decimals, non-finite as empty)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(c, _TYPES.get(frame[c].dtype.kind, "string")) for c in columns])
    rows = [dg.TableRecord({c: _cell(v) for c, v in zip(columns, row)}) for row in frame[columns].itertuples(index=False)]
    return dg.MetadataValue.table(rows, schema=schema)


def png_markdown(pngs: dict[str, bytes], empty: str) -> dg.MarkdownMetadataValue:
    """PNG plots inline in one markdown value (the UI shows them on the materialization)."""
    text = "\n\n".join(f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})" for name, png in pngs.items())
    return dg.MetadataValue.md(text or empty)


def metadata_record(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict | None:
    """The plain values of the latest materialization's metadata of `key` (None: never materialized)."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def retraining_finished(instance: dg.DagsterInstance, tag: str, run_key: str | None) -> bool:
    """Whether the run a sensor requested (tagged `tag`=`run_key`) has reached a terminal state."""
    if run_key is None:
        return False
    runs = instance.get_runs(filters=dg.RunsFilter(tags={tag: run_key}), limit=1)
    return bool(runs) and runs[0].is_finished
