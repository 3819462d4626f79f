"""The binary framing of stored models (`lib/models/framing.py`)."""

from __future__ import annotations

import pytest

from vfr_ml_pipelines.lib.models import framing

MAGIC = b"TESTMAG\n"


@pytest.mark.parametrize("magic,length_bytes", [(b"", 4), (MAGIC, 8)])
def test_round_trip_gives_back_the_header_and_the_body(magic, length_bytes):
    header = {"format": "x/1", "names": ["a", "b"], "weight": 0.1 + 0.2}
    body = bytes(range(256)) * 3
    blob = framing.pack(header, body, magic=magic, length_bytes=length_bytes)
    assert blob.startswith(magic)
    assert framing.unpack(blob, "test blob", magic=magic, length_bytes=length_bytes) == (header, body)


def test_sorted_keys_are_a_choice_of_the_writer():
    assert framing.pack({"b": 1, "a": 2}, b"", sort_keys=True) == b"\x00\x00\x00\x10" + b'{"a": 2, "b": 1}'
    assert framing.unpack(framing.pack({"b": 1, "a": 2}, b""), "t") == ({"b": 1, "a": 2}, b"")


def test_wrong_magic_is_named():
    blob = framing.pack({"a": 1}, b"body", magic=MAGIC, length_bytes=8)
    with pytest.raises(ValueError, match=r"not a test blob \(wrong magic bytes\)"):
        framing.unpack(b"XX" + blob, "test blob", magic=MAGIC, length_bytes=8)
    with pytest.raises(ValueError, match="wrong magic bytes"):
        framing.unpack(b"", "test blob", magic=MAGIC, length_bytes=8)


@pytest.mark.parametrize("cut", [0, 2, 4, 10])
def test_a_blob_truncated_before_the_end_of_its_header_is_named(cut):
    blob = framing.pack({"format": "x/1", "names": ["a", "b"]}, b"body")
    with pytest.raises(ValueError, match=r"not a test blob: truncated"):
        framing.unpack(blob[:cut], "test blob")


def test_a_header_that_is_not_a_json_object_is_corrupt():
    with pytest.raises(ValueError, match="test blob has a corrupt header"):
        framing.unpack(b"\x00\x00\x00\x03{x}", "test blob")
    with pytest.raises(ValueError, match="test blob has a corrupt header .*list"):
        framing.unpack(b"\x00\x00\x00\x02[]", "test blob")
