"""GEMM tiling onto lanes x channels x slots, checked by exact algebra.

The "optical" lane sums in these tests are computed in the test itself by the explicit formula
sum_k x'_k[s] w'_k[s] for every slot. This is a test of the schedule and decode algebra (streams,
padding, offset removal, reassembly), not a fake OPU: no optics is simulated here.
"""

import numpy as np
import pytest

from labctl.opu.encoding import EncodingRangeWarning
from labctl.opu.tiling import plan_gemm


def ideal_lane_sums(schedule):
    """sum_k x'_k w'_k per lane and slot, from the schedule's own streams (exact algebra)."""
    x = schedule.input_streams(lane=None)      # (L, K, S)
    w = schedule.weight_streams(lane=None)
    return np.einsum("lks,lks->ls", x, w)


SHAPES = [
    ((6, 10), (10, 5)),          # K' not a multiple of K
    ((3, 8), (8, 4)),            # K' a multiple of K
    ((2, 1, 4, 9), (3, 9, 2)),   # broadcast batch dimensions
    ((9,), (9, 3)),              # 1-D left operand
    ((4, 9), (9,)),              # 1-D right operand
    ((9,), (9,)),                # dot product
    ((5, 3), (3, 7)),            # K' < K
    ((3, 0), (0, 2)),            # empty inner dimension: zeros
    ((0, 4), (4, 2)),            # no outputs
]


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("lanes,channels", [(1, 4), (3, 4), (2, 8), (5, 1)])
@pytest.mark.parametrize("shape_a,shape_b", SHAPES)
def test_round_trip_gemm_equals_matmul(shape_a, shape_b, lanes, channels, shared):
    rng = np.random.default_rng(7)
    a = rng.normal(size=shape_a) * 3.0
    b = rng.normal(size=shape_b) * 0.2
    schedule = plan_gemm(a, b, lanes, channels, shared_inputs=shared)
    out = schedule.decode(ideal_lane_sums(schedule))
    ref = np.matmul(a, b)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


def test_layer_sized_product_with_many_chunks():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 16, 100)), rng.normal(size=(100, 24))
    schedule = plan_gemm(a, b, lanes=3, channels=8)
    assert schedule.n_chunks == 13 and schedule.slots_per_lane == -(-2 * 16 * 24 // 3) * 13
    np.testing.assert_allclose(schedule.decode(ideal_lane_sums(schedule)), a @ b, rtol=0, atol=1e-9)


def test_streams_are_transmissions_with_one_row_per_channel():
    rng = np.random.default_rng(9)
    schedule = plan_gemm(rng.normal(size=(4, 6)), rng.normal(size=(6, 3)), lanes=2, channels=4)
    x, w = schedule.input_streams(1), schedule.weight_streams(1)
    assert x.shape == w.shape == (4, schedule.slots_per_lane)
    assert x.min() >= 0 and x.max() <= 1 and w.min() >= 0 and w.max() <= 1
    # slot ranges are slices of the whole stream (streams can be generated block by block)
    np.testing.assert_array_equal(schedule.input_streams(1, 3, 9), x[:, 3:9])
    np.testing.assert_array_equal(schedule.weight_streams(1, 5, 5), w[:, 5:5])


def test_padding_is_sent_as_half_transmission_on_both_sides():
    # K' = 5 on K = 4 channels: chunk 2 holds one real term and three padded ones.
    a, b = np.arange(1.0, 6.0)[None, :], np.ones((5, 1))
    schedule = plan_gemm(a, b, lanes=1, channels=4)
    x, w = schedule.input_streams(0), schedule.weight_streams(0)
    assert schedule.n_chunks == 2 and x.shape == (4, 2)
    np.testing.assert_array_equal(x[1:, 1], 0.5)
    np.testing.assert_array_equal(w[1:, 1], 0.5)
    _, chunks = schedule.decode(ideal_lane_sums(schedule), return_chunks=True)
    # chunk values are in scaled units: a/5, b/1
    np.testing.assert_allclose(chunks[0, 0], [np.sum(a[0, :4]) / 5, a[0, 4] / 5], atol=1e-15)


def test_shared_inputs_send_the_same_input_stream_to_every_lane():
    rng = np.random.default_rng(10)
    schedule = plan_gemm(rng.normal(size=(3, 7)), rng.normal(size=(7, 5)), lanes=3, channels=4,
                         shared_inputs=True)
    x = schedule.input_streams(lane=None)
    np.testing.assert_array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[0], x[2])
    # N = 5 columns on 3 lanes: 2 positions per row and lane, lane 2 idles on the second
    assert schedule.positions_per_lane == 3 * 2
    assert np.sum(schedule.output_index() < 0) == 1 * 3


def test_mac_counts():
    schedule = plan_gemm(np.ones((4, 10)), np.ones((10, 6)), lanes=2, channels=4)
    assert schedule.useful_macs == 4 * 6 * 10
    assert schedule.optical_macs == 2 * schedule.slots_per_lane * 4 == 2 * 12 * 3 * 4


def test_fixed_scale_clips_with_count():
    with pytest.warns(EncodingRangeWarning):
        schedule = plan_gemm(np.array([[0.5, 3.0]]), np.ones((2, 1)), 1, 2, scale_a=1.0)
    assert schedule.clipped_a == 1 and schedule.clipped_b == 0
    np.testing.assert_allclose(schedule.decode(ideal_lane_sums(schedule)), [[1.5]], atol=1e-12)


@pytest.mark.parametrize("a_shape,b_shape,match", [
    ((3, 4), (5, 2), "inner dimensions are 4 and 5"),
    ((2, 3, 4), (3, 4, 2), "do not broadcast"),
])
def test_mismatched_shapes_raise(a_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        plan_gemm(np.ones(a_shape), np.ones(b_shape), 1, 4)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="NaN or infinite"):
        plan_gemm(np.array([[np.nan]]), np.ones((1, 1)), 1, 1)
    with pytest.raises(ValueError, match="lanes"):
        plan_gemm(np.ones((1, 1)), np.ones((1, 1)), 0, 1)
    with pytest.raises(ValueError, match="scalars"):
        plan_gemm(np.float64(2.0), np.ones((1, 1)), 1, 1)
    schedule = plan_gemm(np.ones((2, 3)), np.ones((3, 2)), 2, 2)
    with pytest.raises(ValueError, match="shape"):
        schedule.decode(np.zeros((2, schedule.slots_per_lane + 1)))
    with pytest.raises(ValueError, match="lane"):
        schedule.input_streams(2)
    with pytest.raises(ValueError, match="slot range"):
        schedule.input_streams(0, 0, schedule.slots_per_lane + 1)


def test_output_sigma_matches_decoded_noise():
    """Gaussian lane-sum noise sigma decodes to 4 sqrt(C) sigma scale_a scale_b per output."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(40, 24)), rng.normal(size=(24, 50))
    schedule = plan_gemm(a, b, lanes=2, channels=4)
    sigma = 1e-3
    sums = ideal_lane_sums(schedule) + sigma * rng.standard_normal((2, schedule.slots_per_lane))
    err = schedule.decode(sums) - a @ b
    predicted = schedule.output_sigma(sigma)
    assert predicted.shape == (40, 50)
    np.testing.assert_allclose(predicted, 4 * np.sqrt(6) * sigma * schedule.scale_a * schedule.scale_b)
    assert np.std(err) == pytest.approx(predicted[0, 0], rel=0.05)   # 2000 outputs: ~1.6 % sampling error


def test_float32_streams_decode_exactly_what_was_sent():
    """The offset terms are summed from the transmissions as sent, so rounding x' to float32 cancels."""
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(8, 50)), rng.normal(size=(50, 6))
    schedule = plan_gemm(a, b, 2, 4, stream_dtype=np.float32)
    x = schedule.input_streams(None).astype(np.float64)
    w = schedule.weight_streams(None).astype(np.float64)
    assert schedule.input_streams(0).dtype == np.float32
    out = schedule.decode(np.einsum("lks,lks->ls", x, w))
    # exact product of the float32-rounded operands (x = 2x' - 1), recomputed independently
    a32 = 2.0 * (((1 + a / schedule.scale_a) / 2).astype(np.float32).astype(np.float64)) - 1.0
    b32 = 2.0 * (((1 + b / schedule.scale_b) / 2).astype(np.float32).astype(np.float64)) - 1.0
    np.testing.assert_allclose(out, (a32 @ b32) * schedule.scale_a * schedule.scale_b, rtol=0, atol=1e-9)
    assert np.max(np.abs(out - a @ b)) > 1e-9          # and the rounding itself is visible
