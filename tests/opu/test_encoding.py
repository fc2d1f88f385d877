"""Offset encoding of signed values: exact algebra, clipping with a count, bad input."""

import warnings

import numpy as np
import pytest

from labctl.opu.encoding import (
    EncodingRangeWarning,
    as_float_array,
    clip_to_range,
    offset_decode,
    scale_to_unit,
)


def test_scale_to_unit_auto_scale_uses_peak_magnitude():
    x = np.array([[-3.0, 1.5], [0.25, 2.0]])
    values, scale, n = scale_to_unit(x)
    assert scale == 3.0 and n == 0
    assert np.max(np.abs(values)) == 1.0
    np.testing.assert_array_equal(values * scale, x)


def test_scale_to_unit_all_zero_tensor_has_unit_scale():
    values, scale, n = scale_to_unit(np.zeros((2, 3)))
    assert scale == 1.0 and n == 0 and not values.any()


def test_fixed_scale_clips_with_warning_and_exact_count():
    x = np.array([-5.0, -2.0, 0.0, 1.0, 2.0001, 7.0])
    with pytest.warns(EncodingRangeWarning, match="3 of 6"):
        values, scale, n = scale_to_unit(x, scale=2.0, name="weights")
    assert n == 3 and scale == 2.0
    np.testing.assert_array_equal(values, [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0])


def test_in_range_values_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, n = clip_to_range([-1.0, 0.0, 1.0])
    assert n == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise_value_error(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        scale_to_unit(np.array([1.0, bad, 2.0]), name="a")
    with pytest.raises(ValueError, match="NaN or infinite"):
        clip_to_range([0.1, bad])


def test_bad_scale_and_complex_input_raise():
    with pytest.raises(ValueError, match="scale for x"):
        scale_to_unit([1.0], scale=0.0)
    with pytest.raises(ValueError, match="complex"):
        as_float_array(np.array([1 + 1j]))


def test_offset_decode_is_exact_for_random_chunks():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(500, 7))
    w = rng.uniform(-1, 1, size=(500, 7))
    xe, we = (1 + x) / 2, (1 + w) / 2                        # offset-encoded transmissions
    lane_sum = np.sum(xe * we, axis=-1)                      # what the photodiode adds, per chunk
    decoded = offset_decode(lane_sum, x.sum(axis=-1), w.sum(axis=-1), k=7)
    np.testing.assert_allclose(decoded, np.sum(x * w, axis=-1), rtol=0, atol=1e-13)


def test_zero_padded_terms_decode_to_exactly_zero():
    # A padded pair x = w = 0 is sent as x' = w' = 1/2 and adds 1/4 to the lane sum; the decode removes it.
    assert offset_decode(0.25, 0.0, 0.0, k=1) == 0.0
    rng = np.random.default_rng(4)
    x, w = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    xp, wp = np.concatenate([x, np.zeros(3)]), np.concatenate([w, np.zeros(3)])
    lane_sum = np.sum((1 + xp) / 2 * ((1 + wp) / 2))
    assert offset_decode(lane_sum, x.sum(), w.sum(), k=8) == pytest.approx(np.dot(x, w), abs=1e-14)


def test_offset_decode_rejects_bad_chunk_length():
    with pytest.raises(ValueError, match="k"):
        offset_decode(1.0, 0.0, 0.0, k=0)


def test_torch_like_tensors_are_converted_at_the_edge():
    class FakeTensor:  # duck-types torch.Tensor.detach().cpu().numpy()
        def __init__(self, data):
            self.data = np.asarray(data, dtype=np.float32)

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.data

    values, scale, _ = scale_to_unit(FakeTensor([[1.0, -4.0]]))
    assert values.dtype == np.float64 and scale == 4.0


def test_real_torch_tensor_if_available():
    torch = pytest.importorskip("torch")
    values, scale, _ = scale_to_unit(torch.tensor([[2.0, -1.0]], dtype=torch.float32))
    np.testing.assert_array_equal(values, [[1.0, -0.5]])
