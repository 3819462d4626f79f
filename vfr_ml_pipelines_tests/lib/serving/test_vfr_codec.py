"""VFR's value format: JSON JavaScript's JSON.parse accepts, in VFR's envelope."""

from __future__ import annotations

import json

import pytest

from vfr_ml_pipelines.lib.serving import vfr_codec
from vfr_ml_pipelines.lib.serving.vfr_codec import MalformedEntryError, encode_entry, parse_js_json


def test_entry_requires_a_positive_ttl():
    with pytest.raises(ValueError, match="ttl"):
        encode_entry({}, now_ms=1, ttl=0, version="t")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["top", "nested dict", "list", "beside a legitimate None"])
def test_encoder_refuses_non_finite_numbers_wherever_they_are(bad, where):
    # orjson, the fast path, would write them as null: the encoder must refuse them instead
    value = {
        "top": bad,
        "nested dict": {"features": {"rsi_14": 50.0, "mom_5": bad}},
        "list": [1.0, [2.0, bad]],
        "beside a legitimate None": {"deployedAt": None, "x": bad},
    }[where]
    with pytest.raises(MalformedEntryError, match="non-finite"):
        vfr_codec.encode_js_json(value)


@pytest.mark.parametrize(
    "value",
    [
        {"symbol": "AAPL", "features": {"a": 0.1 + 0.2, "b": 1e-5, "c": -0.0, "d": 1e16, "e": 5e-324}},
        {"deployedAt": None, "name": "null"},  # a real None: goes through the stdlib encoder
        {1: "non-string key", "big": 2**70},  # orjson declines both; the stdlib writes them
        {"café": "ünïcode ✓", "quote": 'a "b" \\ c\n'},
        [True, False, 0, -1, 2**63 - 1],
    ],
)
def test_encoder_output_parses_back_to_what_the_stdlib_writes(value):
    encoded = vfr_codec.encode_js_json(value)
    assert isinstance(encoded, bytes)
    assert parse_js_json(encoded) == json.loads(json.dumps(value))


def test_encoder_accepts_numpy_floats_as_the_stdlib_does():
    np = pytest.importorskip("numpy")
    assert parse_js_json(vfr_codec.encode_js_json({"x": np.float64(0.25)})) == {"x": 0.25}
    with pytest.raises(MalformedEntryError, match="non-finite"):
        vfr_codec.encode_js_json({"x": np.float64("nan")})
