"""Modulated link trace: PAM symbols from the AWG on the MZM at quadrature, seen on the scope.

The bias controller locks the modulator at quadrature; the AWG plays a repeating random PAM pattern
into the MZM's RF port and marks each repetition on its marker output, which triggers the scope; the
photodiode trace is aligned to the pattern by cross-correlation (which measures the link delay modulo
the pattern period), sampled at symbol centres, and summarised per level. Driven harder, the levels come
out unevenly spaced because the MZM transfer is cos^2, not linear: the reason the optical matrix engine
predistorts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from experiments.common.link import TransmitterParameters, transmitter_on
from labctl.runner import Experiment, RunContext


class Parameters(TransmitterParameters):
    awg: str = "awg"
    awg_channel: int = Field(1, ge=1)
    awg_sample_rate: float = Field(64e9, gt=0, description="Sa/s")
    samples_per_symbol: int = Field(16, ge=2)
    symbols: int = Field(160, ge=8, description="pattern length; samples = symbols x samples_per_symbol")
    levels: int = Field(4, ge=2, le=16, description="PAM order")
    amplitude_vpp: float = Field(1.0, gt=0)
    pattern_seed: int = 7
    scope: str = "scope"
    scope_channel: int = Field(1, ge=1)
    periods: int = Field(2, ge=1, description="pattern repetitions captured")
    switch: str | None = "switch"
    switch_port: int = Field(2, ge=1, description="switch output that feeds the photodiode")
    settle_s: float = Field(0.05, ge=0)


class ModulationTrace(Experiment):
    """Play a PAM pattern through the MZM at quadrature and capture the received trace."""

    name = "modulation_trace"
    Parameters = Parameters
    default_bench = "characterisation"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(time_s="s", trace_v="V", pattern_levels="1", symbol_samples_v="V")
        awg, awg_channel = bench.role(p.awg), bench.role(p.awg, p.awg_channel)
        scope = bench.role(p.scope)

        laser, _ = transmitter_on(bench, p, switch=p.switch, route=p.switch_port)

        rng = np.random.default_rng(p.pattern_seed)
        symbols = rng.integers(0, p.levels, p.symbols)
        levels = np.linspace(-1.0, 1.0, p.levels)
        waveform = np.repeat(levels[symbols], p.samples_per_symbol)
        awg.sample_rate = p.awg_sample_rate
        awg_channel.upload_waveform(waveform)
        awg_channel.amplitude = p.amplitude_vpp
        awg_channel.output_enabled = True
        awg.run()
        bench.settle(p.settle_s)  # light now at the detector left the modulator a fibre delay ago
        rec.write("pattern_levels", levels[symbols])

        period_s = waveform.size / p.awg_sample_rate
        scope.set_edge_trigger("AUX", 0.5, rising=True)
        scope.set_vertical(p.scope_channel, 0.8, 0.0)
        fs = scope.sample_rate
        scope.record_length = int(np.ceil(p.periods * period_s * fs))
        _, first = scope.capture([p.scope_channel])
        lo, hi = np.percentile(first[p.scope_channel], [0.5, 99.5])
        span = max(hi - lo, 2e-3)
        scope.set_vertical(p.scope_channel, 1.6 * span, (hi + lo) / 2)
        t, traces = scope.capture([p.scope_channel])
        trace = traces[p.scope_channel]
        awg.stop()
        awg_channel.output_enabled = False
        laser.output_enabled = False
        rec.write("time_s", t)
        rec.write("trace_v", trace)

        delay, centres, index = self._align(t, trace, levels[symbols], p.samples_per_symbol / p.awg_sample_rate,
                                            period_s)
        samples = np.interp(centres, t, trace)
        sent = symbols[index]
        rec.write("symbol_samples_v", samples)
        means = np.array([samples[sent == k].mean() for k in range(p.levels)])
        sigmas = np.array([samples[sent == k].std() for k in range(p.levels)])
        spacing = np.diff(means)
        q = spacing / (sigmas[:-1] + sigmas[1:])
        rec.write("level_means_v", means)
        rec.write("level_sigmas_v", sigmas)
        self._plot(ctx, t, trace, centres, samples, sent, means, p)
        return {
            "link_delay_mod_period_s": delay,
            "level_spacing_ratio": float(spacing.max() / spacing.min()) if p.levels > 2 else 1.0,
            "worst_q": float(q.min()),
            "eye_amplitude_v": float(means[-1] - means[0]),
        }

    @staticmethod
    def _align(t, trace, pattern, symbol_s, period_s, bins: int = 1024):
        """Delay of the pattern in the trace, and the symbol centres with the symbol index each carries.

        The trace is folded onto one pattern period and circularly cross-correlated (FFT) with the
        pattern, which gives the link delay modulo the period.
        """
        phase = np.floor((t % period_s) / period_s * bins).astype(int) % bins
        counts = np.bincount(phase, minlength=bins)
        folded = np.bincount(phase, weights=trace, minlength=bins) / np.maximum(counts, 1)
        folded[counts == 0] = np.mean(trace)
        grid = (np.arange(bins) + 0.5) * period_s / bins
        reference = pattern[np.minimum((grid / symbol_s).astype(int), pattern.size - 1)]
        spectrum = np.fft.rfft(folded - folded.mean()) * np.conj(np.fft.rfft(reference - reference.mean()))
        delay = float(np.argmax(np.fft.irfft(spectrum, n=bins)) * period_s / bins)
        first = int(np.ceil((t[0] - delay) / symbol_s - 0.5))
        last = int(np.floor((t[-1] - delay) / symbol_s - 0.5))
        k = np.arange(first, last + 1)
        return delay, delay + (k + 0.5) * symbol_s, k % pattern.size

    def _plot(self, ctx, t, trace, centres, samples, sent, means, p: Parameters) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
        ax1.plot(t * 1e9, trace * 1e3, lw=0.6, color="C0", label="photodiode (scope)")
        ax1.plot(centres * 1e9, samples * 1e3, ".", ms=3, color="C3", label="symbol centres")
        ax1.set(xlabel="time after trigger (ns)", ylabel="detector voltage (mV)",
                title=f"PAM{p.levels} at {p.awg_sample_rate / p.samples_per_symbol / 1e9:g} GBd through the MZM")
        ax1.legend(fontsize=8, loc="upper right")
        for k in range(p.levels):
            ax2.hist(samples[sent == k] * 1e3, bins=30, alpha=0.7, label=f"level {k}")
            ax2.axvline(means[k] * 1e3, color="k", lw=0.5)
        ax2.set(xlabel="sampled voltage (mV)", ylabel="count", title="levels at symbol centres")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ctx.artefact("modulation_trace.png"), dpi=120)
        plt.close(fig)

