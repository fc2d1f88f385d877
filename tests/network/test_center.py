"""The center over loopback: only allowed keys, error replies to bad messages, admission limits."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import zmq

import labctl
from labctl.network import AdmissionRefused, CenterUnavailable, KeyRefused, fingerprint, load_public, load_secret
from labctl.network.messages import ArraySpec, Hello, Job, encode

TIMEOUT_S = 20.0


def _edge(center, keys, name="edge1", **options):
    return labctl.connect(center.endpoint, key=keys[name][1], center_key=keys["center"][0],
                          timeout_s=options.pop("timeout_s", TIMEOUT_S), **options)


class RawEdge:
    """A CURVE DEALER speaking the protocol by hand, to send what a well-behaved client never would."""

    def __init__(self, center, keys, name="edge1"):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.curve_serverkey = load_public(keys["center"][0])
        self.socket.curve_publickey, self.socket.curve_secretkey = load_secret(keys[name][1])
        self.socket.connect(center.endpoint)

    def ask(self, frames: list[bytes]) -> dict:
        self.socket.send_multipart(frames)
        assert self.socket.poll(TIMEOUT_S * 1000), "no reply from the center"
        reply = self.socket.recv_multipart()
        return json.loads(reply[0]) | {"frames": len(reply)}

    def close(self):
        self.socket.close()
        self.context.term()


def _job(job_id, a, b, **fields):
    return encode(Job(job=job_id, a=ArraySpec.of(a), b=ArraySpec.of(b), **fields), [a, b])


def test_unknown_key_is_refused_and_logged_while_others_keep_working(shared_center, keys):
    with pytest.raises(KeyRefused, match="refused this edge's key"):
        _edge(shared_center, keys, "rogue", timeout_s=10)
    rogue = fingerprint(load_public(keys["rogue"][0]))
    shared_center.wait_for_log(rf"WARNING labctl\.network\.center: refused edge key {rogue} from 127\.0\.0\.1")
    with _edge(shared_center, keys, "edge2") as remote:
        a, b = np.ones((2, 16)), np.ones((16, 3))
        assert remote.matmul(a, b).shape == (2, 3)
    assert shared_center.process.poll() is None


def test_bad_messages_get_error_replies_and_the_center_keeps_serving(shared_center, keys):
    raw = RawEdge(shared_center, keys)
    ok_a, ok_b = np.full((2, 16), 0.5), np.full((16, 3), 0.25)
    try:
        header, fa, fb = _job("j1", ok_a, ok_b)
        short = json.loads(header) | {"a": {"dtype": "float64", "shape": [2, 16], "nbytes": 200}}
        nan_a = ok_a.copy()
        nan_a[0, 0] = np.nan
        big = np.ones((40, 16))  # 5120 bytes > 4096
        cases = [
            ([b"\x80\x04\x95pickled"], "malformed"),
            ([b"[]"], "malformed"),
            ([b'{"v": 9, "kind": "hello"}'], "version"),
            ([b'{"v": 1, "kind": "reboot"}'], "schema"),
            ([b'{"v": 1, "kind": "hello", "cores": 1, "priority": 9}'], "schema"),
            ([header, fa, fb], "not_admitted"),                               # a job before hello
            (encode(Hello(cores=2)), "too_many_cores"),                       # the center has 1
            (encode(Hello(cores=1)), "admit"),
            ([json.dumps(short).encode(), fa, fb], "array"),                  # header and frame disagree
            ([header, fa], "array"),                                          # a frame missing
            (_job("j2", big, np.ones((16, 3))), "too_large"),
            (_job("j3", nan_a, ok_b), "not_finite"),
            (_job("j4", np.ones((2, 5)), ok_b), "job_failed"),                 # inner dimensions disagree
            ([b'{"v": 1, "kind": "admit", "cores": [{"name": "x", "calibrated": true}], "heartbeat_s": 1, '
              b'"timeout_s": 2, "max_array_bytes": 8}'], "schema"),            # a center's message
        ]
        for frames, expected in cases:
            reply = raw.ask(frames)
            assert (reply.get("code") or reply["kind"]) == expected, (expected, reply)
            assert reply["v"] == 1
        result = raw.ask([header, fa, fb])
        assert result["kind"] == "result" and result["job"] == "j1" and result["frames"] == 2
        assert result["product"]["shape"] == [2, 3] and result["stats"]["macs"] == 2 * 16 * 3
    finally:
        raw.close()
    # a frame far beyond the limits, from its own connection: libzmq drops that connection; the center serves on.
    # The edge waits for the drop before closing: tearing a context down while libzmq is still dropping the
    # half-received message can abort the (test's) process.
    oversized = RawEdge(shared_center, keys)
    try:
        oversized.socket.send_multipart([header, b"\0" * (3 * 4096 + 32 * 1024), fb])
        assert not oversized.socket.poll(1000), "the center answered a message beyond its size limit"
    finally:
        oversized.close()
    with _edge(shared_center, keys, "edge2") as remote:
        assert remote.matmul(ok_a, ok_b).shape == (2, 3)
    log = shared_center.log()
    assert "refused a message (malformed)" in log and "refused a message (not_finite)" in log
    assert "nan" not in log.lower() and "pickled" not in log
    assert shared_center.process.poll() is None
    with _edge(shared_center, keys) as remote:
        assert remote.matmul(ok_a, ok_b).shape == (2, 3)


def test_too_many_cores_are_refused(shared_center, keys):
    with pytest.raises(AdmissionRefused) as refused:
        _edge(shared_center, keys, cores=2)
    assert refused.value.code == "too_many_cores" and "this center has 1" in str(refused.value)


def test_operands_are_checked_at_the_edge_too(shared_center, keys):
    with _edge(shared_center, keys) as remote:
        assert remote.max_array_bytes == 4096
        with pytest.raises(labctl.network.ProtocolError, match="not_finite"):
            remote.matmul(np.array([[np.inf]]), np.ones((1, 1)))
        with pytest.raises(labctl.network.ProtocolError, match="too_large"):
            remote.matmul(np.ones((40, 16)), np.ones((16, 3)))
        with pytest.raises(labctl.network.RemoteError, match="job_failed"):
            remote.matmul(np.ones((2, 5)), np.ones((16, 3)))


def test_a_wrong_center_key_or_no_center_is_a_clear_timeout(shared_center, keys, tmp_path):
    with pytest.raises(CenterUnavailable, match="secure handshake .* failed .* is center_key the public key"):
        labctl.connect(shared_center.endpoint, key=keys["edge1"][1], center_key=keys["edge2"][0], timeout_s=2)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CenterUnavailable, match="not running or not reachable"):
        labctl.connect(f"tcp://127.0.0.1:{port}", key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=1)
