"""The waveform level against OptiCommPy, side by side in one process.

Run: ``python -m benchmarks.bench_waveform`` (prints the figures, writes benchmarks/results_waveform.json).
OptiCommPy comes with the ``bench`` extra (``pip install -e '.[bench]'``); without it its rows are skipped
with a note and labctl's times and its agreement with the closed forms are still measured.

* Like for like, 2^20 samples at 128 GSa/s: 16 GBd PAM4 drive -> chirp-free MZM at quadrature (V_pi 5 V) ->
  25 km SSMF (0.2 dB/km, D 17 ps/nm/km; loss and dispersion) -> PIN into 50 ohm with shot and thermal noise and
  a 20 GHz brick-wall bandwidth, in labctl (``MachZehnderModel``, ``FibreSpan``, ``Receiver``; single-precision
  records) and in OptiCommPy (``mzm``, ``linearFiberChannel``, ``photodiode``; its default 255-tap FIR). Target:
  labctl at least 2x faster.
* labctl's full chain (``symbol_level.waveform_link``: DAC with quantisation and ENOB noise, zero-order hold and
  25 GHz response, MZM with 30 GHz EO response, the same fibre, PIN + TIA with thermal, shot and RIN, 10-bit ADC
  with ENOB 6 and 50 GHz front end), the chain ``bench_physics`` times, against OptiCommPy's like-for-like chain.
  Target: no slower.
* Times are medians of interleaved repeats (the chains alternate round by round, so load elsewhere on a shared
  machine hits all alike); peak memory is the tracemalloc peak of one separate call (NumPy buffers included).
* Agreement: the CD power-fading nulls of each simulator's chain (noiseless, small-signal multi-tone drive,
  received tones over back-to-back tones) against f_k = sqrt((k - 1/2) c / (D L lambda^2)) (PHYSICS.md
  section 3), and the detected current's variance under CW light against 2 q (R P + I_d) B + 4 k T B / R_L.
* The profile's top entries (cProfile, by own time) of both labctl chains.
"""

from __future__ import annotations

import cProfile
import json
import math
import os
import platform
import pstats
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.bench_physics import RECEIVER, SYMBOL_RATE
from benchmarks.child import measure_in_child
from sim_backends.physics.components import MachZehnderModulator
from sim_backends.physics.constants import C, K_B, Q
from sim_backends.physics.converters import ADC, DAC
from sim_backends.physics.fibre import FibreSpan
from sim_backends.physics.modulator import MachZehnderModel
from sim_backends.physics.receiver import Receiver
from sim_backends.physics.symbol_level import waveform_link
from benchmarks.timing import interleaved, peak_bytes

HERE = Path(__file__).parent
SAMPLES = 2**20
FS = 128e9
LASER_W = 10e-3
V_PI = 5.0
BIAS_V = -V_PI / 2  # quadrature
LENGTH_KM, LOSS_DB_KM, D_PS_NM_KM, WAVELENGTH = 25.0, 0.2, 17.0, 1550e-9
#: PIN into 50 ohm, 20 GHz: R and dark current of the PHYSICS.md table 2 class; 25 degC is OptiCommPy's default
#: temperature, so both simulators compute the same thermal noise.
PD = dict(responsivity=0.9, dark_current=5e-9, bandwidth_hz=20e9, load_ohm=50.0, temperature_k=298.15)
TARGET_LIKE_FOR_LIKE = 2.0  # OptiCommPy's time over labctl's, at least
TARGET_FULL_CHAIN = 1.0  # labctl full chain's time over OptiCommPy's like-for-like, at most
REPEATS = 7
EDGE = 1024  # samples left out at each end of a record for noise statistics (> OptiCommPy's 255-tap FIR)
NOT_INSTALLED = "OptiCommPy is not installed (it comes with the bench extra: pip install -e '.[bench]'); its rows are skipped"


def _opticommpy():
    """OptiCommPy's modules, or None when the bench extra is not installed."""
    try:
        from optic.models.channels import linearFiberChannel
        from optic.models.devices import mzm, photodiode
        from optic.utils import parameters
    except ImportError:
        return None
    return dict(mzm=mzm, channel=linearFiberChannel, photodiode=photodiode, parameters=parameters)


def _profile(fn: Callable[[], object], top: int = 8) -> list[dict]:
    """The ``top`` entries of one call's cProfile by own time, with their share of the total."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [{"function": f"{Path(path).name}:{line}({name})", "calls": calls, "own_s": own,
             "own_percent": 100 * own / total}
            for (path, line, name), (_, calls, own, _, _) in rows]


# -- the chains ---------------------------------------------------------------------------------------


class _LabctlLink:
    """MZM -> SSMF -> PIN in labctl's physics modules (single-precision records)."""

    def __init__(self, receiver: Receiver, length_km: float = LENGTH_KM):
        self.mzm = MachZehnderModel(v_pi=V_PI, v_pi_rf=V_PI, insertion_loss_db=0.0, extinction_ratio_db=60.0)
        self.span = FibreSpan(length_km, LOSS_DB_KM, D_PS_NM_KM) if length_km > 0 else None
        self.receiver = receiver

    def __call__(self, drive_v: np.ndarray, rng, noise: bool = True) -> np.ndarray:
        """Photocurrent for a float32 drive (V)."""
        field = self.mzm.field_transmission(drive_v, BIAS_V)
        field *= np.float32(math.sqrt(LASER_W))
        if self.span is not None:
            field = self.span.propagate(field, FS, WAVELENGTH)
        return self.receiver.detect(field.astype(np.complex64, copy=False), FS, rng, noise=noise)


class _OpticommpyLink:
    """The same chain in OptiCommPy (its float64 records and FIR receiver filter)."""

    def __init__(self, ocp: dict, length_km: float = LENGTH_KM, bandwidth_hz: float = PD["bandwidth_hz"],
                 ideal: bool = False, seed: int | None = None):
        p = ocp["parameters"]
        self.ocp = ocp
        self.mzm = p()
        self.mzm.Vpi, self.mzm.Vb, self.mzm.ER = V_PI, BIAS_V, 60.0
        self.channel = None
        if length_km > 0:
            self.channel = p()
            self.channel.L, self.channel.alpha, self.channel.D = length_km, LOSS_DB_KM, D_PS_NM_KM
            self.channel.Fc, self.channel.Fs = C / WAVELENGTH, FS
        self.pd = p()
        self.pd.R, self.pd.Id, self.pd.RL = PD["responsivity"], PD["dark_current"], PD["load_ohm"]
        self.pd.Tc, self.pd.B, self.pd.Fs = PD["temperature_k"] - 273.15, bandwidth_hz, FS
        self.pd.ideal = ideal
        if seed is not None:
            self.pd.seed = seed

    def __call__(self, drive_v: np.ndarray) -> np.ndarray:
        field = self.ocp["mzm"](np.full(drive_v.size, math.sqrt(LASER_W)), drive_v, self.mzm)
        if self.channel is not None:
            field = self.ocp["channel"](field, self.channel)
        return self.ocp["photodiode"](field, self.pd)


def _pam4_drive(rng, samples: int = SAMPLES) -> np.ndarray:
    """16 GBd PAM4 at 8 samples per symbol, +-0.3 V (a small-signal swing at V_pi 5 V)."""
    per_symbol = int(FS / SYMBOL_RATE)
    return np.repeat(np.asarray([-0.3, -0.1, 0.1, 0.3])[rng.integers(0, 4, samples // per_symbol)], per_symbol)


def _full_chain(rng) -> Callable[[], object]:
    """labctl's full chain (``waveform_link``) on 2^20 samples, as ``bench_physics`` runs it."""
    upsample = 2
    dac = DAC()
    per_symbol = int(dac.sample_rate / SYMBOL_RATE) * upsample
    adc = ADC(bits=10, full_scale_v=1.0, offset_v=0.5, enob=6.0, sample_rate=dac.sample_rate * upsample,
              bandwidth_hz=50e9)
    mzm = MachZehnderModulator("mzm", v_pi=V_PI, eo_bandwidth_hz=30e9)
    fibre = FibreSpan(LENGTH_KM, LOSS_DB_KM, D_PS_NM_KM)
    rx = Receiver(**RECEIVER)
    drive = np.asarray([-0.3, -0.1, 0.1, 0.3])[rng.integers(0, 4, SAMPLES // per_symbol)]
    return lambda: waveform_link(drive, rng, symbol_rate=SYMBOL_RATE, dac=dac, mzm=mzm, receiver=rx, adc=adc,
                                 bias_v=2.5, laser_power_w=LASER_W, drive_gain=2.5, fibre=fibre, upsample=upsample,
                                 return_waveform=True)


# -- timing ---------------------------------------------------------------------------------------------


def speed(repeats: int = REPEATS) -> dict:
    """Medians of interleaved repeats of the three chains, their ratios and peak memory."""
    ocp = _opticommpy()
    rng = np.random.default_rng(0)
    drive = _pam4_drive(rng)
    drive32 = drive.astype(np.float32)  # labctl's records are single precision
    labctl = _LabctlLink(Receiver(**PD))
    fns = {"labctl_like_for_like": lambda: labctl(drive32, rng), "labctl_full_chain": _full_chain(rng)}
    if ocp is not None:
        reference = _OpticommpyLink(ocp)
        fns["opticommpy_like_for_like"] = lambda: reference(drive)
    for fn in fns.values():  # first calls: caches, numba compilation, FFT plans
        fn()
    seconds = interleaved(fns, repeats)
    peaks = {name: peak_bytes(fn) for name, fn in fns.items()}
    out = {"samples": SAMPLES, "sample_rate_hz": FS, "repeats": repeats,
           "seconds": seconds, "peak_memory_bytes": peaks,
           "profile": {name: _profile(fns[name]) for name in ("labctl_like_for_like", "labctl_full_chain")}}
    if ocp is None:
        out["opticommpy"] = NOT_INSTALLED
        return out
    like = seconds["opticommpy_like_for_like"] / seconds["labctl_like_for_like"]
    full = seconds["labctl_full_chain"] / seconds["opticommpy_like_for_like"]
    out["like_for_like"] = {"opticommpy_over_labctl": like, "target": f">= {TARGET_LIKE_FOR_LIKE:g}",
                            "met": like >= TARGET_LIKE_FOR_LIKE}
    out["full_chain"] = {"labctl_full_over_opticommpy_like_for_like": full, "target": f"<= {TARGET_FULL_CHAIN:g}",
                         "met": full <= TARGET_FULL_CHAIN}
    return out


# -- agreement ------------------------------------------------------------------------------------------


def closed_form_nulls_hz(count: int) -> np.ndarray:
    """Chirp-free CD power-fading nulls f_k = sqrt((k - 1/2) c / (D L lambda^2)) (PHYSICS.md section 3)."""
    d_l = D_PS_NM_KM * 1e-6 * LENGTH_KM * 1e3 * WAVELENGTH**2
    return np.sqrt((np.arange(1, count + 1) - 0.5) * C / d_l)


def _tone_drive(n: int, fmax_hz: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Small-signal multi-tone drive on the odd FFT bins up to ``fmax_hz`` (second-order products of the
    modulator and the square-law detector fall on even bins, away from the tones): (drive V, tone bins)."""
    bins = np.arange(1, int(fmax_hz * n / FS), 2)
    spectrum = np.zeros(n // 2 + 1, dtype=complex)
    spectrum[bins] = np.exp(1j * rng.uniform(0, 2 * np.pi, bins.size))  # equal tones, random phases
    drive = np.fft.irfft(spectrum, n=n)
    # 0.05 V rms on V_pi 5 V: the third-order products that fall on the tones stay far below a tone near a null
    drive *= 0.01 * V_PI / np.sqrt(np.mean(drive**2))
    return drive, bins


def _nulls(response: np.ndarray, freqs: np.ndarray, count: int) -> list[float]:
    """The first ``count`` sign changes of a real response, linearly interpolated (Hz)."""
    crossings = np.flatnonzero(np.sign(response[:-1]) != np.sign(response[1:]))[:count]
    r0, r1 = response[crossings], response[crossings + 1]
    return list(freqs[crossings] - r0 * (freqs[crossings + 1] - freqs[crossings]) / (r1 - r0))


def fading_nulls(ocp, count: int = 4) -> dict:
    """Nulls of each simulator's fibre response: received tone / back-to-back tone, real part, normalised."""
    n = 2**16
    drive, bins = _tone_drive(n, 40e9, np.random.default_rng(11))
    freqs = bins * FS / n
    wide = Receiver(**{**PD, "bandwidth_hz": 60e9})  # passes every tone; noiseless here

    def tone_ratio(with_fibre, without):
        return (np.fft.rfft(with_fibre)[bins] / np.fft.rfft(without)[bins]).real

    drive32 = drive.astype(np.float32)
    ratio = tone_ratio(_LabctlLink(wide)(drive32, None, noise=False), _LabctlLink(wide, 0.0)(drive32, None, noise=False))
    out = {"closed_form_hz": list(closed_form_nulls_hz(count)), "labctl_hz": _nulls(ratio / ratio[0], freqs, count),
           "tones": int(bins.size), "tone_spacing_hz": 2 * FS / n}
    if ocp is not None:
        ratio = tone_ratio(_OpticommpyLink(ocp, ideal=True)(drive), _OpticommpyLink(ocp, 0.0, ideal=True)(drive))
        out["opticommpy_hz"] = _nulls(ratio / ratio[0], freqs, count)
    closed = np.asarray(out["closed_form_hz"])
    for name in ("labctl", "opticommpy"):
        if f"{name}_hz" in out:
            out[f"{name}_worst_relative_error"] = float(np.max(np.abs(np.asarray(out[f"{name}_hz"]) / closed - 1)))
    return out


def noise_variances(ocp, powers_w=(0.0, 1e-3, 10e-3)) -> dict:
    """Variance of the detected current under CW light: labctl, OptiCommPy, closed form. OptiCommPy's FIR
    filter convolves linearly (its record's ends see the filter's step response), so the variances are taken
    away from both records' ends."""
    b = PD["bandwidth_hz"]
    rows = []
    rx = Receiver(**PD)
    for k, p in enumerate(powers_w):
        field = np.full(SAMPLES, math.sqrt(p), dtype=np.complex64)
        shot = 2 * Q * (PD["responsivity"] * p + PD["dark_current"]) * b
        thermal = 4 * K_B * PD["temperature_k"] * b / PD["load_ohm"]
        row = {"power_w": p, "closed_form_a2": shot + thermal, "shot_a2": shot, "thermal_a2": thermal,
               "labctl_a2": float(np.var(rx.detect(field, FS, np.random.default_rng(20 + k))[EDGE:-EDGE]))}
        if ocp is not None:  # CW light straight into its photodiode model
            pd = _OpticommpyLink(ocp, 0.0, seed=30 + k).pd
            row["opticommpy_a2"] = float(np.var(ocp["photodiode"](field.astype(np.complex128), pd)[EDGE:-EDGE]))
        for name in ("labctl", "opticommpy"):
            if f"{name}_a2" in row:
                row[f"{name}_relative_error"] = row[f"{name}_a2"] / row["closed_form_a2"] - 1
        rows.append(row)
    # a variance from n samples of noise band-limited to B at rate fs: ~n 2 B / fs independent samples
    return {"rows": rows, "sampling_error": math.sqrt(2 / ((SAMPLES - 2 * EDGE) * 2 * b / FS))}


def measure() -> dict:
    """All figures, measured in this process."""
    ocp = _opticommpy()
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "numpy": np.__version__, "load_average_1min": os.getloadavg()[0]},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "memory_method": "tracemalloc peak of one call (NumPy buffers included), separate from the timing",
        "opticommpy_version": None if ocp is None else _version("opticommpy"),
        "speed": speed(),
        "agreement": {"fading_nulls": fading_nulls(ocp), "noise_variances": noise_variances(ocp)},
    }
    return results


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


def run() -> dict:
    """All figures, measured in a child process with single-threaded BLAS."""
    return measure_in_child("benchmarks.bench_waveform", single_thread_openmp=True)


def save(results: dict) -> Path:
    out = HERE / "results_waveform.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def report(results: dict) -> str:
    s = results["speed"]
    mb = 1 / 2**20
    t, peak = s["seconds"], s["peak_memory_bytes"]
    lines = [f"waveform level, {s['samples']:,} samples at {s['sample_rate_hz'] / 1e9:.0f} GSa/s "
             f"(medians of {s['repeats']} interleaved repeats):"]
    for name in t:
        lines.append(f"  {name:<26} {t[name] * 1e3:7.1f} ms, peak memory {peak[name] * mb:5.0f} MiB")
    if "opticommpy" in s:
        lines.append(f"  {s['opticommpy']}")
    else:
        like, full = s["like_for_like"], s["full_chain"]
        lines.append(f"  like for like: OptiCommPy / labctl = {like['opticommpy_over_labctl']:.2f}x "
                     f"(target {like['target']}: {'met' if like['met'] else 'NOT met'})")
        lines.append(f"  labctl full chain / OptiCommPy like for like = "
                     f"{full['labctl_full_over_opticommpy_like_for_like']:.2f} "
                     f"(target {full['target']}: {'met' if full['met'] else 'NOT met'})")
    nulls = results["agreement"]["fading_nulls"]
    ghz = lambda xs: ", ".join(f"{x / 1e9:.2f}" for x in xs)  # noqa: E731
    lines.append(f"CD power-fading nulls (GHz): closed form {ghz(nulls['closed_form_hz'])}; "
                 f"labctl {ghz(nulls['labctl_hz'])}"
                 + (f"; OptiCommPy {ghz(nulls['opticommpy_hz'])}" if "opticommpy_hz" in nulls else ""))
    noise = results["agreement"]["noise_variances"]
    for row in noise["rows"]:
        text = (f"noise variance at {row['power_w'] * 1e3:g} mW: closed form {row['closed_form_a2']:.3e} A^2, "
                f"labctl {row['labctl_relative_error'] * 100:+.2f} %")
        if "opticommpy_a2" in row:
            text += f", OptiCommPy {row['opticommpy_relative_error'] * 100:+.2f} %"
        lines.append(text + f" (sampling error ~{noise['sampling_error'] * 100:.1f} %)")
    for name, rows in s["profile"].items():
        lines.append(f"profile of {name} (own time): " + "; ".join(
            f"{r['function']} {r['own_percent']:.0f} %" for r in rows[:5]))
    return "\n".join(lines)


def main() -> int:
    if "--measure" in sys.argv[1:]:
        print(json.dumps(measure()))
        return 0
    results = run()
    out = save(results)
    print(report(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
