"""Physics benchmarks: waveform-level and symbol-level simulation speed and peak memory.

Run: ``python -m benchmarks.bench_physics`` (prints the figures, writes benchmarks/results_physics.json).
Each figure is the median of several repeats, measured side by side with its reference in the same
process (calls interleaved, so load changes hit both alike); nothing is asserted.

* Waveform level: one single-wavelength chain at 2^20 samples -- M8195A-class DAC (8 bit, 64 GSa/s,
  25 GHz, ENOB 5.5) -> MZM (V_pi 5 V, 30 GHz EO) -> 25 km SSMF (loss, dispersion) -> PIN + TIA
  (20 GHz, thermal, shot, RIN) -> ADC (10 bit, ENOB 6, 50 GHz) -- built from the physics modules
  (``symbol_level.waveform_link``), against a plain NumPy complex128 FFT of the same length.
* Symbol level: a 16 x 16 weight-stationary core on 100,000 symbol slots of one tile
  (``stationary_core.StationaryCore.readings``, the model the OCC-16 simulator runs: DAC levels and noise,
  drivers, MZM transfer, ISI taps, RIN, matrix product, signal-dependent receiver noise, ADC noise), optical
  MAC/s against a float32 matrix product (100000 x 16) @ (16 x 16).
* Peak memory: tracemalloc peak of one call (NumPy registers its buffers with tracemalloc), measured
  in a separate call from the timing.

The measurements run in a child process with OPENBLAS_NUM_THREADS=1 (also for the reference
matmul): NumPy and SciPy each bundle an OpenBLAS, and on a 2-core machine the idle worker threads of
one pool spin against the other's, so in-process the same 100000 x 16 matmul takes either ~1-2 ms or
~16 ms depending on what ran before (observed on the development VM); single-threaded BLAS gives
stable figures for both sides of every ratio.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

from sim_backends.physics.awgr import AWGR
from sim_backends.physics.components import MachZehnderModulator
from sim_backends.physics.converters import ADC, DAC, lowpass_response
from sim_backends.physics.fibre import FibreSpan
from sim_backends.physics.receiver import Receiver
from sim_backends.physics.stationary_core import InputChain, Readout, StationaryCore, chain_taps, detector, noise_bandwidth
from sim_backends.physics.symbol_level import waveform_link
from benchmarks.child import measure_in_child
from benchmarks.timing import interleaved, peak_bytes

HERE = Path(__file__).parent
SYMBOL_RATE = 16e9
RECEIVER = dict(bandwidth_hz=20e9, response="butterworth", response_order=4, tia_gain_ohm=1000.0,
                input_noise_a_per_rthz=20e-12, rin_db_per_hz=-145.0)


def waveform_level(samples: int = 2**20, repeats: int = 5) -> dict:
    """Samples/s of DAC -> MZM -> 25 km -> PD -> ADC at ``samples`` points vs a NumPy FFT of that length."""
    upsample = 2
    dac = DAC()
    sps = int(dac.sample_rate / SYMBOL_RATE) * upsample
    adc = ADC(bits=10, full_scale_v=1.0, offset_v=0.5, enob=6.0, sample_rate=dac.sample_rate * upsample,
              bandwidth_hz=50e9)
    mzm = MachZehnderModulator("mzm", v_pi=5.0, eo_bandwidth_hz=30e9)
    fibre = FibreSpan(25.0)
    rx = Receiver(**RECEIVER)
    rng = np.random.default_rng(0)
    drive = np.asarray([-0.3, -0.1, 0.1, 0.3])[rng.integers(0, 4, samples // sps)]

    def chain():
        return waveform_link(drive, rng, symbol_rate=SYMBOL_RATE, dac=dac, mzm=mzm, receiver=rx, adc=adc,
                             bias_v=2.5, laser_power_w=10e-3, drive_gain=2.5, fibre=fibre, upsample=upsample,
                             return_waveform=True)

    record = chain()[2]
    assert record.size == samples
    x = (rng.standard_normal(samples) + 1j * rng.standard_normal(samples)).astype(np.complex128)
    t = interleaved({"chain": chain, "fft": lambda: np.fft.fft(x)}, repeats)
    return {
        "samples": samples,
        "chain": "DAC (8 bit, 64 GSa/s, 25 GHz, ENOB 5.5) -> MZM (30 GHz EO) -> 25 km SSMF -> PIN+TIA "
                 "(20 GHz; thermal, shot, RIN) -> ADC (10 bit, ENOB 6, 50 GHz); 8 samples/symbol at 16 GBd",
        "seconds": t["chain"],
        "samples_per_s": samples / t["chain"],
        "numpy_fft_seconds": t["fft"],
        "chain_over_fft": t["chain"] / t["fft"],
        "peak_memory_bytes": peak_bytes(chain),
        "numpy_fft_peak_memory_bytes": peak_bytes(lambda: np.fft.fft(x)),
    }


def _awgr_core(ports: int, slots_rate: float):
    """A ports x ports core of the product-path model (``StationaryCore``, as the OCC-16 simulator builds it):
    14-bit DAC codes -> 20 dB drivers (tanh) -> MZMs at quadrature -> AWGR-routed gains -> PIN+TIA -> ADC."""
    rx = Receiver(**RECEIVER)
    adc = ADC(bits=10, full_scale_v=0.5, offset_v=0.2, enob=6.0, sample_rate=128e9, bandwidth_hz=50e9)
    mzm = MachZehnderModulator("mzm", v_pi=5.0, eo_bandwidth_hz=30e9)
    eo = mzm.eo_filter
    stages = [lambda f: np.abs(eo.response(f)),
              lambda f: np.abs(lowpass_response(f, rx.bandwidth_hz, rx.response, rx.response_order)),
              lambda f: np.abs(lowpass_response(f, adc.bandwidth_hz, adc.response, adc.response_order))]
    offsets, taps = chain_taps(stages, slots_rate, oversample=512)
    lsb = np.float32(1.0 / 2**14)
    chain = InputChain(quantise=lambda v: np.round(v / lsb) * lsb,
                       modulator=lambda v: mzm.transmission(v, 2.5).astype(np.float32),
                       offsets=offsets, taps=taps, noise_v=1e-4, driver_gain=10.0, driver_saturation_v=4.0,
                       driver_noise_v=5e-3, rin=10 ** (-145 / 10) * rx.noise_bandwidth_hz)
    det = detector(rx, noise_bandwidth(stages[1:], [rx.bandwidth_hz, adc.bandwidth_hz]))
    readout = Readout(adc.offset_v, adc.full_scale_v, math.sqrt(adc.excess_noise_rms() ** 2 + adc.lsb_v**2 / 12))
    return StationaryCore([chain] * ports, [det] * ports, readout), offsets.size


def symbol_level(slots: int = 100_000, ports: int = 16, repeats: int = 25) -> dict:
    """Optical MAC/s of a ports x ports weight-stationary core (``StationaryCore.readings``, the product path)
    on ``slots`` symbol slots of one tile vs a float32 matmul (slots x ports) @ (ports x ports)."""
    rng = np.random.default_rng(1)
    weights = rng.random((ports, ports))
    weights /= weights.sum(axis=1, keepdims=True)
    awgr = AWGR(ports)
    p = np.arange(1, ports + 1)
    routed = awgr.transmission(p[:, None, None], p[None, :, None], awgr.wavelength_for(p[:, None], p[None, :])[:, None, :])
    gains = (2e-3 * np.sum(routed * weights[:, None, :], axis=2))[None]  # 2 mW lasers, (1, ports, ports)
    core, n_taps = _awgr_core(ports, SYMBOL_RATE)
    volts = (rng.uniform(-0.5, 0.5, (1, slots, ports))).astype(np.float32)
    x = volts[0]
    w = rng.random((ports, ports)).astype(np.float32)
    background = np.zeros((1, ports))
    sim_rng = np.random.default_rng(2)
    t = interleaved({
        "matmul": lambda: x @ w,
        "readings": lambda: core.readings(volts, gains, background, sim_rng),
        "readings_noiseless": lambda: core.readings(volts, gains, background, None),
    }, repeats)
    macs = slots * ports * ports
    return {
        "slots": slots, "ports": ports, "macs_per_call": macs, "isi_taps": n_taps,
        "matmul_float32_seconds": t["matmul"], "matmul_macs_per_s": macs / t["matmul"],
        "readings_seconds": t["readings"], "optical_macs_per_s": macs / t["readings"],
        "readings_over_matmul": t["readings"] / t["matmul"],
        "noiseless_seconds": t["readings_noiseless"], "noiseless_over_matmul": t["readings_noiseless"] / t["matmul"],
        "peak_memory_bytes": peak_bytes(lambda: core.readings(volts, gains, background, sim_rng)),
        "matmul_peak_memory_bytes": peak_bytes(lambda: x @ w),
        "input_bytes": x.nbytes,
    }


def measure() -> dict:
    """All figures, measured in this process."""
    return {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "numpy": np.__version__},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "memory_method": "tracemalloc peak of one call (NumPy buffers included), separate from the timing",
        "symbol_level": symbol_level(),
        "waveform_level": waveform_level(),
    }


def run() -> dict:
    """All physics benchmark figures, measured in a child process with single-threaded BLAS."""
    return measure_in_child("benchmarks.bench_physics", single_thread_openmp=True)


def report(results: dict) -> str:
    w, s = results["waveform_level"], results["symbol_level"]
    mb = 1 / 2**20
    return "\n".join([
        f"waveform level, {w['samples']:,} samples: {w['seconds'] * 1e3:.1f} ms = {w['samples_per_s'] / 1e6:.1f} MSa/s; "
        f"NumPy complex FFT of the same length {w['numpy_fft_seconds'] * 1e3:.1f} ms "
        f"(chain = {w['chain_over_fft']:.0f} FFTs); peak memory {w['peak_memory_bytes'] * mb:.0f} MiB "
        f"(one FFT: {w['numpy_fft_peak_memory_bytes'] * mb:.0f} MiB)",
        f"symbol level, {s['ports']}x{s['ports']} weight-stationary core (StationaryCore.readings: DAC levels, "
        f"drivers, MZMs, {s['isi_taps']} ISI taps, RIN, receiver and ADC noise), {s['slots']:,} slots: "
        f"{s['readings_seconds'] * 1e3:.2f} ms = {s['optical_macs_per_s'] / 1e9:.2f} G optical MAC/s; float32 matmul "
        f"{s['matmul_float32_seconds'] * 1e3:.2f} ms = {s['matmul_macs_per_s'] / 1e9:.2f} GMAC/s; ratio "
        f"{s['readings_over_matmul']:.1f}x (noiseless {s['noiseless_over_matmul']:.1f}x); peak memory "
        f"{s['peak_memory_bytes'] * mb:.1f} MiB (matmul {s['matmul_peak_memory_bytes'] * mb:.1f} MiB)",
    ])


def main() -> int:
    if "--measure" in sys.argv[1:]:
        print(json.dumps(measure()))
        return 0
    results = run()
    out = HERE / "results_physics.json"
    out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
