"""The energy ledger's arithmetic, units and refusals, against cases computed by hand."""

from __future__ import annotations

import math

import h5py
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from labctl.energy import Datasheet, EnergyError, Measured, Model, PowerTerm
from labctl.energy.ledger import NO_OPS, OPS_PER_MAC, EnergyLedger, sidecar_path
from labctl.errors import LabctlError
from labctl.store import Recorder, read_results

PSU = Measured(instrument="psu", command="MEAS:POW?")
LASER_DS = Datasheet(value=30.0, unit="W", document="TSL-570 datasheet", page="4")


def two_devices_three_intervals() -> EnergyLedger:
    """laser 10 W over [0, 2] s; core 5 W over [0, 1] s then 15 W over [1, 2] s; 1e12 MACs.

    By hand: laser 20 J, core 5 + 15 = 20 J, total 40 J over 2 s; ops = 2e12 -> 2e-11 J/op
    = 20 pJ/op = 20 000 fJ/op = 20 000 mW/TOPS, 1 TOPS. The light computed 0.5 s during [1, 1.5] s:
    peak rate 4e12 op/s (4 TOPS), power while computing 10 + 15 = 25 W -> 6.25e-12 J/op = 6250 mW/TOPS.
    """
    ledger = EnergyLedger("hand")
    ledger.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    ledger.add(PowerTerm("core", 5.0, PSU, 0.0, 1.0))
    ledger.add(PowerTerm("core", 15.0, PSU, 1.0, 2.0))
    ledger.add_ops(10**12, source="hand", optical_time_s=0.5, start_s=1.0, end_s=1.5)
    return ledger


def test_hand_computed_case_utilisation_weighted():
    s = two_devices_three_intervals().summary("bench")
    assert {d.device: d.energy_j for d in s.devices} == {"laser": 20.0, "core": 20.0}
    assert s.energy_j == 40.0 and s.time_s == 2.0 and s.mean_power_w == 20.0
    assert s.macs == 10**12 and s.ops == 2 * 10**12 and s.ops_per_mac == OPS_PER_MAC == 2
    assert s.tops == pytest.approx(1.0, rel=1e-12)
    assert s.j_per_op == pytest.approx(2e-11, rel=1e-12)
    assert s.mw_per_tops == pytest.approx(20_000.0, rel=1e-12)
    assert s.no_ops is None
    assert "utilisation-weighted" in s.labels["utilisation"] and "1 MAC = 2 ops" in s.labels["ops"]


def test_hand_computed_case_at_peak():
    s = two_devices_three_intervals().summary("bench")
    assert s.peak_power_w == pytest.approx(25.0, rel=1e-12)
    assert "compute intervals" in s.peak_power_basis
    assert s.peak_ops_per_s == pytest.approx(4e12, rel=1e-12) and s.peak_tops == pytest.approx(4.0)
    assert s.peak_j_per_op == pytest.approx(6.25e-12, rel=1e-12)
    assert s.peak_mw_per_tops == pytest.approx(6250.0, rel=1e-12)
    assert s.no_peak is None


def test_peak_without_compute_intervals_uses_the_max_total_draw_and_says_so():
    ledger = EnergyLedger()
    ledger.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    ledger.add(PowerTerm("core", 5.0, PSU, 0.0, 1.0))
    ledger.add(PowerTerm("core", 15.0, PSU, 1.0, 2.0))
    ledger.add_ops(10**12, source="hand", optical_time_s=0.5)
    s = ledger.summary()
    assert s.peak_power_w == 25.0 and "max total draw" in s.peak_power_basis
    assert s.peak_mw_per_tops == pytest.approx(6250.0, rel=1e-12)


def test_mw_per_tops_is_fj_per_op():
    """The paper's 118.6 mW/TOPS is 118.6 fJ/op: a steady 118.6 mW at 1 TOPS (5e11 MAC/s) for 2 s."""
    ledger = EnergyLedger()
    ledger.add(PowerTerm("chip", 0.1186, Model("P", {"P": 0.1186})), view="projected")
    ledger.set_window("projected", 0.0, 2.0)
    ledger.add_ops(10**12, source="hand", optical_time_s=2.0)
    assert ledger.summary("projected").no_peak.startswith("no peak op rate given for this view")
    ledger.set_peak_rate("projected", 1e12, Model("2 N M f_s", {"rate": 1e12}))
    s = ledger.summary("projected")
    assert s.energy_j == pytest.approx(0.2372, rel=1e-12)
    assert s.j_per_op == pytest.approx(118.6e-15, rel=1e-12)
    assert s.mw_per_tops == pytest.approx(118.6, rel=1e-12)
    assert s.tops == pytest.approx(1.0) and s.peak_mw_per_tops == pytest.approx(118.6, rel=1e-12)


def test_views_are_separate_and_share_the_ops():
    ledger = two_devices_three_intervals()
    ledger.add(PowerTerm("laser", 0.05, Model("P_opt / eta", {"P_opt": 0.01, "eta": 0.2})), view="projected")
    ledger.add(PowerTerm("cpu", 65.0, Datasheet(65.0, "W", "CPU TDP sheet", "1")), view="baseline")
    ledger.set_window("baseline", 0.0, 10.0)
    assert ledger.views() == ("bench", "projected", "baseline")
    with pytest.raises(EnergyError, match="window"):  # the bench's ops intervals are not the projected clock
        ledger.summary("projected")
    ledger.set_peak_rate("projected", 4e12, Model("2 N M f_s", {"N": 20, "M": 10, "f_s": 10e9}))
    projected = ledger.summary("projected")
    # steady 0.05 W for the time the 2e12 ops take at 4e12 op/s (0.5 s): 25 mJ; / 2e12 ops = 12.5 fJ/op
    assert projected.window_s == (0.0, 0.5) and "peak op rate" in projected.window_basis
    assert projected.energy_j == pytest.approx(0.025, rel=1e-12)
    assert projected.mw_per_tops == pytest.approx(12.5, rel=1e-12)
    assert projected.peak_mw_per_tops == pytest.approx(12.5, rel=1e-12)  # at full utilisation they agree
    assert "bench clock" in projected.peak_power_basis
    baseline = ledger.summary("baseline")
    assert baseline.energy_j == 650.0 and baseline.devices[0].kinds == ("datasheet",)
    assert ledger.summary("bench").energy_j == 40.0


def test_peak_rate_set_with_its_provenance():
    ledger = two_devices_three_intervals()
    ledger.set_peak_rate("bench", 2 * 16 * 16 * 10e9, Model("2 N M f_s", {"N": 16, "M": 16, "f_s": 10e9}))
    s = ledger.summary()
    assert s.peak_ops_per_s == 5.12e12 and "2 N M f_s" in s.peak_rate_basis
    assert s.peak_j_per_op == pytest.approx(25.0 / 5.12e12, rel=1e-12)


def test_ops_from_last_stats_and_offload_ledger():
    ledger = EnergyLedger()
    rec = ledger.add_stats({"macs": 900, "optical_macs": 1000, "optical_time_s": 1e-6, "wall_s": 0.1})
    assert rec.macs == 1000 and rec.useful_macs == 900  # the optics did the padding too
    assert ledger.add_stats({"macs": 50, "optical_time_s": 1e-7}).macs == 50

    class Offload:
        total_macs = 4000

    assert ledger.add_offload(Offload()).macs == 4000
    assert ledger.add_offload({"total_macs": 6}).macs == 6
    assert ledger.macs == 5056 and ledger.ops == 10112
    big = 2**53 + 1  # counted exactly, not rounded through a float
    assert ledger.add_ops(big, source="hand").macs == big and ledger.macs == 5056 + big


def test_a_run_with_no_ops_says_so():
    ledger = EnergyLedger()
    ledger.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    s = ledger.summary()
    assert s.energy_j == 20.0 and s.ops == 0
    assert s.j_per_op is None and s.mw_per_tops is None and s.tops is None and s.peak_j_per_op is None
    assert s.no_ops == NO_OPS and s.no_peak == NO_OPS and "no MACs" in s.no_ops


@pytest.mark.parametrize("power", [float("nan"), -1.0, float("inf"), "3 W", None, True])
def test_bad_power_is_refused(power):
    with pytest.raises(EnergyError):
        PowerTerm("laser", power, PSU, 0.0, 1.0)


def test_nan_is_an_error_not_a_zero():
    with pytest.raises(EnergyError, match="NaN"):
        PowerTerm("laser", float("nan"), PSU)


def test_missing_or_wrong_provenance_is_refused():
    with pytest.raises(EnergyError, match="provenance"):
        PowerTerm("laser", 1.0, None)
    with pytest.raises(EnergyError, match="provenance"):
        PowerTerm("laser", 1.0, "the bench")
    with pytest.raises(EnergyError):
        EnergyLedger().add({"device": "laser", "power_w": 1.0})
    with pytest.raises(EnergyError):
        Measured("", "MEAS:POW?")
    with pytest.raises(EnergyError):
        Datasheet(float("nan"), "W", "doc", "1")
    with pytest.raises(EnergyError):
        Model("", {})


def test_errors_are_typed():
    assert issubclass(EnergyError, LabctlError) and issubclass(EnergyError, ValueError)


@pytest.mark.parametrize("start,end", [(1.0, 0.5), (float("nan"), 1.0), (0.0, None), (0.0, float("inf"))])
def test_bad_intervals_are_refused(start, end):
    with pytest.raises(EnergyError):
        PowerTerm("laser", 1.0, PSU, start, end)


def test_overlapping_intervals_for_one_device_are_refused():
    ledger = EnergyLedger()
    ledger.add(PowerTerm("core", 5.0, PSU, 0.0, 1.0))
    ledger.add(PowerTerm("core", 5.0, PSU, 1.0, 2.0))  # touching is fine
    ledger.add(PowerTerm("laser", 5.0, PSU, 0.5, 1.5))  # another device may overlap
    with pytest.raises(EnergyError, match="overlaps"):
        ledger.add(PowerTerm("core", 7.0, PSU, 0.9, 1.1))
    with pytest.raises(EnergyError, match="steady"):
        ledger.add(PowerTerm("core", 7.0, PSU))
    ledger.add(PowerTerm("core", 7.0, PSU, 0.5, 0.6), view="projected")  # another view is another account
    assert len(ledger.terms("bench")) == 3


@pytest.mark.parametrize("macs", [float("nan"), -1, -1.0, 1.5, "1e12", float("inf"), True])
def test_bad_mac_counts_are_refused(macs):
    with pytest.raises(EnergyError):
        EnergyLedger().add_ops(macs, source="hand")


def test_bad_ops_inputs_are_refused():
    ledger = EnergyLedger()
    with pytest.raises(EnergyError):
        ledger.add_ops(10, source="hand", optical_time_s=float("nan"))
    with pytest.raises(EnergyError):
        ledger.add_ops(10, source="")
    with pytest.raises(EnergyError):
        ledger.add_stats({"wall_s": 1.0})
    with pytest.raises(EnergyError):
        ledger.add_offload(object())
    with pytest.raises(EnergyError):
        ledger.set_peak_rate("bench", 0.0, PSU)
    with pytest.raises(EnergyError):
        ledger.set_peak_rate("bench", 1e12, None)
    with pytest.raises(EnergyError, match="unknown view"):
        ledger.add(PowerTerm("x", 1.0, PSU), view="cloud")
    assert ledger.ops_records == []


def test_summary_refuses_what_it_cannot_compute():
    ledger = EnergyLedger()
    with pytest.raises(EnergyError, match="no power terms"):
        ledger.summary()
    ledger.add(PowerTerm("laser", 1.0, PSU))
    with pytest.raises(EnergyError, match="window"):
        ledger.summary()
    ledger.add(PowerTerm("core", 1.0, PSU, 0.0, 5.0))
    ledger.set_window("bench", 0.0, 2.0)
    with pytest.raises(EnergyError, match="outside the window"):
        ledger.summary()


def test_no_peak_rate_without_optical_time_says_why():
    ledger = EnergyLedger()
    ledger.add(PowerTerm("laser", 1.0, PSU, 0.0, 1.0))
    ledger.add_ops(100, source="hand")
    s = ledger.summary()
    assert s.j_per_op == pytest.approx(1.0 / 200) and s.peak_j_per_op is None and "optical_time_s" in s.no_peak


def test_json_sidecar_round_trip(tmp_path):
    ledger = two_devices_three_intervals()
    ledger.add(PowerTerm("laser", 0.05, Model("P_opt / eta", {"P_opt": 0.01, "eta": 0.2}), note="DFB"),
               view="projected")
    ledger.set_peak_rate("projected", 3.6e12, LASER_DS)
    path = ledger.save(tmp_path / "run.energy.json")
    again = EnergyLedger.load(path)
    assert again.to_dict() == ledger.to_dict()
    for view in ("bench", "projected"):
        assert again.summary(view) == ledger.summary(view)


def test_hdf5_round_trip_through_the_recorder_and_into_a_finished_file(tmp_path):
    ledger = two_devices_three_intervals()
    recorder = Recorder(tmp_path / "run.h5", experiment="x", parameters={}, seed=1)
    recorder.append("y", 1.0)
    ledger.save(recorder)
    path = recorder.close()
    assert EnergyLedger.load(path).summary() == ledger.summary()
    with h5py.File(path, "r") as f:
        assert "ledger" in f["energy"]
    assert "y" in read_results(path)  # the group does not stop the results from reading
    # appending to a finished file (no recorder) replaces the record
    ledger.add_ops(10**12, source="second product", optical_time_s=0.5, start_s=1.5, end_s=2.0)
    ledger.save(path)
    assert EnergyLedger.load(path).summary().macs == 2 * 10**12


def test_load_falls_back_to_the_sidecar_and_says_when_there_is_none(tmp_path):
    recorder = Recorder(tmp_path / "run.h5", experiment="x", parameters={}, seed=1)
    path = recorder.close()
    with pytest.raises(EnergyError, match="no energy record"):
        EnergyLedger.load(path)
    two_devices_three_intervals().save(sidecar_path(path))
    assert EnergyLedger.load(path).summary().energy_j == 40.0
    with pytest.raises(EnergyError):
        EnergyLedger.load(tmp_path / "missing.h5")


def test_a_tampered_record_is_checked_again(tmp_path):
    d = two_devices_three_intervals().to_dict()
    d["terms"]["bench"][0]["power_w"] = -3.0
    with pytest.raises(EnergyError):
        EnergyLedger.from_dict(d)
    d = two_devices_three_intervals().to_dict()
    del d["terms"]["bench"][0]["provenance"]
    with pytest.raises(EnergyError):
        EnergyLedger.from_dict(d)
    with pytest.raises(EnergyError, match="format"):
        EnergyLedger.from_dict({"terms": {}})


def test_energy_of_a_term():
    t = PowerTerm("laser", 2.5, PSU, 1.0, 3.0)
    assert t.duration_s == 2.0 and t.energy_j == 5.0
    assert PowerTerm("laser", 2.5, PSU).energy_j is None
    assert math.isclose(PowerTerm("x", 0.0, PSU, 0, 1).energy_j, 0.0)


def test_energy_per_item_divides_each_views_energy_and_refuses_zero_items():
    ledger = EnergyLedger()
    ledger.add(PowerTerm("rig", 10.0, Model("P", {"P": 10.0}), start_s=0.0, end_s=3.0))
    ledger.add(PowerTerm("cpu", 5.0, Model("P", {"P": 5.0})), view="baseline")  # no window: not summarised
    per = ledger.energy_per_item(6)
    assert per == {"bench": pytest.approx(5.0), "baseline": None}
    with pytest.raises(EnergyError, match="no items"):
        ledger.energy_per_item(0)


@settings(max_examples=200, deadline=None)
@example([("core", (3, 0)), ("core", (3, 2)), ("core", (4, 2))])  # a zero-length term sharing a start
@given(st.lists(st.tuples(st.sampled_from(["laser", "core"]),
                          st.one_of(st.none(), st.tuples(st.integers(0, 12), st.integers(0, 4)))), max_size=40))
def test_overlap_refusals_match_comparing_every_pair(spec):
    """Whatever the order, zero-length and steady terms included, a term is refused exactly when it overlaps (or,
    steady, shares a device with) a term already recorded: the ledger's neighbour check against every pair."""
    ledger, kept = EnergyLedger("fuzz"), []
    for device, interval in spec:
        term = PowerTerm(device, 1.0, PSU) if interval is None else \
            PowerTerm(device, 1.0, PSU, float(interval[0]), float(interval[0] + interval[1]))
        clash = any(o.device == device and (term.start_s is None or o.start_s is None
                                            or (term.start_s < o.end_s and o.start_s < term.end_s)) for o in kept)
        if clash:
            with pytest.raises(EnergyError):
                ledger.add(term)
        else:
            ledger.add(term)
            kept.append(term)
    assert ledger.terms() == kept


@settings(max_examples=200, deadline=None)
@example([(2.0, None), (3.0, (1, 0)), (5.0, (1, 2)), (7.0, (0, 1))], 0)  # zero-length at a start, steady
@given(st.lists(st.tuples(st.floats(0.0, 100.0),
                          st.one_of(st.none(), st.tuples(st.integers(0, 12), st.integers(0, 4)))), min_size=1, max_size=40),
       st.integers(0, 3))
def test_peak_draw_without_compute_intervals_is_the_largest_total_at_any_start(spec, tail):
    """The peak draw (no compute intervals recorded) is the largest sum, at the window's start or at any term's
    start before its end, of the steady terms and the timed terms running then ([start, end), a zero-length one at
    its start): the same sum, to the bit, as adding every term at every such instant."""
    ledger, terms = EnergyLedger("fuzz"), []
    for k, (power, interval) in enumerate(spec):
        term = PowerTerm(f"device{k}", power, PSU) if interval is None else \
            PowerTerm(f"device{k}", power, PSU, float(interval[0]), float(interval[0] + interval[1]))
        ledger.add(term)
        terms.append(term)
    t0 = 0.0  # the window holds every term (the ledger requires it), and may run on after the last
    t1 = max([t.end_s for t in terms if t.end_s is not None], default=0.0) + tail + 1.0
    ledger.set_window("bench", t0, t1)
    ledger.add_ops(10**9, source="fuzz", optical_time_s=1.0)
    points = {t0} | {t.start_s for t in terms if t.start_s is not None and t.start_s < t1}
    expected = max(sum(t.power_w for t in terms
                       if t.start_s is None or t.start_s <= p < t.end_s or t.start_s == t.end_s == p) for p in points)
    s = ledger.summary("bench")
    assert "max total draw" in s.peak_power_basis
    assert s.peak_power_w == expected
