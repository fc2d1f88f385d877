"""Eye diagram of a PRBS NRZ (OOK) or PAM4 signal through the link, and its Q factor.

The AWG plays a pseudo-random pattern (PRBS from a linear-feedback shift register, Gray-coded pairs
of bits for PAM4) at ``symbol_rate_hz`` into the MZM locked at quadrature; the scope, triggered by
the AWG marker, captures ``periods`` repetitions of the pattern. The trace is aligned to the pattern
by circular cross-correlation (the link delay modulo the pattern period), folded over two unit
intervals into a density plot (the eye), and sampled once per symbol -- at the scope sample nearest
to the sampling phase, without interpolation, so the noise keeps its per-sample statistics. The
sampling phase is the middle of the trial phases (``phases`` across the unit interval) whose level
means are within 2 % of the widest separation: the eye centre (choosing by the largest Q would
favour noise).

Q factor (OOK): Q = (mu1 - mu0) / (sigma1 + sigma0), with BER ~ erfc(Q / sqrt 2) / 2 for Gaussian
noise. PAM4: the smallest Q of the three eyes, Q_k = (mu_k+1 - mu_k) / (sigma_k+1 + sigma_k), and a
symbol error rate ~ 2 (1 - 1/M) erfc(Q / sqrt 2) / 2.
``fibre_length_km`` works as in ``link_response`` (simulated bench only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field
from scipy.special import erfc

from experiments.common.link import LinkParameters, simulated_fibre_length, transmitter_on
from labctl.runner import Experiment, ExperimentError, RunContext

#: Feedback taps (1-based, Fibonacci LFSR) of the ITU-T O.150 PRBS polynomials x^n + x^m + 1.
PRBS_TAPS = {7: (7, 6), 9: (9, 5), 11: (11, 9), 15: (15, 14), 23: (23, 18), 31: (31, 28)}


def prbs_bits(order: int, count: int, seed: int = 1) -> np.ndarray:
    """``count`` bits of the PRBS of ``order`` (period 2^order - 1), from a non-zero ``seed`` state."""
    if order not in PRBS_TAPS:
        raise ValueError(f"prbs_order={order!r} is not one of {sorted(PRBS_TAPS)}")
    a, b = PRBS_TAPS[order]
    state = (seed % (2 ** order - 1)) + 1
    out = np.empty(count, dtype=np.uint8)
    for i in range(count):  # at most a few 10^4 symbols per pattern
        bit = ((state >> (a - 1)) ^ (state >> (b - 1))) & 1
        state = ((state << 1) | bit) & ((1 << order) - 1)
        out[i] = bit
    return out


def symbols_for(format_: str, order: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(symbol indices 0..M-1, level values in [-1, 1]) of ``count`` symbols of a PRBS pattern."""
    if format_ == "nrz":
        symbols = prbs_bits(order, count).astype(int)
        return symbols, np.array([-1.0, 1.0])
    bits = prbs_bits(order, 2 * count).reshape(-1, 2).astype(int)
    gray = {(0, 0): 0, (0, 1): 1, (1, 1): 2, (1, 0): 3}  # Gray mapping: neighbours differ in one bit
    symbols = np.array([gray[(int(m), int(l))] for m, l in bits])
    return symbols, np.linspace(-1.0, 1.0, 4)


def level_statistics(samples: np.ndarray, sent: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, sigmas, Q of each adjacent pair) of the samples grouped by the symbol sent."""
    means = np.array([samples[sent == k].mean() for k in range(levels)])
    sigmas = np.array([samples[sent == k].std() for k in range(levels)])
    q = np.diff(means) / (sigmas[:-1] + sigmas[1:])
    return means, sigmas, q


class Parameters(LinkParameters):
    awg_sample_rate: float = Field(64e9, gt=0, description="nominal DAC rate; adjusted to an integer "
                                   "number of samples per symbol")
    symbol_rate_hz: float = Field(16e9, gt=0)
    format: str = Field("nrz", pattern="^(nrz|pam4)$", description="nrz (OOK) or pam4")
    prbs_order: int = Field(7, description="PRBS 7, 9, 11, 15, 23 or 31")
    pattern_symbols: int = Field(1024, ge=8, description="minimum AWG pattern length in symbols")
    amplitude_vpp: float = Field(1.0, gt=0)
    scope_sample_rate: float = Field(256e9, gt=0)
    periods: int = Field(2, ge=1, description="pattern repetitions captured")
    phases: int = Field(32, ge=1, description="trial sampling phases across the unit interval")


class EyeDiagram(Experiment):
    """PRBS NRZ or PAM4 through the link: eye diagram (PNG) and Q factor."""

    name = "eye_diagram"
    Parameters = Parameters
    default_bench = "characterisation"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        if p.prbs_order not in PRBS_TAPS:
            raise ExperimentError(f"prbs_order={p.prbs_order} is not one of {sorted(PRBS_TAPS)}")
        with simulated_fibre_length(ctx.bench, p.fibre, p.fibre_length_km):
            return self._run(ctx, p)

    def _run(self, ctx: RunContext, p: Parameters) -> dict[str, Any]:
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(time_s="s", trace_v="V", symbol_samples_v="V", level_means_v="V", level_sigmas_v="V",
                      sent_symbols="1")
        awg, channel = bench.role(p.awg), bench.role(p.awg, p.awg_channel)
        scope = bench.role(p.scope)

        sps = max(1, round(p.awg_sample_rate / p.symbol_rate_hz))
        dac_rate = sps * p.symbol_rate_hz
        granularity, shortest = int(awg.segment_granularity), int(awg.min_segment_samples)
        step = granularity // math.gcd(sps, granularity)  # symbols per granularity block
        n_symbols = step * math.ceil(max(p.pattern_symbols, shortest / sps) / step)
        symbols, values = symbols_for(p.format, p.prbs_order, n_symbols)
        levels = values.size
        waveform = np.repeat(values[symbols], sps)

        awg.stop()   # the bias lock must see the static transfer
        laser, _ = transmitter_on(bench, p, switch=p.switch, route=p.switch_port)
        awg.sample_rate = dac_rate
        channel.upload_waveform(waveform)
        channel.amplitude = p.amplitude_vpp
        channel.output_enabled = True
        awg.run()
        bench.settle(p.settle_s)

        symbol_s = 1.0 / p.symbol_rate_hz
        period_s = n_symbols * symbol_s
        scope.sample_rate = p.scope_sample_rate
        fs = scope.sample_rate
        scope.set_edge_trigger("AUX", 0.5, rising=True)
        scope.record_length = int(math.ceil(min(p.periods * period_s, 64 * symbol_s) * fs))
        scope.set_vertical(p.scope_channel, 0.8, 0.0)
        _, first = scope.capture([p.scope_channel])
        lo, hi = np.percentile(first[p.scope_channel], [0.1, 99.9])
        range_v = max(1.6 * (hi - lo), 0.016)
        scope.set_vertical(p.scope_channel, range_v, (hi + lo) / 2)
        scope.record_length = int(math.ceil(p.periods * period_s * fs))
        t, traces = scope.capture([p.scope_channel])
        trace = traces[p.scope_channel]
        awg.stop()
        channel.output_enabled = False
        laser.output_enabled = False

        delay = self._delay(t, trace, values[symbols], symbol_s, period_s)
        phase, samples, sent = self._sample(t, trace, symbols, delay, symbol_s, levels, p.phases)
        means, sigmas, q = level_statistics(samples, sent, levels)
        rec.write("time_s", t)
        rec.write("trace_v", trace)
        rec.write("symbol_samples_v", samples)
        rec.write("sent_symbols", sent)
        rec.write("level_means_v", means)
        rec.write("level_sigmas_v", sigmas)
        q_min = float(q.min())
        summary = {
            "q_factor": q_min,
            "q_factor_db": 20 * math.log10(q_min) if q_min > 0 else float("-inf"),
            # Gaussian noise: symbol error rate 2 (1 - 1/M) Q(q), Q(x) = erfc(x / sqrt 2) / 2 (OOK: the BER)
            "ser_estimate": float(2 * (1 - 1 / levels) * 0.5 * erfc(q_min / math.sqrt(2))),
            "eye_amplitude_v": float(means[-1] - means[0]),
            "sampling_phase_ui": float(phase),
            "link_delay_mod_period_s": float(delay),
            "symbol_rate_hz": float(p.symbol_rate_hz),
            "awg_sample_rate": float(dac_rate),
            "scope_range_v": float(range_v),
            "symbols_sampled": int(samples.size),
        }
        self._plot(ctx, p, t, trace, delay, symbol_s, means, q_min, phase)
        return summary

    # -- analysis ------------------------------------------------------------------------------------

    @staticmethod
    def _delay(t, trace, pattern_values, symbol_s, period_s, bins_per_symbol: int = 8) -> float:
        """Link delay modulo the pattern period by circular cross-correlation of the folded trace."""
        bins = pattern_values.size * bins_per_symbol
        index = np.floor((t % period_s) / period_s * bins).astype(int) % bins
        counts = np.bincount(index, minlength=bins)
        folded = np.bincount(index, weights=trace, minlength=bins) / np.maximum(counts, 1)
        folded[counts == 0] = np.mean(trace)
        reference = np.repeat(pattern_values, bins_per_symbol)
        spectrum = np.fft.rfft(folded - folded.mean()) * np.conj(np.fft.rfft(reference - reference.mean()))
        return float(np.argmax(np.fft.irfft(spectrum, n=bins)) * period_s / bins)

    @staticmethod
    def _sample(t, trace, symbols, delay, symbol_s, levels, phases):
        """(phase in UI, one sample per symbol at that phase, symbol sent) at the eye centre."""
        dt = t[1] - t[0]

        def at(phase):
            first = int(math.ceil((t[0] - delay) / symbol_s - phase))
            last = int(math.floor((t[-1] - delay) / symbol_s - phase))
            k = np.arange(first, last + 1)
            index = np.clip(np.rint((delay + (k + phase) * symbol_s - t[0]) / dt).astype(int), 0, t.size - 1)
            return trace[index], symbols[k % symbols.size]

        trial = (np.arange(phases) + 0.5) / phases
        openings = np.full(trial.size, -np.inf)
        for i, phase in enumerate(trial):
            samples, sent = at(phase)
            if np.bincount(sent, minlength=levels).min() >= 2:
                openings[i] = np.min(np.diff([samples[sent == j].mean() for j in range(levels)]))
        if not np.isfinite(openings).any():
            raise ExperimentError("the capture holds too few symbols of every level; raise periods")
        # the eye centre: the middle (circular mean) of the phases within 2 % of the widest opening,
        # so a flat eye top is sampled in its middle rather than wherever noise makes it widest
        good = openings >= openings.max() - 0.02 * abs(openings.max())
        centre = np.angle(np.mean(np.exp(2j * np.pi * trial[good]))) / (2 * np.pi) % 1.0
        samples, sent = at(centre)
        return float(centre), samples, sent

    def _plot(self, ctx: RunContext, p: Parameters, t, trace, delay, symbol_s, means, q, phase) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # for display only: 8x band-limited (FFT) interpolation, so a scope synchronous with the symbol
        # clock still draws continuous traces; then fold over two unit intervals with the sampling
        # instant in the middle of the first one
        from scipy.signal import resample

        up = 8
        keep = min(trace.size, 1 << 15)  # enough traces for the picture
        trace, t = trace[:keep], t[:keep]
        trace = resample(trace, trace.size * up)
        t = t[0] + np.arange(trace.size) * (t[1] - t[0]) / up
        x = ((t - delay - (phase - 0.5) * symbol_s) % (2 * symbol_s)) / symbol_s
        fig, ax = plt.subplots(figsize=(7, 4.5))
        span = trace.max() - trace.min()
        y_edges = np.linspace(trace.min() - 0.05 * span, trace.max() + 0.05 * span, 200)
        density, xe, ye = np.histogram2d(x, trace, bins=[np.linspace(0, 2, 257), y_edges])
        ax.imshow(np.log1p(density.T), origin="lower", aspect="auto", cmap="magma",
                  extent=[0, 2, ye[0] * 1e3, ye[-1] * 1e3])
        for m in means:
            ax.axhline(m * 1e3, color="w", lw=0.4, ls=":")
        ax.axvline(0.5, color="c", lw=0.6, ls="--", label="sampling instant")
        ax.axvline(1.5, color="c", lw=0.6, ls="--")
        name = "NRZ" if p.format == "nrz" else "PAM4"
        ax.set(xlabel="time (UI)", ylabel="detector voltage (mV)",
               title=f"{name} PRBS{p.prbs_order} at {p.symbol_rate_hz / 1e9:g} GBd: Q = {q:.2f} "
                     f"({20 * math.log10(q) if q > 0 else float('nan'):.1f} dB)")
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(ctx.artefact("eye_diagram.png"), dpi=120)
        plt.close(fig)
