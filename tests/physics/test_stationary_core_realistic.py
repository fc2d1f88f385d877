"""The core's fast program path against a term-by-term float64 reference of the same chain, on operands
with the statistics of a generative model's layers (most activations near zero, a heavy tail, outputs up
to the ADC's range edge and past a photodiode's saturation): the mean, spread and clipping of every
reading match, so a merged draw or float32 step cannot bias a layer's products."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_backends.physics.stationary_core import Detector, InputChain, Readout, StationaryCore

N_IN, N_OUT, TILES, SLOTS = 4, 3, 10, 20_000
G, S, DAC, DRV, RIN, LSB, V_PI = 10.0, 4.0, 2.5e-4, 1e-3, 6.4e-7, 0.9 / 255, 8.0
A0, A1, ADC = 2e-4**2, 1e-8, 1.5e-4
RANGE = (0.0, 0.5)  # the ADC's span (V): offset 0.25, range 0.5


def _transfer(v):
    """Power transmission of a modulator biased at quadrature for the driver's output ``v`` (V)."""
    return 0.9 * (0.01 + 0.98 * np.cos(np.pi / 4 - np.pi * v / (2 * V_PI)) ** 2)


def _quantise(v):
    return np.round(v / LSB) * LSB


def s_tanh(v):
    """The driver's saturating gain."""
    return S * np.tanh(G * v / S)


def _core(saturation: float) -> StationaryCore:
    chain = InputChain(quantise=_quantise, modulator=lambda v: _transfer(v).astype(np.float32),
                       offsets=np.array([0]), taps=np.array([1.0]), noise_v=DAC, driver_gain=G,
                       driver_saturation_v=S, driver_noise_v=DRV, rin=RIN)
    detectors = [Detector(1.0, 1e-3, (A0, A1, 0.0), saturation, 1.0)] * N_OUT
    return StationaryCore([chain] * N_IN, detectors, Readout(0.25, 0.5, ADC))


def _program(rng):
    """DAC volts constant over each tile's slots (so each tile's readings sample one distribution): 60 % of
    the activations near zero, the rest a heavy tail up to the DAC's full scale; gains and background put
    the tiles' outputs across the ADC's span, the last tile just below its top edge."""
    small = rng.random((TILES, N_IN)) < 0.6
    acts = np.where(small, rng.normal(0, 0.01, (TILES, N_IN)), rng.laplace(0, 0.15, (TILES, N_IN)))
    acts = np.clip(acts, -0.45, 0.45)
    volts = np.repeat(acts[:, None, :], SLOTS, axis=1)
    gains = rng.uniform(0.02, 0.12, (TILES, N_IN, N_OUT))
    background = rng.uniform(0.0, 0.15, (TILES, N_OUT))
    clean = np.einsum("tk,tkq->tq", _transfer(s_tanh(_quantise(acts))), gains) + background + 1e-3
    background[-1] += RANGE[1] - 1.5 * ADC - clean[-1]  # the last tile's outputs straddle the top edge
    return volts, gains, background


def _reference(volts, gains, background, saturation, rng):
    """The chain term by term in float64: DAC noise through the tanh driver, driver noise, modulator, RIN,
    optical sum, receiver noise, saturation, the ADC's noise and its range."""
    v = _quantise(volts) + DAC * rng.standard_normal(volts.shape)
    v = s_tanh(v) + DRV * rng.standard_normal(volts.shape)
    power = _transfer(v) * (1 + math.sqrt(RIN) * rng.standard_normal(volts.shape))
    power = np.einsum("tsk,tkq->tsq", power, gains) + background[:, None, :]
    current = power + 1e-3 + np.sqrt(A0 + A1 * power) * rng.standard_normal(power.shape)
    out = np.minimum(current, saturation) + ADC * rng.standard_normal(power.shape)
    return np.clip(out, *RANGE)


@pytest.mark.parametrize("saturation", [10.0, 0.25], ids=["linear receiver", "saturating photodiode"])
def test_readings_match_the_term_by_term_chain_on_realistic_operands(saturation):
    volts, gains, background = _program(np.random.default_rng(3))
    fast = _core(saturation).readings(volts, gains, background, np.random.default_rng(11)).astype(np.float64)
    ref = _reference(volts, gains, background, saturation, np.random.default_rng(12))
    m_fast, m_ref = fast.mean(axis=1), ref.mean(axis=1)  # (tiles, N_out)
    s_fast, s_ref = fast.std(axis=1), ref.std(axis=1)
    standard_error = np.sqrt((s_fast**2 + s_ref**2) / SLOTS)
    # a bias of 1/50 of a reading's noise would be 3 standard errors here: every tile's mean within 4.5
    assert np.all(np.abs(m_fast - m_ref) <= 4.5 * standard_error + 1e-7)
    assert s_fast == pytest.approx(s_ref, rel=0.04)
    edge = (fast >= RANGE[1]).mean(axis=1), (ref >= RANGE[1]).mean(axis=1)
    assert edge[0] == pytest.approx(edge[1], abs=0.015)
    if saturation > RANGE[1]:
        assert np.all(edge[0][-1] > 0.2)  # the last tile really reaches the ADC's top edge
    else:
        assert np.mean(m_ref > saturation - 1e-3) >= 0.1  # some tiles sit at the photodiode's saturation
