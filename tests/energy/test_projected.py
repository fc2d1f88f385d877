"""Each projected term against a hand computation (units!), the paper configuration, ring_core."""

from pathlib import Path

import pytest
import yaml

from labctl.energy.projected import (PAPER_MW_PER_TOPS, CoreConfig, adc_term, dac_term, edfa_term, gap_to,
                                     heater_term, laser_term, modulator_term, paper_configuration, peak_ops_per_s,
                                     project, required_receiver_power_w, ring_core_configuration,
                                     schreier_energy_j, sensitivity, tia_term, walden_energy_j)
from labctl.energy.provenance import EnergyError, Model

RING_CORE = Path(__file__).resolve().parents[2] / "sim_backends" / "benches" / "ring_core.yaml"
CFG = CoreConfig(name="hand", n_inputs=4, n_outputs=2, symbol_rate_hz=1e9, n_cores=2)


def test_peak_ops():
    assert peak_ops_per_s(16, 16, 1e9) == 2 * 256 * 1e9  # 1 MAC = 2 ops
    assert peak_ops_per_s(4, 2, 1e9, n_cores=2) == 32e9
    with pytest.raises(EnergyError):
        peak_ops_per_s(0, 2, 1e9)
    with pytest.raises(EnergyError):
        peak_ops_per_s(2, 2, float("nan"))


def test_converter_energies():
    assert walden_energy_j(6, 20e-15) == pytest.approx(1.28e-12)  # 20 fJ/step x 64 = 1.28 pJ
    # Schreier: ENOB 6 -> SNDR 37.88 dB; FoM 157.88 dB -> P = f/2 x 1e-12 -> E = 0.5 pJ
    assert schreier_energy_j(6, 6.02 * 6 + 1.76 + 120, 1e9) == pytest.approx(0.5e-12)
    with pytest.raises(EnergyError):
        walden_energy_j(6, -1e-15)


def test_laser_from_receiver():
    # ENOB 6: SNR = 10^(37.88/10) = 6137.6; i = sqrt(6137.6) x 10 pA x sqrt(0.5 GHz) = 1.7518e-6 A
    p_rx = required_receiver_power_w(6, 0.5e9, 10e-12, 1.0)
    assert p_rx == pytest.approx(78.343 * 10e-12 * 22360.68, rel=1e-4)
    t = laser_term(CFG.with_(responsivity_a_per_w=1.0))
    # cores 2 x M 2 x P_rx / 0.1 / 0.15
    assert t.power_w == pytest.approx(2 * 2 * p_rx / 0.1 / 0.15)
    assert isinstance(t.provenance, Model) and "WPE" in t.provenance.equation
    given = laser_term(CFG.with_(laser_optical_w_per_channel=1e-3, laser_wall_plug_efficiency=0.2))
    assert given.power_w == pytest.approx(2 * 4 * 1e-3 / 0.2)  # 40 mW
    with pytest.raises(EnergyError):
        laser_term(CFG.with_(laser_wall_plug_efficiency=1.5))


def test_other_terms_by_hand():
    # modulators: 2 cores x 4 inputs x (50 fF x 1 V^2 / 4 = 12.5 fJ) x 1 GBd = 0.1 mW
    assert modulator_term(CFG).power_w == pytest.approx(2 * 4 * 12.5e-15 * 1e9)
    # heaters: 2 x 4 x 2 rings x 1 mW = 16 mW
    assert heater_term(CFG.with_(heater_hold_w_per_ring=1e-3)).power_w == pytest.approx(16e-3)
    # PD/TIA: 2 x 2 outputs x 0.35 pJ x 1 GBd = 1.4 mW
    assert tia_term(CFG).power_w == pytest.approx(1.4e-3)
    # DAC: 2 x 4 x 1.28 pJ x 1 GBd = 10.24 mW; ADC oversampled x 10: 2 x 2 x 1.28 pJ x 10 x 1 GBd = 51.2 mW
    assert dac_term(CFG).power_w == pytest.approx(10.24e-3)
    assert adc_term(CFG.with_(adc_samples_per_symbol=10)).power_w == pytest.approx(51.2e-3)
    # EDFA: 2 x 100 mW / 2 % = 10 W
    assert edfa_term(CFG.with_(edfa_count=2)).power_w == pytest.approx(10.0)
    with pytest.raises(EnergyError):
        heater_term(CFG.with_(heater_hold_w_per_ring=float("nan")))


def test_projection_totals_and_provenance():
    p = project(CFG)
    assert p.total_w == pytest.approx(sum(t.power_w for t in p.terms))
    assert p.mw_per_tops == pytest.approx(p.total_w / 32e9 * 1e15)  # mW/TOPS == fJ/op
    for t in p.terms:
        assert isinstance(t.provenance, Model)
        assert set(t.provenance.parameters["sources"])  # every parameter names where it came from
    assert "| **total** |" in p.markdown()


def test_paper_configuration_reproduces_118_6_within_10_percent():
    """Within 10 % of 118.6 mW/TOPS under these assumptions (none published): 3 x 16 x 16 cores at the
    symbol rate that gives 3.6 TOPS; 6-bit DACs and ADCs at the Murmann-survey median Walden FoM
    (20 fJ/step); 0.35 pJ/symbol receivers; laser set by a 10 pA/rtHz receiver through -10 dB at 15 %
    wall-plug efficiency; NO heater hold power; no EDFA. It lands at 117.8 (-0.7 %). 10 % because the inputs
    are typical values, not the paper's (unpublished) figures: the test shows typical devices can give the
    paper's number, and fails if a term's arithmetic or a default drifts; it does not claim more."""
    p = project(paper_configuration())
    assert p.tops == pytest.approx(3.6)
    assert p.mw_per_tops == pytest.approx(PAPER_MW_PER_TOPS.value, rel=0.10)
    assert p.term("ring heaters").power_w == 0.0
    # with 1 mW per ring held by heaters the same configuration is nearly 3x off
    assert project(paper_configuration().with_(heater_hold_w_per_ring=1e-3)).mw_per_tops > 2.5 * 118.6


def test_sensitivity_moves_the_right_way():
    rows = sensitivity(paper_configuration())
    by = {(r["parameter"], r["value"]): r["mw_per_tops"] for r in rows}
    assert by[("core size N = M", "32")] < by[("core size N = M", "16")] < by[("core size N = M", "8")]
    assert by[("converter energy (FoM x)", "4")] > by[("converter energy (FoM x)", "1")]
    assert by[("laser wall-plug efficiency", "5%")] > by[("laser wall-plug efficiency", "30%")]


def test_ring_core_projection_from_bench_file():
    cfg = ring_core_configuration(RING_CORE)
    assert (cfg.n_cores, cfg.n_inputs, cfg.n_outputs, cfg.symbol_rate_hz) == (3, 16, 16, 0.25e9)
    assert cfg.laser_optical_w_per_channel == pytest.approx(10 ** 1.3 * 1e-3)  # +13 dBm
    assert cfg.adc_samples_per_symbol == pytest.approx(10.0)  # 2.5 GS/s ADCs at 0.25 GBd
    assert 0 < cfg.heater_hold_w_per_ring < 5e-3
    p = project(cfg)
    assert p.tops == pytest.approx(2 * 256 * 0.25e9 * 3 * 1e-12)
    assert p.mw_per_tops > 10 * 118.6
    lines = gap_to(118.6, p)
    assert "laser" in lines[1]  # the laser term is the biggest gap


def test_converters_follow_the_bench_file_and_else_the_simulated_controller(tmp_path):
    default = ring_core_configuration(RING_CORE)
    doc = yaml.safe_load(Path(RING_CORE).read_text())
    controller = doc["opu"]["cores"][0]["controller"]
    doc["instruments"][controller]["sim"].setdefault("params", {})["adc_sample_rate_hz"] = 5e9
    f = tmp_path / "faster_adc.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert ring_core_configuration(f).adc_samples_per_symbol == pytest.approx(2 * default.adc_samples_per_symbol)


def test_bad_bench_file(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("name: x\ninstruments: {}\n")
    with pytest.raises(EnergyError, match="opu"):
        ring_core_configuration(f)


def test_heater_hold_from_ring_model_by_hand(tmp_path):
    """Ring 1 sits 0.2 nm below its channel: 0.2 nm / 0.2 nm/mW = 1 mW. Ring 2 sits 0.1 nm above its
    channel; heaters only red-shift, so it goes to the next order: 30 - 0.1 = 29.9 nm -> 149.5 mW.
    Mean hold = 75.25 mW per ring."""
    f = tmp_path / "bench.yaml"
    f.write_text("""
name: two-ring
instruments:
  occ1: {role: optical_core, driver: labctl.OCC16, resource: "TCPIP0::occ1.labsim::hislip0::INSTR",
         sim: {params: {inputs: 2, outputs: 1}}}
safety:
  occ1: {max_heater_voltage_v: 2.0, max_bias_voltage_v: 10.0, max_dac_amplitude_vpp: 1.0}
components:
  bank: {type: ring_bank, n_rings: 2, fsr_m: 30.0e-9, tuning_nm_per_mw: 0.2,
         resonance_wavelengths: [1550.1e-9, 1551.7e-9]}
opu:
  laser_power_dbm: 0.0
  symbol_rate_hz: 1.0e+9
  cores:
    - controller: occ1
      channels: [{wavelength_m: 1550.3e-9}, {wavelength_m: 1551.6e-9}]
""")
    cfg = ring_core_configuration(f)
    assert (cfg.n_cores, cfg.n_inputs, cfg.n_outputs) == (1, 2, 1)
    assert cfg.laser_optical_w_per_channel == pytest.approx(1e-3)
    assert cfg.heater_hold_w_per_ring == pytest.approx((1.0e-3 + 149.5e-3) / 2, rel=1e-6)
    assert heater_term(cfg).power_w == pytest.approx(2 * cfg.heater_hold_w_per_ring)


def test_a_recorded_projection_costs_the_ledgers_ops_at_its_peak_rate():
    from labctl.energy import EnergyLedger

    proj = project(paper_configuration())
    ledger = EnergyLedger()
    ledger.add_ops(10**9, source="hand")
    proj.record(ledger)
    s = ledger.summary("projected")
    assert s.energy_j == pytest.approx(proj.j_per_op * 2e9, rel=1e-12)
    assert s.mw_per_tops == pytest.approx(proj.mw_per_tops, rel=1e-12)
    assert {d.device for d in s.devices} == {t.device for t in proj.terms}


def test_a_streaming_bench_has_no_core_projection_and_says_why():
    from labctl import open_bench
    from labctl.energy.projected import bench_projection

    with open_bench("characterisation", seed=0) as bench:  # no optical core controllers
        with pytest.raises(EnergyError, match="not a weight-stationary core bench"):
            bench_projection(bench)
