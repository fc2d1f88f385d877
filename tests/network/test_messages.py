"""The wire format: versioned, schema-checked headers and raw array frames checked against them."""

import json

import numpy as np
import pytest

from labctl.network import ProtocolError
from labctl.network.messages import (
    ERROR_CODES,
    MAX_HEADER_BYTES,
    Admit,
    ArraySpec,
    Bye,
    CoreInfo,
    Error,
    Heartbeat,
    Hello,
    Job,
    Result,
    decode,
    encode,
)


def _job_frames(a, b, **fields):
    return encode(Job(job="j1", a=ArraySpec.of(a), b=ArraySpec.of(b), **fields), [a, b])


def test_every_kind_round_trips_with_its_arrays():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((5, 4)).astype(np.float32)
    product, sigma = a @ b, np.full((2, 3, 4), 0.01)
    messages = [
        (Hello(cores=2, edge="edge 1"), []),
        (Admit(cores=[CoreInfo(name="occ1", calibrated=True)], heartbeat_s=1, timeout_s=5, max_array_bytes=10), []),
        (Job(job="e1-7", a=ArraySpec.of(a), b=ArraySpec.of(b), return_error=True, scale_a=2.5), [a, b]),
        (Result(job="e1-7", product=ArraySpec.of(product), error=ArraySpec.of(sigma),
                stats={"macs": 120, "wall_s": 0.1, "calibrated": True, "core": "occ1"}), [product, sigma]),
        (Error(code="schema", message="bad", job="e1-7"), []),
        (Heartbeat(), []),
        (Bye(), []),
    ]
    for header, arrays in messages:
        frames = encode(header, arrays)
        assert json.loads(frames[0])["v"] == 1
        got, got_arrays = decode(frames)
        assert got == header
        assert len(got_arrays) == len(arrays)
        for sent, received in zip(arrays, got_arrays):
            assert received.dtype == sent.dtype and np.array_equal(received, sent)
            assert not received.flags.writeable  # a view of the frame, not a copy


@pytest.mark.parametrize("frames, code", [
    ([], "malformed"),
    ([b"\x80\x04pickle"], "malformed"),
    ([b"[1, 2]"], "malformed"),
    ([b'{"v": 2, "kind": "bye"}'], "version"),
    ([b'{"kind": "bye"}'], "version"),
    ([b'{"v": 1, "kind": "launch"}'], "schema"),
    ([b'{"v": 1, "kind": "bye", "extra": 1}'], "schema"),
    ([b'{"v": 1, "kind": "hello", "cores": 0}'], "schema"),
    ([b'{"v": 1, "kind": "bye"}', b"unannounced"], "array"),
    ([b" " * (MAX_HEADER_BYTES + 1)], "too_large"),
])
def test_bad_headers_get_their_error_code(frames, code):
    with pytest.raises(ProtocolError) as caught:
        decode(frames)
    assert caught.value.code == code and code in ERROR_CODES


def test_array_frames_are_checked_against_the_header():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    header, fa, fb = _job_frames(a, b)
    spec = json.loads(header)
    for frames, code in [
        ([header, fa], "array"),                    # a frame missing
        ([header, fa, fb[:-8]], "array"),           # a short frame
        ([header, fa, fb + b"\0" * 8], "array"),    # a long one
    ]:
        with pytest.raises(ProtocolError) as caught:
            decode(frames)
        assert caught.value.code == code
    spec["a"]["nbytes"] = 40                         # disagrees with dtype x shape
    with pytest.raises(ProtocolError, match="array: the first array"):
        decode([json.dumps(spec).encode(), fa, fb])
    with pytest.raises(ProtocolError) as caught:
        decode([header, fa, fb], max_array_bytes=95)
    assert caught.value.code == "too_large"
    spec["a"].update(nbytes=2**62, shape=[2**31, 2**31])  # never allocated: refused from the header alone
    with pytest.raises(ProtocolError, match="too_large"):
        decode([json.dumps(spec).encode(), fa, fb])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    a = np.ones((2, 3))
    a[1, 2] = bad
    with pytest.raises(ProtocolError) as caught:
        decode(_job_frames(a, np.ones((3, 4))))
    assert caught.value.code == "not_finite"


def test_schema_errors_do_not_echo_values():
    secret = "s3cr3t-payload-value"
    header = {"v": 1, "kind": "job", "job": secret + "/", "a": {"dtype": "float64", "shape": [1], "nbytes": 8},
              "b": {"dtype": "float64", "shape": [1], "nbytes": 8}}
    with pytest.raises(ProtocolError) as caught:
        decode([json.dumps(header).encode(), b"\0" * 8, b"\0" * 8])
    assert caught.value.code == "schema" and secret not in str(caught.value)
    header["job"] = "j1"
    header["scale_b"] = float("nan")  # JSON's NaN extension is parsed, then refused by the schema
    with pytest.raises(ProtocolError, match="schema: job.scale_b"):
        decode([json.dumps(header).encode(), b"\0" * 8, b"\0" * 8])
