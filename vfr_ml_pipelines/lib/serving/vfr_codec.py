"""VFR's value format: JSON that JavaScript's JSON.parse accepts, in VFR's envelope.

VFR (ioredis with `keyPrefix`) stores every value as the JSON of
`{"data", "timestamp" (ms, written at), "ttl" (s), "source", "version"}`. A value its
JSON.parse rejects (NaN, Infinity) marks Redis as unavailable for the whole VFR process, so
this codec refuses to write one and always reports one it reads (MalformedEntryError).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# every envelope this project writes carries it: the kill switch's mark of "ours"
SOURCE = "vfr-ml-pipelines"


class MalformedEntryError(ValueError):
    """A value VFR's `JSON.parse` would reject. In VFR one such entry marks Redis as
    unavailable for the whole process, so it is never written and always reported."""


def _reject_constant(token: str) -> Any:
    raise MalformedEntryError(f"{token} is not valid JSON (JavaScript's JSON.parse rejects it)")


def parse_js_json(raw: str | bytes) -> Any:
    """Parse like JavaScript's JSON.parse: NaN, Infinity and -Infinity are errors."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedEntryError(f"not valid JSON: {exc}") from exc


# one encoder for every call: json.dumps with options builds a new one each time
_JS_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _strict_json(value: Any) -> str:
    try:
        return _JS_ENCODER.encode(value)
    except ValueError as exc:
        raise MalformedEntryError(f"payload holds a non-finite number: {exc}") from exc


def encode_js_json(value: Any) -> bytes:
    """UTF-8 JSON that JavaScript's JSON.parse accepts; refuses NaN and Infinity instead of
    writing them.

    orjson writes it (about 5x the stdlib's speed; encoding is most of a publish's cost). It
    writes a non-finite float as `null` instead of refusing it, so any output that holds
    `null` (a None, or a NaN in disguise), and any value orjson declines (non-string keys,
    integers over 64 bits, numpy scalars), is encoded again by the strict stdlib encoder,
    which raises on NaN and Infinity. Our payloads hold no None, so that path is rare."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        out = None
    if out is None or b"null" in out:
        return _strict_json(value).encode("utf-8")
    return out


def dumps_js_json(value: Any) -> str:
    """`encode_js_json` as text."""
    return encode_js_json(value).decode("utf-8")


def encode_entry(data: Any, *, now_ms: int, ttl: int, version: str, source: str = SOURCE) -> str:
    if int(ttl) <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    return dumps_js_json({"data": data, "timestamp": int(now_ms), "ttl": int(ttl), "source": source, "version": version})


def validate_entry(raw: str | bytes) -> dict[str, Any]:
    """Strict check of one stored value: valid JS JSON in the full envelope shape."""
    entry = parse_js_json(raw)
    if not isinstance(entry, dict):
        raise MalformedEntryError(f"envelope must be a JSON object, got {type(entry).__name__}")
    for name, kinds in (("data", object), ("timestamp", (int, float)), ("ttl", (int, float)), ("source", str), ("version", str)):
        if name not in entry:
            raise MalformedEntryError(f"envelope lacks {name!r}")
        if not isinstance(entry[name], kinds) or isinstance(entry[name], bool):
            raise MalformedEntryError(f"envelope field {name!r} has type {type(entry[name]).__name__}")
    return entry



def encode_payload(key: str, data: Any) -> bytes:
    """`encode_js_json(data)` with `key` named in the error of a payload that cannot be written."""
    try:
        return encode_js_json(data)
    except MalformedEntryError as exc:
        raise MalformedEntryError(f"{key}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise MalformedEntryError(f"{key}: payload is not JSON-serialisable: {exc}") from None


def envelope_tail(*, now_ms: int, ttl: int, source_json: bytes, version_json: bytes) -> bytes:
    """What follows the data in an envelope; `source_json` and `version_json` are already
    encoded, so a publish encodes them once for all its entries."""
    return b',"timestamp":%d,"ttl":%d,"source":%s,"version":%s}' % (now_ms, ttl, source_json, version_json)


def wrap_envelope(data_json: bytes, tail: bytes) -> bytes:
    """The envelope around already-serialised data: the same bytes as `encode_entry`
    without serialising the payload a second time."""
    return b'{"data":' + data_json + tail
