"""Small-signal RF response of the intensity-modulated link: AWG -> MZM -> fibre -> photodiode -> scope.

The classic chromatic-dispersion power-fading measurement. The bias controller locks the MZM at
quadrature (the linear point of a chirp-free push-pull modulator); the AWG plays one sine tone at a
time (a stepped sine: every tone is an integer number of cycles of the AWG segment, so there is no
intermodulation between tones and the lock-in is exact); the scope, triggered by the AWG marker,
captures a whole number of segment repetitions and each tone's amplitude is read by a digital
lock-in at the known tone frequency. ``response_db`` is normalised to the lowest frequency.

After a span of standard fibre the detected tone fades as
``H(f) = cos(pi D L lambda^2 f^2 / c)`` (PHYSICS.md section 3; chirp-free source): the first null is
at ``f0 = sqrt(c / (2 D L lambda^2))``, 19.2 GHz at 10 km, 12.1 at 25, 8.6 at 50, 6.8 at 80 km for
D = 17 ps/nm/km at 1550 nm. The measured response is that fading times the low-pass roll-off of the
cascade (AWG hold and analog bandwidth, MZM EO response, photodiode, scope), but a product of a
smooth roll-off and cos(.) is zero exactly where cos(.) is: the null's *position* is independent of
the roll-off. It is located in two steps: the first dip at least ``null_prominence_db`` deep in the
sweep, then a finer sweep around it (``refine_points`` tones within +-10 % of it) where the measured
tone power |A|^2 is fitted with a cubic in f^2 and its local minimum taken (near the null
|cos(pi D L lambda^2 f^2 / c)|^2 is quadratic in f^2; the cascade's roll-off tilts it, which the
cubic term absorbs; the noise adds a constant, which moves nothing). The null gives the
accumulated dispersion D L = c / (2 lambda^2 f0^2).

``fibre_length_km``: an experiment cannot change a real fibre. On a *simulated* bench it sets the
length of the simulated span named ``fibre`` (``bench.sim_adjust``, restored at the end) so a sweep
over lengths needs no bench files; on a real bench it must stay None (connect the fibre you want to
measure), else the run stops with an error before touching anything. The
closed-form curve on the plot uses that length, else ``nominal_length_km`` (the span you connected;
it changes nothing), else the accumulated dispersion of the measured null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field

from experiments.common.link import LinkParameters, simulated_fibre_length, transmitter_on
from labctl.runner import Experiment, ExperimentError, RunContext

C = 299_792_458.0


class Parameters(LinkParameters):
    awg_sample_rate: float = Field(64e9, gt=0, description="Sa/s")
    segment_samples: int = Field(2560, ge=1, description="AWG segment length (a valid length for the AWG); "
                                 "tones are multiples of awg_sample_rate / segment_samples")
    tone_amplitude_vpp: float = Field(0.5, gt=0, description="small-signal drive (<< 2 V_pi)")
    f_start_hz: float = Field(0.5e9, gt=0, description="lowest tone: the 0 dB reference")
    f_stop_hz: float = Field(30e9, gt=0)
    points: int = Field(60, ge=3, le=2000, description="tones in the sweep")
    refine_null: bool = Field(True, description="fine sweep around the first null and fit it")
    refine_points: int = Field(15, ge=5, le=200)
    null_prominence_db: float = Field(10.0, gt=0, description="depth a dip needs to count as a null")
    scope_sample_rate: float = Field(256e9, gt=0)
    periods: int = Field(2, ge=1, description="AWG segment repetitions per capture (lock-in length)")
    nominal_length_km: float | None = Field(None, ge=0, description="span length for the closed-form curve "
                                            "only (default: fibre_length_km)")
    dispersion_ps_nm_km: float = Field(17.0, description="fibre D for the closed-form curve (SSMF: 17)")


def first_null_hz(length_km: float, dispersion_ps_nm_km: float = 17.0, wavelength_m: float = 1550e-9) -> float:
    """Closed-form first power-fading null sqrt(c / (2 D L lambda^2)) of a chirp-free IM/DD link, Hz."""
    dl = abs(dispersion_ps_nm_km) * 1e-6 * length_km * 1e3 * wavelength_m ** 2
    return math.inf if dl == 0 else math.sqrt(C / (2 * dl))


def fading_response(f, length_km: float, dispersion_ps_nm_km: float = 17.0, wavelength_m: float = 1550e-9):
    """|cos(pi D L lambda^2 f^2 / c)| (PHYSICS.md section 3)."""
    kappa = dispersion_ps_nm_km * 1e-6 * length_km * 1e3 * wavelength_m ** 2 / C
    return np.abs(np.cos(np.pi * kappa * np.asarray(f, dtype=float) ** 2))


def lock_in(t: np.ndarray, v: np.ndarray, frequency: float) -> complex:
    """Complex amplitude of the tone at ``frequency`` in the record (2 <v exp(-j 2 pi f t)>)."""
    v = np.asarray(v, dtype=float)
    return complex(2 * np.mean((v - v.mean()) * np.exp(-2j * np.pi * frequency * np.asarray(t))))


class LinkResponse(Experiment):
    """Stepped-sine small-signal response of AWG -> MZM (quadrature) -> fibre -> photodiode -> scope."""

    name = "link_response"
    Parameters = Parameters
    default_bench = "characterisation"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        awg = ctx.bench.role(p.awg)
        step, shortest = int(awg.segment_granularity), int(awg.min_segment_samples)
        if p.segment_samples % step or p.segment_samples < shortest:
            raise ExperimentError(f"segment_samples={p.segment_samples}: the AWG {p.awg!r} plays multiples of {step} "
                                  f"samples, at least {shortest}")
        if p.f_stop_hz <= p.f_start_hz:
            raise ExperimentError(f"f_stop_hz={p.f_stop_hz:g} must be above f_start_hz={p.f_start_hz:g}")
        with simulated_fibre_length(ctx.bench, p.fibre, p.fibre_length_km):
            return self._run(ctx, p)

    def _run(self, ctx: RunContext, p: Parameters) -> dict[str, Any]:
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(frequency_hz="Hz", response_db="dB", tone_amplitude_v="V", refine_frequency_hz="Hz",
                      refine_response_db="dB", sweep_frequency_hz="Hz", sweep_response_db="dB")
        awg, channel = bench.role(p.awg), bench.role(p.awg, p.awg_channel)
        scope = bench.role(p.scope)

        awg.stop()   # the bias lock must see the static transfer
        laser, _ = transmitter_on(bench, p, switch=p.switch, route=p.switch_port)

        awg.sample_rate = p.awg_sample_rate
        channel.amplitude = p.tone_amplitude_vpp
        channel.output_enabled = True
        scope.sample_rate = p.scope_sample_rate
        fs = scope.sample_rate
        period_s = p.segment_samples / p.awg_sample_rate
        scope.record_length = int(round(p.periods * period_s * fs))
        scope.set_edge_trigger("AUX", 0.5, rising=True)

        resolution = p.awg_sample_rate / p.segment_samples
        wanted = np.linspace(p.f_start_hz, p.f_stop_hz, p.points)
        cycles = np.unique(np.clip(np.rint(wanted / resolution), 1, p.segment_samples // 2 - 1).astype(int))
        self._autoscale(bench, p, awg, channel, scope, int(cycles[0]))

        amplitudes = [self._tone(bench, p, awg, channel, scope, int(k)) for k in
                      ctx.progress(cycles, desc="stepped sine", unit="tone")]
        freqs = cycles * resolution
        amps = np.abs(np.array(amplitudes))
        reference = amps[0]
        sweep_db = 20 * np.log10(np.maximum(amps, 1e-300) / reference)
        rec.write("sweep_frequency_hz", freqs)
        rec.write("sweep_response_db", sweep_db)

        coarse = self._first_dip(freqs, sweep_db, p.null_prominence_db)
        null, fine_f, fine_a = coarse, np.zeros(0), np.zeros(0)
        if coarse is not None and p.refine_null:
            fine_cycles = np.unique(np.rint(np.linspace(0.9 * coarse, 1.1 * coarse, p.refine_points)
                                            / resolution).astype(int))
            fine_cycles = fine_cycles[(fine_cycles >= 1) & (fine_cycles < p.segment_samples // 2)]
            fine_a = np.abs(np.array([self._tone(bench, p, awg, channel, scope, int(k)) for k in
                                      ctx.progress(fine_cycles, desc="null refinement", unit="tone")]))
            fine_f = fine_cycles * resolution
            null = self._fit_null(fine_f, fine_a, coarse)
            rec.write("refine_frequency_hz", fine_f)
            rec.write("refine_response_db", 20 * np.log10(np.maximum(fine_a, 1e-300) / reference))
        awg.stop()
        channel.output_enabled = False
        laser.output_enabled = False

        all_f = np.concatenate([freqs, fine_f])
        all_a = np.concatenate([amps, fine_a])
        order = np.argsort(all_f, kind="stable")
        rec.write("frequency_hz", all_f[order])
        rec.write("response_db", 20 * np.log10(np.maximum(all_a[order], 1e-300) / reference))
        rec.write("tone_amplitude_v", all_a[order])

        wavelength = p.wavelength_nm * 1e-9
        summary: dict[str, Any] = {
            "first_null_hz": float(null) if null is not None else float("nan"),
            "first_null_coarse_hz": float(coarse) if coarse is not None else float("nan"),
            "reference_frequency_hz": float(freqs[0]),
            "reference_amplitude_v": float(reference),
        }
        if null is not None:
            summary["accumulated_dispersion_ps_per_nm"] = C / (2 * wavelength ** 2 * null ** 2) * 1e3
        known = p.fibre_length_km if p.fibre_length_km is not None else p.nominal_length_km
        if known is not None:
            summary["expected_first_null_hz"] = first_null_hz(known, p.dispersion_ps_nm_km, wavelength)
        self._plot(ctx, p, all_f[order], 20 * np.log10(np.maximum(all_a[order], 1e-300) / reference), null, coarse)
        return summary

    # -- measurement ---------------------------------------------------------------------------------

    def _play(self, bench, p: Parameters, awg, channel, cycles: int) -> None:
        n = np.arange(p.segment_samples)
        awg.stop()
        channel.upload_waveform(np.sin(2 * np.pi * cycles * n / p.segment_samples))
        awg.run()
        bench.settle(p.settle_s)

    def _tone(self, bench, p: Parameters, awg, channel, scope, cycles: int) -> complex:
        """Play the tone of ``cycles`` cycles per segment; its complex amplitude at the scope, V."""
        self._play(bench, p, awg, channel, cycles)
        t, traces = scope.capture([p.scope_channel])
        return lock_in(t, traces[p.scope_channel], cycles * p.awg_sample_rate / p.segment_samples)

    def _autoscale(self, bench, p: Parameters, awg, channel, scope, cycles: int) -> None:
        """Centre the detector level on screen with the lowest (strongest) tone playing."""
        self._play(bench, p, awg, channel, cycles)
        scope.set_vertical(p.scope_channel, 0.8, 0.0)
        _, traces = scope.capture([p.scope_channel])
        lo, hi = np.percentile(traces[p.scope_channel], [0.1, 99.9])
        scope.set_vertical(p.scope_channel, max(1.6 * (hi - lo), 0.016), (hi + lo) / 2)
        _, traces = scope.capture([p.scope_channel])  # again on the finer range
        lo, hi = np.percentile(traces[p.scope_channel], [0.1, 99.9])
        scope.set_vertical(p.scope_channel, max(1.5 * (hi - lo), 0.016), (hi + lo) / 2)

    # -- analysis ------------------------------------------------------------------------------------

    @staticmethod
    def _first_dip(f: np.ndarray, response_db: np.ndarray, prominence_db: float) -> float | None:
        """Frequency of the first local minimum at least ``prominence_db`` below its neighbourhood."""
        from scipy.signal import find_peaks

        peaks, _ = find_peaks(-response_db, prominence=prominence_db)
        return float(f[peaks[0]]) if peaks.size else None

    @staticmethod
    def _fit_null(f: np.ndarray, amplitude: np.ndarray, guess: float) -> float:
        """Minimum of a cubic in x = f^2 fitted to |A|^2 around the null (the guess if it fails).

        Near the null |A|^2 = g(x) (x - x0)^2 + noise power with a slowly varying roll-off
        g = g0 (1 + s (x - x0)): a cubic whose local minimum is exactly x0 whatever the slope s (a
        parabola's vertex would be pulled by s). The noise power adds a constant.
        """
        x = (f / guess) ** 2
        c3, c2, c1, _ = np.polyfit(x - 1.0, amplitude ** 2, 3)
        roots = np.roots([3 * c3, 2 * c2, c1]) if c3 else np.array([-c1 / (2 * c2)]) if c2 else np.array([])
        roots = [float(r.real) + 1.0 for r in np.atleast_1d(roots) if abs(r.imag) < 1e-12
                 and 6 * c3 * r.real + 2 * c2 > 0]
        inside = [r for r in roots if x.min() <= r <= x.max()]
        if not inside:
            return guess
        return float(guess * math.sqrt(min(inside, key=lambda r: abs(r - 1.0))))

    def _plot(self, ctx: RunContext, p: Parameters, f, response_db, null, coarse) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        wavelength = p.wavelength_nm * 1e-9
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(f / 1e9, response_db, ".-", ms=4, lw=0.8, label="measured (stepped sine, lock-in)")
        fine = np.linspace(0, f.max(), 2000)
        known = p.fibre_length_km if p.fibre_length_km is not None else p.nominal_length_km
        if known is not None and known > 0:
            curve = fading_response(fine, known, p.dispersion_ps_nm_km, wavelength)
            label = (f"closed form |cos(pi D L lambda^2 f^2/c)|, D={p.dispersion_ps_nm_km:g} ps/nm/km, "
                     f"L={known:g} km")
            ax.plot(fine / 1e9, 20 * np.log10(np.maximum(curve, 1e-6)), "-", lw=1, color="C1", label=label)
            expected = first_null_hz(known, p.dispersion_ps_nm_km, wavelength)
            if expected <= fine[-1]:
                ax.axvline(expected / 1e9, color="C1", ls=":", lw=1,
                           label=f"closed-form first null {expected / 1e9:.2f} GHz")
        elif null is not None:
            dl_km = C / (2 * wavelength ** 2 * null ** 2) / (p.dispersion_ps_nm_km * 1e-6) / 1e3
            curve = fading_response(fine, dl_km, p.dispersion_ps_nm_km, wavelength)
            ax.plot(fine / 1e9, 20 * np.log10(np.maximum(curve, 1e-6)), "-", lw=1, color="C1",
                    label=f"closed form with the measured D L ({dl_km:.1f} km at D={p.dispersion_ps_nm_km:g})")
        if null is not None:
            ax.axvline(null / 1e9, color="C3", ls="--", lw=1, label=f"measured first null {null / 1e9:.2f} GHz")
        ax.set(xlabel="frequency (GHz)", ylabel=f"response (dB re {f[0] / 1e9:.2g} GHz)",
               title="Small-signal link response: AWG -> MZM -> fibre -> PD -> scope")
        ax.set_ylim(max(float(np.min(response_db)) - 5, -60), 5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        fig.savefig(ctx.artefact("link_response.png"), dpi=120)
        plt.close(fig)
