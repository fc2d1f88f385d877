"""The front end both engines share: operand checks, result types, the common statistics keys."""

import numpy as np
import pytest

from labctl.opu.encoding import EncodingRangeWarning
from labctl.opu.frontend import deliver, product_stats, take_operands, warn_clipped
from labctl.opu.interface import STATS_KEYS


def test_result_type_follows_the_operands():
    ops = take_operands(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32))
    assert ops.a.dtype == np.float64 and ops.torch is None
    assert deliver(ops, np.zeros((2, 4)), np.zeros((2, 4)), False).dtype == np.float32
    mixed = take_operands(np.ones((2, 3), np.float32), [[1.0]] * 3)
    y, sigma = deliver(mixed, np.zeros((2, 1)), np.ones((2, 1)), True)
    assert y.dtype == sigma.dtype == np.float64 and sigma[0, 0] == 1.0


def test_torch_round_trip_keeps_device_and_float_dtype():
    torch = pytest.importorskip("torch")
    a = torch.ones(2, 3, dtype=torch.float64)
    ops = take_operands(a, np.ones((3, 2)))
    assert ops.torch is not None
    y = deliver(ops, np.full((2, 2), 3.0), np.zeros((2, 2)), False)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64 and y.device == a.device
    assert torch.equal(y, torch.full((2, 2), 3.0, dtype=torch.float64))
    ints = take_operands(torch.ones(2, 3, dtype=torch.int64), np.ones((3, 2)))
    assert deliver(ints, np.zeros((2, 2)), np.zeros((2, 2)), False).dtype == torch.float32


@pytest.mark.parametrize("bad", [np.array([1.0, np.nan]), np.array([np.inf, 0.0]), np.array([1j, 0])])
def test_operands_that_cannot_be_light_are_refused(bad):
    with pytest.raises(ValueError):
        take_operands(bad, np.ones(2))


def test_stats_hold_the_shared_keys_first_then_the_engines_own():
    stats = product_stats(macs=6, optical_macs=8, wall_s=0.5, optical_time_s=1e-6, uploads=1, upload_bytes=64,
                          captures=1, calibrated=True, core="occ1")
    assert tuple(stats)[:len(STATS_KEYS)] == STATS_KEYS and stats["core"] == "occ1"
    assert stats["optical_macs"] == 8 and stats["calibrated"] is True
    with pytest.raises(TypeError):   # every shared key is required: an engine cannot forget one
        product_stats(macs=6, optical_macs=8, wall_s=0.5, optical_time_s=1e-6, uploads=1, upload_bytes=64,
                      calibrated=True)


def test_clipping_warns_with_the_counts():
    with pytest.warns(EncodingRangeWarning, match="clipped 3 value"):
        warn_clipped(3, 0)
