"""Helpers for experiments on a weight-stationary core: reduced and rescaled calibrations, and the optical
power a core receives, measured at its receivers."""

from __future__ import annotations

import copy
import math

import numpy as np

from labctl.opu.stationary import StationaryCalibration, StationaryOPU
from labctl.opu.stationary.calibration import measure_dark

#: Corrections a calibration can be stripped of (:func:`without`).
CORRECTIONS = ("crosstalk", "floor", "decoder")
#: Photodiode values used when the bench file does not describe the photodiodes behind a controller.
DEFAULT_RESPONSIVITY_A_PER_W = 0.9
DEFAULT_LOAD_OHM = 50.0


def without(cal: StationaryCalibration, corrections) -> StationaryCalibration:
    """A copy of ``cal`` with corrections removed: ``crosstalk`` (no thermal-crosstalk solve in the heater
    table), ``floor`` (modulator floor eps = 0), ``decoder`` (no end-to-end affine decoder)."""
    unknown = set(corrections) - set(CORRECTIONS)
    if unknown:
        raise ValueError(f"unknown corrections {sorted(unknown)}; known: {list(CORRECTIONS)}")
    out = copy.deepcopy(cal)
    if "crosstalk" in corrections:
        out.thermal_crosstalk = np.zeros_like(np.asarray(out.thermal_crosstalk, dtype=float))
    if "floor" in corrections:
        out.eps = 0.0
        out.steps = [s for s in out.steps if s != "floor"]
    if "decoder" in corrections:
        out.decoder_gain = out.decoder_offset = None
        out.steps = [s for s in out.steps if s != "decoder"]
    return out


def rescaled(cal: StationaryCalibration, ratio: float) -> StationaryCalibration:
    """``cal`` for input lasers ``ratio`` times as strong: every path gain (ADC volts per unit u) scales with
    the optical power; the dark level, ADC settings, lookups and heater map (a ratio of gains) do not."""
    out = copy.deepcopy(cal)
    for key in ("g_lo_v", "g_span_v", "ring_peak_v"):
        setattr(out, key, np.asarray(getattr(out, key), dtype=float) * ratio)
    return out


def photodiode_gain(bench, controller: str) -> float:
    """Volts at the controller's ADCs per watt of light on its photodiodes (responsivity x transimpedance or
    load), from the photodiodes the bench file wires to the controller's ADCs (datasheet values; defaults
    0.9 A/W and 50 ohm when the file does not describe them)."""
    resp, load = DEFAULT_RESPONSIVITY_A_PER_W, DEFAULT_LOAD_OHM
    config = bench.config
    for link in config.connections:
        text = link if isinstance(link, str) else " -> ".join(link)
        src, _, dst = (s.strip() for s in text.partition("->"))
        if dst.startswith(f"{controller}.adc"):
            spec = config.components.get(src.partition(".")[0], {})
            if spec.get("type") == "photodiode":
                resp = float(spec.get("responsivity_a_per_w", resp))
                load = float(spec.get("transimpedance_ohm") or spec.get("load_ohm", load))
                break
    return resp * load


def received_power_dbm(opu: StationaryOPU, slots: int = 256) -> float:
    """Optical power per channel reaching the core's photodiodes at full transmission and full weight (dBm,
    mean over channels and banks), **measured**: every input at full transmission and every weight at full
    through the calibrated core, read by the controller's ADCs, the dark level (lasers off) subtracted,
    divided by the number of inputs and by the photodiodes' volts per watt (:func:`photodiode_gain`).
    The core must be calibrated; its lasers are left on and the core prepared."""
    opu.prepare(force=True)
    dark = measure_dark(opu)
    opu.prepare(force=True)
    heaters = opu.heater_volts(np.ones((1, opu.n_out, opu.n_in)))
    codes = opu.input_codes(np.ones((1, slots, opu.n_in)))
    volts = opu.run_program(heaters, codes).mean(axis=(0, 1)) - dark
    watts = float(np.mean(volts)) / opu.n_in / photodiode_gain(opu.bench, opu.name)
    return 10 * math.log10(watts / 1e-3) if watts > 0 else float("nan")


def path_gain_power_dbm(opu: StationaryOPU) -> float:
    """What the calibration's path gains say the received power per channel is (dBm): the top of the
    calibrated gain range (ADC volts per unit u at full weight) over :func:`photodiode_gain`. A derived
    figure, for comparison with :func:`received_power_dbm`."""
    cal = opu.calibration
    volts = float(np.mean(np.asarray(cal.g_lo_v) + np.asarray(cal.g_span_v)))
    watts = volts / photodiode_gain(opu.bench, opu.name)
    return 10 * math.log10(watts / 1e-3) if watts > 0 else float("nan")
