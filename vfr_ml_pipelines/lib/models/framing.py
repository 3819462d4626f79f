"""The binary framing every stored model uses: [magic] + header length (big-endian) + JSON
header + body. `algorithms.Regressor` frames with a magic and an 8-byte length, the
ensemble's payload and the serving model with no magic and a 4-byte length; the body is
the inner model's own bytes."""

from __future__ import annotations

import json
from typing import Any


def pack(header: dict[str, Any], body: bytes, *, magic: bytes = b"", length_bytes: int = 4, sort_keys: bool = False) -> bytes:
    encoded = json.dumps(header, sort_keys=sort_keys).encode()
    return magic + len(encoded).to_bytes(length_bytes, "big") + encoded + body


def unpack(blob: bytes, what: str, *, magic: bytes = b"", length_bytes: int = 4) -> tuple[dict[str, Any], bytes]:
    """(header, body) of bytes `pack` wrote. ValueError naming `what` (e.g. "serving model")
    when the magic is wrong, the blob ends inside the header, or the header is not a JSON object."""
    blob = bytes(blob)
    if magic and not blob.startswith(magic):
        raise ValueError(f"not a {what} (wrong magic bytes)")
    start = len(magic) + length_bytes
    if len(blob) < start:
        raise ValueError(f"not a {what}: truncated, {len(blob)} bytes is too short for the header length")
    size = int.from_bytes(blob[len(magic) : start], "big")
    if start + size > len(blob):
        raise ValueError(f"not a {what}: truncated inside its {size}-byte header")
    try:
        header = json.loads(blob[start : start + size])
    except ValueError as exc:
        raise ValueError(f"{what} has a corrupt header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{what} has a corrupt header (a JSON {type(header).__name__}, not an object)")
    return header, blob[start + size :]
