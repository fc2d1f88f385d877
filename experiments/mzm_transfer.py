"""MZM transfer curve: sweep the modulator bias with the laser on, measure with the power meter and
the oscilloscope, fit V_pi, the bias offset and the extinction ratio.

The classic first measurement on a modulator bench (and the first calibration step of an optical
matrix engine). It uses roles only, so it runs unchanged on the simulated and on a real bench.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from experiments.common.link import TransmitterParameters, transmitter_on
from labctl.analysis import MZMFit, fit_mzm_transfer
from labctl.runner import Experiment, RunContext
from labctl.units import w_to_dbm


class Parameters(TransmitterParameters):
    bias_start_v: float = -10.0
    bias_stop_v: float = 10.0
    points: int = Field(81, ge=5, le=10001, description="bias points per sweep")
    power_meter: str = "powermeter"
    power_meter_channel: int = Field(1, ge=1)
    averaging_time_s: float = Field(0.01, gt=0)
    scope: str | None = Field("scope", description="oscilloscope instrument ('' to skip the scope sweep)")
    scope_channel: int = Field(1, ge=1)
    scope_points: int = Field(2000, ge=16)
    scope_start_range_v: float = Field(0.8, gt=0, description="full-scale range of the first, wide capture")
    switch: str | None = Field("switch", description="switch in front of the receivers ('' if none)")
    switch_port_power_meter: int = Field(1, ge=1)
    switch_port_scope: int = Field(2, ge=1)
    settle_s: float = Field(0.05, ge=0, description="wait after moving the switch or the bias")


class MZMTransfer(Experiment):
    """Sweep the MZM bias; fit V_pi and the extinction ratio from power-meter and scope readings."""

    name = "mzm_transfer"
    Parameters = Parameters
    default_bench = "characterisation"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        rec.set_units(bias_voltage_v="V", optical_power_w="W", scope_bias_voltage_v="V",
                      scope_mean_v="V", scope_trace_v="V", scope_time_s="s")
        meter = bench.role(p.power_meter, p.power_meter_channel)
        switch = bench.role(p.switch) if p.switch else None
        volts = np.linspace(p.bias_start_v, p.bias_stop_v, p.points)

        meter.wavelength = p.wavelength_nm * 1e-9
        meter.averaging_time = p.averaging_time_s
        laser, bias = transmitter_on(bench, p, switch=p.switch, route=p.switch_port_power_meter, lock=False)

        powers = []
        for v in ctx.progress(volts, desc="bias sweep (power meter)", unit="pt"):
            bias.bias_voltage = float(v)
            bench.settle(p.settle_s)
            power = meter.read_power()
            rec.append("bias_voltage_v", v)
            rec.append("optical_power_w", power)
            powers.append(power)
        fit = fit_mzm_transfer(volts, np.array(powers))
        summary: dict[str, Any] = {
            "v_pi_v": fit.v_pi,
            "extinction_ratio_db": fit.extinction_ratio_db,
            "phase_offset_v": fit.phase_offset_v,
            "quadrature_bias_v": fit.quadrature_bias(positive_slope=True),
            "max_power_dbm": w_to_dbm(fit.p_max),
        }

        scope_fit, scope_means = None, None
        if p.scope:
            if switch is not None:
                switch.route = p.switch_port_scope
            scope_fit, scope_means = self._scope_sweep(ctx, p, bias, volts, fit)
            summary["v_pi_scope_v"] = scope_fit.v_pi
            summary["extinction_ratio_scope_db"] = scope_fit.extinction_ratio_db

        laser.output_enabled = False
        self._plot(ctx, volts, np.array(powers), fit, scope_fit, scope_means)
        return summary

    def _scope_sweep(self, ctx: RunContext, p: Parameters, bias, volts, fit: MZMFit) -> tuple[MZMFit, np.ndarray]:
        """The same sweep seen by a photodiode on the scope: mean of each trace vs bias."""
        bench, rec = ctx.bench, ctx.recorder
        scope = bench.role(p.scope)
        scope.record_length = p.scope_points
        # Autoscale as a person would: look at the brightest point on a wide range, then zoom in.
        bias.bias_voltage = fit.peak_bias(near=0.0)
        bench.settle(p.settle_s)
        scope.set_vertical(p.scope_channel, p.scope_start_range_v, 0.0)
        _, traces = scope.capture([p.scope_channel])
        peak = max(float(np.mean(traces[p.scope_channel])), 1e-3)
        scope.set_vertical(p.scope_channel, 1.4 * peak, 0.55 * peak)
        means = []
        for v in ctx.progress(volts, desc="bias sweep (scope)", unit="pt"):
            bias.bias_voltage = float(v)
            bench.settle(p.settle_s)
            t, traces = scope.capture([p.scope_channel])
            trace = traces[p.scope_channel]
            rec.append("scope_bias_voltage_v", v)
            rec.append("scope_mean_v", float(np.mean(trace)))
            rec.append("scope_trace_v", np.asarray(trace, dtype=np.float32))
            means.append(float(np.mean(trace)))
        rec.write("scope_time_s", t)
        return fit_mzm_transfer(volts, np.array(means)), np.array(means)

    def _plot(self, ctx: RunContext, volts, powers, fit: MZMFit, scope_fit: MZMFit | None, means) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fine = np.linspace(volts[0], volts[-1], 1000)
        panels = 2 if scope_fit is not None else 1
        fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
        ax = axes[0, 0]
        ax.plot(volts, powers * 1e3, "o", ms=3, label="power meter")
        ax.plot(fine, fit.predict(fine) * 1e3, "-", label=f"fit: V$_\\pi$={fit.v_pi:.2f} V, ER={fit.extinction_ratio_db:.1f} dB")
        ax.axvline(fit.quadrature_bias(), color="grey", ls=":", label="quadrature (+)")
        ax.set(xlabel="bias voltage (V)", ylabel="optical power (mW)", title="MZM transfer: power meter")
        ax.legend(fontsize=8)
        if scope_fit is not None:
            ax = axes[0, 1]
            ax.plot(volts, means * 1e3, "o", ms=3, color="C2", label="scope (photodiode)")
            ax.plot(fine, scope_fit.predict(fine) * 1e3, "-", color="C3",
                    label=f"fit: V$_\\pi$={scope_fit.v_pi:.2f} V, ER={scope_fit.extinction_ratio_db:.1f} dB")
            ax.set(xlabel="bias voltage (V)", ylabel="mean detector voltage (mV)", title="MZM transfer: scope")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(ctx.artefact("mzm_transfer.png"), dpi=120)
        plt.close(fig)
