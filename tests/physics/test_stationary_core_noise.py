"""The symbol-level core's merged noise draws: the statistics of the terms drawn as one deviate are those of
the terms drawn one by one, and the exact paths take over where merging would not be exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_backends.physics.stationary_core import Detector, InputChain, Readout, StationaryCore


def _chain(**kwargs) -> InputChain:
    """An input whose modulator passes the drive voltage through as its 'power' (so the drive's noise is seen
    directly at the photodiode), no ISI."""
    return InputChain(quantise=lambda v: v, modulator=lambda v: np.asarray(v, dtype=np.float32),
                      offsets=np.array([0]), taps=np.array([1.0]), **kwargs)


def _core(chain: InputChain, *, noise=(0.0, 0.0, 0.0), saturation=1e3, adc_noise=0.0, range_v=1e3) -> StationaryCore:
    return StationaryCore([chain], [Detector(1.0, 0.0, noise, saturation, 1.0)], Readout(0.0, range_v, adc_noise))


def _read(core: StationaryCore, drive: float, slots: int = 200_000, seed: int = 1) -> np.ndarray:
    x = np.full((4, slots // 4, 1), drive)  # several tiles: the readings run in blocks of tiles
    return core.readings(x, np.ones((4, 1, 1)), np.zeros((4, 1)), np.random.default_rng(seed)).reshape(-1)


@pytest.mark.parametrize("drive", [0.0, 1.5, 3.0])
def test_dac_and_driver_noise_through_a_saturating_driver(drive):
    """g (1 - tanh^2) n1 + n2: the first-order spread of DAC noise through the tanh, plus the driver's own."""
    g, s, dac, drv = 10.0, 4.0, 2.5e-4, 1e-3
    y = _read(_core(_chain(noise_v=dac, driver_gain=g, driver_saturation_v=s, driver_noise_v=drv)), drive)
    x = math.tanh(g * drive / s)
    assert y.mean() == pytest.approx(s * x, abs=5e-5)
    assert y.std() == pytest.approx(math.hypot(g * (1 - x * x) * dac, drv), rel=0.01)  # 200k: 0.16 % standard error


def test_large_dac_noise_goes_through_the_tanh_exactly():
    """DAC noise comparable to the driver's saturation is not linearised: the readings are s tanh(g (v + n) / s),
    whose mean the tanh's curvature pulls ~0.08 below s tanh(g v / s) here."""
    g, s, dac, drive = 1.0, 1.0, 0.5, 1.0
    y = _read(_core(_chain(noise_v=dac, driver_gain=g, driver_saturation_v=s)), drive)
    exact = s * np.tanh(g * (drive + dac * np.random.default_rng(9).standard_normal(400_000)) / s)
    assert y.mean() == pytest.approx(exact.mean(), abs=3e-3)
    assert y.std() == pytest.approx(exact.std(), rel=0.01)


def test_dac_and_driver_noise_add_through_a_linear_driver():
    g, dac, drv = 2.5, 1e-3, 2e-3
    y = _read(_core(_chain(noise_v=dac, driver_gain=g, driver_noise_v=drv)), 0.2)
    assert y.mean() == pytest.approx(g * 0.2, abs=5e-5)
    assert y.std() == pytest.approx(math.hypot(g * dac, drv), rel=0.01)


def test_rin_scales_with_the_power_and_is_shared_by_the_photodiodes():
    """One RIN deviate per input and slot reaches every photodiode: two photodiodes lit by one input see
    the same relative fluctuation (correlation 1 without receiver noise)."""
    chain = _chain(rin=1e-4)
    core = StationaryCore([chain], [Detector(1.0, 0.0, (0.0, 0.0, 0.0), 1e3, 1.0)] * 2, Readout(0.0, 1e3))
    x = np.full((2, 50_000, 1), 2.0)
    y = core.readings(x, np.array([[[1.0, 0.5]]] * 2), np.zeros((2, 2)), np.random.default_rng(4)).reshape(-1, 2)
    assert y[:, 0].std() == pytest.approx(2.0 * 1e-2, rel=0.01)
    assert np.corrcoef(y[:, 0], y[:, 1])[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_receiver_and_adc_noise_add_below_saturation():
    a0, adc = 1e-8, 2e-4
    y = _read(_core(_chain(), noise=(a0, 0.0, 0.0), adc_noise=adc), 0.5)
    assert y.std() == pytest.approx(math.sqrt(a0 + adc**2), rel=0.01)


def test_saturation_caps_the_photocurrent_before_the_adc_adds_its_noise():
    """At the photodiode's saturation the receiver noise is cut (min), the ADC's own noise is not: the readings
    are the saturation volts with the ADC's spread only."""
    adc = 1e-4
    y = _read(_core(_chain(), noise=(1e-4, 0.0, 0.0), saturation=0.4, adc_noise=adc), 1.0)
    assert y.mean() == pytest.approx(0.4, abs=1e-5)
    assert y.std() == pytest.approx(adc, rel=0.01)


def test_readings_are_reproducible_for_a_seed_and_leave_the_program_alone():
    core = _core(_chain(noise_v=1e-3, driver_gain=10.0, driver_saturation_v=4.0, rin=1e-5), noise=(1e-9, 0, 0),
                 adc_noise=1e-4)
    x = np.random.default_rng(0).random((40, 300, 1)).astype(np.float32)
    before = x.copy()
    a = core.readings(x, np.ones((40, 1, 1)), np.zeros((40, 1)), np.random.default_rng(5))
    b = core.readings(x, np.ones((40, 1, 1)), np.zeros((40, 1)), np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert np.array_equal(x, before)
    c = core.readings(x, np.ones((40, 1, 1)), np.zeros((40, 1)), np.random.default_rng(6))
    assert not np.array_equal(a, c)
