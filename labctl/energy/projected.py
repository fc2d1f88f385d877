"""Projected power of an integrated optoelectronic version of an optical core, term by term.

The bench draws watts to kilowatts because it is built from instruments; this module answers what the
same computation would cost in integrated optoelectronics, as a function of core size (N inputs x M
outputs), wavelengths (one per input), symbol rate and the device figures. Every term is a
:class:`~labctl.energy.provenance.PowerTerm` whose :class:`~labctl.energy.provenance.Model` names the
equation, the parameter values and where each constant comes from, so a reader can redo the sum.

Counting: 1 MAC = 2 ops; peak ops/s = 2 x N x M x symbol rate per core; X mW/TOPS = X fJ/op.
All figures here are at **peak** (every symbol slot used); utilisation-weighted figures belong to the
ledger, which knows the MACs actually sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labctl.config import BenchConfig, load_bench, simulated_value
from labctl.energy.ledger import EnergyLedger
from labctl.energy.provenance import Datasheet, EnergyError, Model, PowerTerm, checked_number

# ---- published and cited constants (value, source) ----------------------------------------------------
#: The paper's headline (abstract of Nature Communications 16:6097 (2025), arXiv 2412.12126).
PAPER_MW_PER_TOPS = Datasheet(118.6, "mW/TOPS", "Xing et al., Nature Communications 16:6097 (2025), "
                              "arXiv 2412.12126", "abstract")
#: About 3.6 TOPS: as recorded in the project's DESIGN.md ("reported about 3.6 TOPS"); we could not read
#: the paper's methods, so this is treated as published-but-unverified.
PAPER_TOPS = Datasheet(3.6, "TOPS", "Xing et al. 2025 as summarised in shared/DESIGN.md", "DESIGN.md, 'What is known'")
#: Murmann ADC survey (ISSCC/VLSI 1997-2025, designs since 2018), 1-10 GS/s, ENOB >= 7: median Walden FoM.
WALDEN_FOM_1_10_GSPS = Datasheet(20e-15, "J/conversion-step", "B. Murmann, ADC Performance Survey 1997-2025 "
                                 "(median of designs since 2018, 1-10 GS/s, ENOB>=7), via shared/PHYSICS.md",
                                 "PHYSICS.md section 4, converter table")
#: CMOS wireline receivers 40-56 Gb/s: 14-50 mW, ~0.3-0.9 pJ/bit; low end taken (14 mW at 40 Gb/s).
TIA_ENERGY_PER_SYMBOL = Datasheet(0.35e-12, "J/symbol", "shared/PHYSICS.md section 4, item 4 (CMOS wireline "
                                  "receivers 40-56 Gb/s, 14-50 mW)", "PHYSICS.md section 4")
#: Integrated DFB/ECL wall-plug efficiency 10-20 %: mid value.
LASER_WPE = Datasheet(0.15, "1", "shared/PHYSICS.md section 4 item 1 (integrated DFB/ECL ~10-20 %)",
                      "PHYSICS.md section 4")
#: Lumped modulator drive energy C V^2 / 4 per random NRZ symbol.
MODULATOR_EQUATION_SOURCE = "D. A. B. Miller, J. Lightwave Technol. 35(3), 346 (2017), via PHYSICS.md section 4 item 2"
#: OCC-16 converter defaults (RFSoC Gen3 class) of the simulated controller the ring_core bench uses.
OCC16_CONVERTERS = ("dac_enob", "adc_enob", "adc_sample_rate_hz")
OCC16_SOURCE = "the bench's simulated OCC-16 controller (sim.params, else its defaults: RFSoC Gen3 class converters)"
#: Ring heater tuning of the ring_core bench (Tait et al. weight banks): 0.2 nm/mW.
RING_TUNING_NM_PER_MW = 0.2


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    return checked_number(name, value, strict=not allow_zero)


def peak_ops_per_s(n_inputs: int, n_outputs: int, symbol_rate_hz: float, n_cores: int = 1) -> float:
    """Peak ops/s = 2 x N x M x symbol rate x cores (1 MAC = 2 ops; every symbol slot used)."""
    for name, v in (("n_inputs", n_inputs), ("n_outputs", n_outputs), ("n_cores", n_cores)):
        if not isinstance(v, int) or v < 1:
            raise EnergyError(f"{name} must be a positive integer, got {v!r}")
    return 2.0 * n_inputs * n_outputs * _positive("symbol_rate_hz", symbol_rate_hz) * n_cores


def walden_energy_j(enob: float, fom_j_per_step: float) -> float:
    """Energy per conversion from the Walden figure of merit: E = FoM_W x 2^ENOB."""
    return _positive("fom_j_per_step", fom_j_per_step) * 2.0 ** _positive("enob", enob)


def schreier_energy_j(enob: float, fom_s_db: float, sample_rate_hz: float) -> float:
    """Energy per conversion from the Schreier FoM (FoM_S = SNDR + 10 log10(BW/P), BW = f_s/2):
    P = BW x 10^((SNDR - FoM_S)/10) with SNDR = 6.02 ENOB + 1.76 dB; E = P / f_s."""
    fs = _positive("sample_rate_hz", sample_rate_hz)
    sndr_db = 6.02 * _positive("enob", enob) + 1.76
    power_w = fs / 2 * 10 ** ((sndr_db - _positive("fom_s_db", fom_s_db)) / 10)
    return power_w / fs


def required_receiver_power_w(enob: float, bandwidth_hz: float, noise_a_per_rthz: float,
                              responsivity_a_per_w: float) -> float:
    """Full-scale optical power one photodiode needs so that receiver (thermal) noise allows ENOB bits:
    SNR = 10^((6.02 ENOB + 1.76)/10); I = sqrt(SNR) x i_n x sqrt(B); P = I / R."""
    snr = 10 ** ((6.02 * _positive("enob", enob) + 1.76) / 10)
    current = math.sqrt(snr) * _positive("noise_a_per_rthz", noise_a_per_rthz) * math.sqrt(
        _positive("bandwidth_hz", bandwidth_hz))
    return current / _positive("responsivity_a_per_w", responsivity_a_per_w)


@dataclass(frozen=True)
class CoreConfig:
    """An integrated optical core (or several identical ones) and the device figures that set its power.

    ``sources`` maps a field name to where its value comes from ("assumed: ..." when it is an assumption);
    it is copied into every term's Model parameters.
    """

    name: str
    n_inputs: int
    n_outputs: int
    symbol_rate_hz: float
    n_cores: int = 1
    # laser: either the optical power per input channel is given, or it is set backwards from the receivers
    laser_wall_plug_efficiency: float = LASER_WPE.value
    laser_optical_w_per_channel: float | None = None
    receiver_enob: float = 6.0
    receiver_noise_a_per_rthz: float = 10e-12
    responsivity_a_per_w: float = 0.9
    link_efficiency: float = 0.1  # laser -> photodiode, excluding the 1/M fan-out
    # modulators (one per input)
    modulator_capacitance_f: float = 50e-15
    modulator_swing_v: float = 1.0
    # weights held by ring heaters (N x M rings per core)
    heater_hold_w_per_ring: float = 0.0
    # receivers (one per output)
    tia_energy_j_per_symbol: float = TIA_ENERGY_PER_SYMBOL.value
    # converters: one DAC per input, one ADC per output
    dac_enob: float = 6.0
    adc_enob: float = 6.0
    dac_fom_j_per_step: float = WALDEN_FOM_1_10_GSPS.value
    adc_fom_j_per_step: float = WALDEN_FOM_1_10_GSPS.value
    dac_samples_per_symbol: float = 1.0
    adc_samples_per_symbol: float = 1.0
    # optional amplifiers
    edfa_count: int = 0
    edfa_output_w: float = 0.1
    edfa_wall_plug_efficiency: float = 0.02
    sources: dict[str, str] = field(default_factory=dict)

    def with_(self, **changes: Any) -> "CoreConfig":
        """A copy with some fields changed (sensitivity tables)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Projection:
    """The itemised projection of one configuration, at peak."""

    config: CoreConfig
    terms: tuple[PowerTerm, ...]

    @property
    def total_w(self) -> float:
        return sum(t.power_w for t in self.terms)

    @property
    def peak_ops_per_s(self) -> float:
        c = self.config
        return peak_ops_per_s(c.n_inputs, c.n_outputs, c.symbol_rate_hz, c.n_cores)

    @property
    def tops(self) -> float:
        return self.peak_ops_per_s * 1e-12

    @property
    def j_per_op(self) -> float:
        return self.total_w / self.peak_ops_per_s

    @property
    def mw_per_tops(self) -> float:
        """mW/TOPS at peak; numerically equal to fJ/op."""
        return self.total_w * 1e3 / self.tops

    def record(self, ledger: EnergyLedger) -> None:
        """Put this projection in the ledger's ``projected`` view: its terms as steady draws, and its peak op
        rate, so the view's time is the ledger's ops at that rate (the integrated hardware fully used)."""
        for t in self.terms:
            ledger.add(t, view="projected")
        c = self.config
        ledger.set_peak_rate("projected", self.peak_ops_per_s, Model(
            "2 x N x M x f_s x cores (1 MAC = 2 ops, every symbol slot used)",
            {"N": c.n_inputs, "M": c.n_outputs, "f_s_hz": c.symbol_rate_hz, "cores": c.n_cores}))

    def term(self, device: str) -> PowerTerm:
        for t in self.terms:
            if t.device == device:
                return t
        raise KeyError(device)

    def rows(self) -> list[dict[str, Any]]:
        """One row per term: device, W, fJ/op at peak, share, equation."""
        ops = self.peak_ops_per_s
        return [{"device": t.device, "power_w": t.power_w, "fj_per_op": t.power_w / ops * 1e15,
                 "share": t.power_w / self.total_w if self.total_w else 0.0,
                 "equation": t.provenance.equation if isinstance(t.provenance, Model) else str(t.provenance),
                 "note": t.note} for t in self.terms]

    def markdown(self) -> str:
        """The itemised table (peak, per op: 1 MAC = 2 ops; mW/TOPS = fJ/op)."""
        c = self.config
        lines = [f"### Projected integrated view: {c.name}",
                 f"{c.n_cores} core(s) of {c.n_inputs} x {c.n_outputs}, {c.symbol_rate_hz / 1e9:g} GBd, "
                 f"peak {self.tops:.4g} TOPS (2 x N x M x f_s x cores; 1 MAC = 2 ops)", "",
                 "| term | power (W) | fJ/op at peak | share | model |", "|---|---:|---:|---:|---|"]
        for r in self.rows():
            lines.append(f"| {r['device']} | {r['power_w']:.4g} | {r['fj_per_op']:.4g} | {r['share']:.1%} | "
                         f"`{r['equation']}` |")
        lines.append(f"| **total** | **{self.total_w:.4g}** | **{self.mw_per_tops:.4g}** | 100% | "
                     "mW/TOPS = fJ/op, at peak |")
        return "\n".join(lines)


def _model(equation: str, cfg: CoreConfig, names: tuple[str, ...], **extra: Any) -> Model:
    params: dict[str, Any] = {n: getattr(cfg, n) for n in names}
    params.update(extra)
    params["sources"] = {n: cfg.sources.get(n, "see labctl.energy.projected defaults") for n in names}
    return Model(equation, params)


def laser_term(cfg: CoreConfig) -> PowerTerm:
    """Laser wall-plug power: optical power over wall-plug efficiency. Optical power per core is either
    N x the given power per channel, or M x P_rx / link efficiency with P_rx set by the receiver noise."""
    wpe = _positive("laser_wall_plug_efficiency", cfg.laser_wall_plug_efficiency)
    if wpe > 1:
        raise EnergyError(f"laser_wall_plug_efficiency must be <= 1, got {wpe}")
    if cfg.laser_optical_w_per_channel is not None:
        p_opt = cfg.n_inputs * _positive("laser_optical_w_per_channel", cfg.laser_optical_w_per_channel)
        power = cfg.n_cores * p_opt / wpe
        model = _model("P = cores x N x P_ch / WPE", cfg,
                       ("n_cores", "n_inputs", "laser_optical_w_per_channel", "laser_wall_plug_efficiency"))
        return PowerTerm("laser", power, model, note=f"{p_opt * 1e3:.3g} mW optical per core")
    bandwidth = cfg.symbol_rate_hz / 2
    p_rx = required_receiver_power_w(cfg.receiver_enob, bandwidth, cfg.receiver_noise_a_per_rthz,
                                     cfg.responsivity_a_per_w)
    eta = _positive("link_efficiency", cfg.link_efficiency)
    p_opt = cfg.n_outputs * p_rx / eta
    model = _model("P = cores x M x P_rx / eta_link / WPE; P_rx = sqrt(10^((6.02 ENOB+1.76)/10)) x i_n x "
                   "sqrt(f_s/2) / R", cfg,
                   ("n_cores", "n_outputs", "receiver_enob", "receiver_noise_a_per_rthz", "responsivity_a_per_w",
                    "link_efficiency", "laser_wall_plug_efficiency", "symbol_rate_hz"), p_rx_w=p_rx)
    return PowerTerm("laser", cfg.n_cores * p_opt / wpe, model,
                     note=f"P_rx {p_rx * 1e6:.3g} uW full scale per photodiode")


def modulator_term(cfg: CoreConfig) -> PowerTerm:
    """Input modulators (one per input): E = C V^2 / 4 per random NRZ symbol, P = cores x N x E x f_s."""
    e = _positive("modulator_capacitance_f", cfg.modulator_capacitance_f) * _positive(
        "modulator_swing_v", cfg.modulator_swing_v) ** 2 / 4
    model = _model("P = cores x N x C V^2 / 4 x f_s", cfg,
                   ("n_cores", "n_inputs", "modulator_capacitance_f", "modulator_swing_v", "symbol_rate_hz"),
                   equation_source=MODULATOR_EQUATION_SOURCE, energy_per_symbol_j=e)
    return PowerTerm("modulators", cfg.n_cores * cfg.n_inputs * e * cfg.symbol_rate_hz, model)


def heater_term(cfg: CoreConfig) -> PowerTerm:
    """Ring heaters holding the weights: P = cores x N x M x P_hold (a static draw, independent of f_s)."""
    p = cfg.n_cores * cfg.n_inputs * cfg.n_outputs * _positive("heater_hold_w_per_ring", cfg.heater_hold_w_per_ring,
                                                               allow_zero=True)
    model = _model("P = cores x N x M x P_hold", cfg, ("n_cores", "n_inputs", "n_outputs", "heater_hold_w_per_ring"))
    return PowerTerm("ring heaters", p, model)


def tia_term(cfg: CoreConfig) -> PowerTerm:
    """Photodiode + TIA per output: P = cores x M x E_rx x f_s."""
    e = _positive("tia_energy_j_per_symbol", cfg.tia_energy_j_per_symbol)
    model = _model("P = cores x M x E_rx x f_s", cfg,
                   ("n_cores", "n_outputs", "tia_energy_j_per_symbol", "symbol_rate_hz"))
    return PowerTerm("PD/TIA", cfg.n_cores * cfg.n_outputs * e * cfg.symbol_rate_hz, model)


def _converter_term(cfg: CoreConfig, label: str, side: str, channels: str, symbol: str) -> PowerTerm:
    """Converters on one side of the cores: P = cores x channels x FoM_W x 2^ENOB x samples/symbol x f_s."""
    e = walden_energy_j(getattr(cfg, f"{side}_enob"), getattr(cfg, f"{side}_fom_j_per_step"))
    spc = _positive(f"{side}_samples_per_symbol", getattr(cfg, f"{side}_samples_per_symbol"))
    model = _model(f"P = cores x {symbol} x FoM_W x 2^ENOB x samples/symbol x f_s", cfg,
                   ("n_cores", channels, f"{side}_fom_j_per_step", f"{side}_enob", f"{side}_samples_per_symbol",
                    "symbol_rate_hz"), energy_per_conversion_j=e)
    return PowerTerm(label, cfg.n_cores * getattr(cfg, channels) * e * spc * cfg.symbol_rate_hz, model)


def dac_term(cfg: CoreConfig) -> PowerTerm:
    """Input DACs (Walden form; no DAC survey of the same breadth exists, so the ADC survey's FoM stands in
    unless a DAC figure is given)."""
    return _converter_term(cfg, "DACs", "dac", "n_inputs", "N")


def adc_term(cfg: CoreConfig) -> PowerTerm:
    """Output ADCs (Walden, Murmann survey)."""
    return _converter_term(cfg, "ADCs", "adc", "n_outputs", "M")


def edfa_term(cfg: CoreConfig) -> PowerTerm:
    """EDFAs: P = count x P_out / wall-plug efficiency (pump + TEC + control folded into the efficiency)."""
    if not isinstance(cfg.edfa_count, int) or cfg.edfa_count < 0:
        raise EnergyError(f"edfa_count must be a non-negative integer, got {cfg.edfa_count!r}")
    p = cfg.edfa_count * _positive("edfa_output_w", cfg.edfa_output_w) / _positive(
        "edfa_wall_plug_efficiency", cfg.edfa_wall_plug_efficiency)
    model = _model("P = count x P_out / eta_EDFA", cfg, ("edfa_count", "edfa_output_w", "edfa_wall_plug_efficiency"))
    return PowerTerm("EDFA", p, model)


def project(cfg: CoreConfig) -> Projection:
    """Every term of the integrated projection of ``cfg``."""
    peak_ops_per_s(cfg.n_inputs, cfg.n_outputs, cfg.symbol_rate_hz, cfg.n_cores)  # validates the geometry
    return Projection(cfg, (laser_term(cfg), modulator_term(cfg), heater_term(cfg), tia_term(cfg), dac_term(cfg),
                            adc_term(cfg), edfa_term(cfg)))


# ---- the paper configuration ------------------------------------------------------------------------

PAPER_GEOMETRY = {"n_cores": 3, "n_inputs": 16, "n_outputs": 16}


def paper_configuration() -> CoreConfig:
    """The paper's accounting reconstructed as closely as published facts allow (see PUBLISHED_VS_ASSUMED).

    Published: 118.6 mW/TOPS and about 3.6 TOPS. Not published (to us): the core geometry, symbol rate and
    device figures. So the geometry is assumed (3 cores of 16 x 16, like labctl's ring_core), the symbol
    rate is derived from 3.6 TOPS for that geometry, and every device figure is a cited typical value:
    survey-median converters at 6 effective bits, receiver-noise-limited laser power, no heater hold.
    """
    tops = PAPER_TOPS.value * 1e12
    g = PAPER_GEOMETRY
    rate = tops / (2 * g["n_inputs"] * g["n_outputs"] * g["n_cores"])
    return CoreConfig(
        name="paper configuration (Nature Commun. 16:6097)", symbol_rate_hz=rate, **g,
        sources={
            "n_cores": "assumed: 'several OPUs in parallel' (DESIGN.md); 3 like ring_core",
            "n_inputs": "assumed: 16 (labctl's cores)", "n_outputs": "assumed: 16 (labctl's cores)",
            "symbol_rate_hz": "derived: published ~3.6 TOPS / (2 x N x M x cores)",
            "laser_wall_plug_efficiency": "PHYSICS.md s.4: integrated DFB/ECL 10-20 %, mid value",
            "receiver_enob": "assumed: 6 effective bits (PHYSICS.md: ~5-6 bits typical of optical MVM)",
            "receiver_noise_a_per_rthz": "assumed: 10 pA/rtHz input-referred TIA noise, typical",
            "responsivity_a_per_w": "PHYSICS.md worked example, R = 0.9 A/W",
            "link_efficiency": "assumed: -10 dB modulator + mux + ring drop + coupling (ring_core budget "
                               "without fibre and fan-out)",
            "modulator_capacitance_f": "assumed: 50 fF lumped modulator (Miller 2017 attojoule class)",
            "modulator_swing_v": "assumed: 1 V CMOS-compatible swing",
            "heater_hold_w_per_ring": "assumed: 0 (weights held without heater power, e.g. trimmed or "
                                      "non-volatile); see sensitivity table",
            "tia_energy_j_per_symbol": "PHYSICS.md s.4 item 4: 14 mW at 40 Gb/s = 0.35 pJ/bit",
            "dac_enob": "assumed: 6 bits", "adc_enob": "assumed: 6 bits",
            "dac_fom_j_per_step": "assumed: ADC survey median used for DACs too",
            "adc_fom_j_per_step": "Murmann survey median Walden FoM, 1-10 GS/s (PHYSICS.md s.4)",
            "dac_samples_per_symbol": "assumed: 1", "adc_samples_per_symbol": "assumed: 1",
            "edfa_count": "assumed: 0 at the computing center (device-level accounting)",
        })


PUBLISHED_VS_ASSUMED = """\
Published (Xing et al., Nature Communications 16:6097 (2025), arXiv 2412.12126): 118.6 mW/TOPS (abstract);
about 3.6 TOPS (as recorded in DESIGN.md; not verified against the paper's methods, which we could not read).
The paper's itemised breakdown, core geometry, symbol rate and device figures are NOT available to us.
Assumed here: 3 cores of 16 x 16 (geometry), symbol rate derived from 3.6 TOPS for that geometry, converter
energy = Murmann-survey median Walden FoM (20 fJ/step, 1-10 GS/s) x 2^6 for both DACs and ADCs, 0.35 pJ per
symbol per receiver (CMOS wireline receivers), 50 fF / 1 V lumped modulators, laser power set by a 10 pA/rtHz
receiver at 6 bits through -10 dB of loss, 15 % laser wall-plug efficiency, no ring heater hold power, no EDFA.
The agreement with 118.6 mW/TOPS therefore tests that typical device figures can give the paper's number,
not that they are the paper's figures; the sensitivity table shows how far each assumption moves it."""


# ---- labctl's ring_core bench -----------------------------------------------------------------------

def ring_core_configuration(bench_path: str | Path, *, laser_wall_plug_efficiency: float = LASER_WPE.value,
                            occ: dict[str, float] | None = None, config: BenchConfig | None = None) -> CoreConfig:
    """The projection of a weight-stationary bench file (its ``opu`` section and ring banks): the same
    cores, symbol rate, laser power per channel, converters and ring heater hold, built in integrated form.

    Heater hold per ring = mean red shift from each ring's resonance up to its channel wavelength, over the
    heater tuning efficiency (the heater model: shift = tuning x P): a lower bound, since setting a weight
    below 1 detunes further (up to about a linewidth). Converter figures are the OCC-16's. ``config``:
    the bench's configuration as opened (e.g. with ``changes``), instead of reading ``bench_path``.
    """
    path = Path(bench_path)
    if config is None:
        config = load_bench(path)  # the strict loader: a broken file is a ConfigError naming the line
    doc = config.to_dict()
    opu = doc.get("opu")
    if not opu or "cores" not in opu:
        raise EnergyError(f"{path}: no 'opu' section with 'cores'; not a weight-stationary core bench")
    cores = opu["cores"]
    n_in = len(cores[0]["channels"])
    controller = cores[0]["controller"]
    n_out = int(simulated_value(config, controller, "outputs"))
    # the converters the simulated controller runs with: the file's values, else the model's defaults
    occ_values = {name: float(simulated_value(config, controller, name)) for name in OCC16_CONVERTERS}
    occ_values.update(occ or {})
    rate = float(opu["symbol_rate_hz"])
    p_ch = 1e-3 * 10 ** (float(opu["laser_power_dbm"]) / 10)
    channels = [c["wavelength_m"] for c in cores[0]["channels"]]
    shifts, tunings = [], []
    for comp in (doc.get("components") or {}).values():
        if isinstance(comp, dict) and comp.get("type") == "ring_bank":
            res, fsr = comp["resonance_wavelengths"], float(comp.get("fsr_m", 0.0))
            # heaters only red-shift: a ring above its channel is pulled to the next order, one FSR on
            shifts.extend(ch - r if ch >= r else ch - r + fsr for ch, r in zip(channels, res))
            tunings.append(float(comp.get("tuning_nm_per_mw", RING_TUNING_NM_PER_MW)))
    if shifts:
        mean_shift_nm = sum(max(v, 0.0) for v in shifts) / len(shifts) * 1e9
        hold_w = mean_shift_nm / (sum(tunings) / len(tunings)) * 1e-3
    else:
        mean_shift_nm, hold_w = 0.0, 0.0
    return CoreConfig(
        name=f"labctl {doc.get('name', path.stem)} ({path.name})", n_cores=len(cores), n_inputs=n_in,
        n_outputs=n_out, symbol_rate_hz=rate, laser_optical_w_per_channel=p_ch,
        laser_wall_plug_efficiency=laser_wall_plug_efficiency, heater_hold_w_per_ring=hold_w,
        dac_enob=float(occ_values["dac_enob"]), adc_enob=float(occ_values["adc_enob"]),
        adc_samples_per_symbol=float(occ_values["adc_sample_rate_hz"]) / rate,
        sources={
            "n_cores": f"{path.name} opu.cores", "n_inputs": f"{path.name} opu.cores[0].channels",
            "n_outputs": f"{path.name} OCC sim params 'outputs'", "symbol_rate_hz": f"{path.name} opu.symbol_rate_hz",
            "laser_optical_w_per_channel": f"{path.name} opu.laser_power_dbm",
            "laser_wall_plug_efficiency": "PHYSICS.md s.4: integrated DFB/ECL 10-20 %, mid value",
            "heater_hold_w_per_ring": f"heater model (lower bound, weight detuning not added): mean red shift "
                                      f"{mean_shift_nm:.3g} nm (channel - resonance, {path.name} ring banks) "
                                      "/ tuning nm/mW",
            "dac_enob": OCC16_SOURCE, "adc_enob": OCC16_SOURCE,
            "adc_samples_per_symbol": f"{OCC16_SOURCE}: adc_sample_rate_hz / symbol rate",
            "dac_fom_j_per_step": "assumed: ADC survey median used for DACs too",
            "adc_fom_j_per_step": "Murmann survey median Walden FoM, 1-10 GS/s (PHYSICS.md s.4)",
            "modulator_capacitance_f": "assumed: 50 fF integrated lumped modulator",
            "modulator_swing_v": "assumed: 1 V", "tia_energy_j_per_symbol": "PHYSICS.md s.4 item 4",
        })


def bench_projection(bench: Any) -> Projection:
    """The integrated projection of an open weight-stationary bench (its configuration as opened); an
    ``EnergyError`` saying why for a bench without optical core controllers (e.g. a streaming bench)."""
    if bench.path is None:
        raise EnergyError("the bench has no file, so its cores cannot be projected")
    return project(ring_core_configuration(bench.path, config=bench.config))


def gap_to(target_mw_per_tops: float, projection: Projection) -> list[str]:
    """What would have to change in ``projection`` to reach ``target_mw_per_tops``: each term's own
    contribution against the target, largest first, and the factor the total is above it."""
    target = _positive("target_mw_per_tops", target_mw_per_tops)
    ratio = projection.mw_per_tops / target
    lines = [f"{projection.config.name}: {projection.mw_per_tops:.4g} mW/TOPS at peak, {ratio:.3g}x the target "
             f"{target:g} mW/TOPS."]
    for r in sorted(projection.rows(), key=lambda r: -r["fj_per_op"]):
        if r["fj_per_op"] <= 0:
            continue
        lines.append(f"- {r['device']}: {r['fj_per_op']:.4g} fJ/op alone "
                     f"({r['fj_per_op'] / target:.3g}x the whole target budget)")
    return lines


# ---- sensitivity --------------------------------------------------------------------------------------

def sensitivity(base: CoreConfig) -> list[dict[str, Any]]:
    """One-at-a-time sensitivity of mW/TOPS (peak) around ``base``: core size, symbol rate, converter
    energy, laser efficiency, heater hold power."""
    cases: list[tuple[str, str, CoreConfig]] = []
    for n in (8, 16, 32, 64):
        cases.append(("core size N = M", str(n), base.with_(n_inputs=n, n_outputs=n)))
    for k in (0.5, 1.0, 2.0):
        cases.append(("symbol rate", f"{base.symbol_rate_hz * k / 1e9:.3g} GBd",
                      base.with_(symbol_rate_hz=base.symbol_rate_hz * k)))
    for k in (0.25, 1.0, 4.0):
        cases.append(("converter energy (FoM x)", f"{k:g}", base.with_(
            dac_fom_j_per_step=base.dac_fom_j_per_step * k, adc_fom_j_per_step=base.adc_fom_j_per_step * k)))
    for wpe in (0.05, 0.15, 0.30):
        cases.append(("laser wall-plug efficiency", f"{wpe:.0%}", base.with_(laser_wall_plug_efficiency=wpe)))
    for hold in (0.0, 0.1e-3, 1e-3):
        cases.append(("heater hold per ring", f"{hold * 1e3:g} mW", base.with_(heater_hold_w_per_ring=hold)))
    rows = []
    for parameter, value, cfg in cases:
        p = project(cfg)
        rows.append({"parameter": parameter, "value": value, "total_w": p.total_w, "tops": p.tops,
                     "mw_per_tops": p.mw_per_tops})
    return rows


def sensitivity_markdown(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"### Sensitivity: {title} (one at a time, peak)", "",
             "| parameter | value | total (W) | TOPS | mW/TOPS |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['parameter']} | {r['value']} | {r['total_w']:.4g} | {r['tops']:.4g} | "
                     f"{r['mw_per_tops']:.4g} |")
    return "\n".join(lines)


__all__ = ["CoreConfig", "PAPER_MW_PER_TOPS", "PAPER_TOPS", "PUBLISHED_VS_ASSUMED", "Projection", "adc_term",
           "dac_term", "edfa_term", "gap_to", "heater_term", "laser_term", "modulator_term", "paper_configuration",
           "peak_ops_per_s", "project", "required_receiver_power_w", "ring_core_configuration", "schreier_energy_j",
           "sensitivity", "sensitivity_markdown", "tia_term", "walden_energy_j"]
