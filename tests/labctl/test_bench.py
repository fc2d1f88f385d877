"""Opening benches: roles, safety limits, shutdown, locks, snapshots, physics seen through drivers."""

import math
import threading

import pytest
import yaml

import labctl
from labctl.errors import RoleError, SafetyLimitError, UnknownResourceError
from sim_backends import CHARACTERISATION_BENCH_PATH

LASER = "TCPIP0::laser.labsim::inst0::INSTR"


@pytest.fixture
def bench():
    with labctl.open_bench("characterisation", seed=5) as b:
        yield b


def sim_laser(bench):
    return bench.sim.instrument(LASER)


def test_default_bench_identifies_every_instrument_and_roles_are_complete(bench):
    idns = bench.identify()
    assert set(idns) == set(bench.config.instruments)
    assert all(idn.count(",") >= 3 for idn in idns.values())
    assert bench.check_roles() == []


def test_unsafe_laser_power_is_refused_before_anything_is_sent(bench):
    laser = bench.role("laser", 1)
    before = sim_laser(bench).state()
    with pytest.raises(SafetyLimitError, match="10 dBm"):
        laser.power = 20e-3  # 13 dBm > 10 dBm limit
    assert sim_laser(bench).state() == before
    assert sim_laser(bench).next_error() == '0,"No error"'


@pytest.mark.parametrize("role, channel, attribute, value", [
    ("awg", 1, "amplitude", 1.5),
    ("bias", None, "bias_voltage", -12.0),
    ("heaters", 2, "voltage", 9.0),
    ("heaters", 2, "current_limit", 0.2),
])
def test_other_safety_limits(bench, role, channel, attribute, value):
    with pytest.raises(SafetyLimitError):
        setattr(bench.role(role, channel), attribute, value)


def test_setting_within_limits_reaches_the_instrument(bench):
    laser = bench.role("laser", 1)
    laser.power = 5e-3
    assert laser.power == pytest.approx(5e-3, rel=1e-6)


def test_leaving_the_context_turns_sources_off_even_after_an_exception():
    with pytest.raises(RuntimeError):
        with labctl.open_bench("characterisation", seed=1) as b:
            b.role("laser", 1).power = 5e-3
            b.role("laser", 1).output_enabled = True
            b.role("heaters", 1).voltage = 1.0
            b.role("heaters", 1).current_limit = 0.01
            b.role("heaters", 1).output_enabled = True
            simulated = b.sim
            raise RuntimeError("experiment failed")
    laser_port = simulated.world.nodes["laser"]
    assert laser_port.optical_output("out1", [0.0]) == []
    heater_source = simulated.world.nodes["heaters"]
    assert heater_source.electrical_output("out1", [0.0])[0] == 0.0


def test_keyboard_interrupt_also_shuts_down():
    with pytest.raises(KeyboardInterrupt):
        with labctl.open_bench("characterisation", seed=1) as b:
            b.role("laser", 2).output_enabled = True
            simulated = b.sim
            raise KeyboardInterrupt
    assert simulated.world.nodes["laser"].optical_output("out2", [0.0]) == []


def test_laser_off_and_switch_move_change_what_the_power_meter_reads(bench):
    laser, meter, switch = bench.role("laser", 1), bench.role("powermeter", 1), bench.role("switch")
    laser.power = 4e-3
    laser.output_enabled = True
    switch.route = 1
    bench.settle(0.1)
    lit = meter.read_power()
    assert lit > 1e-5
    laser.output_enabled = False
    assert meter.read_power() < lit * 1e-3
    laser.output_enabled = True
    switch.route = 3
    bench.settle(0.1)
    assert meter.read_power() < lit * 1e-3  # only switch crosstalk reaches port 1


def test_unknown_role_or_channel(bench):
    with pytest.raises(RoleError, match="laser"):
        bench.role("lazer")
    with pytest.raises(RoleError, match="channels"):
        bench.role("laser", 7)


def test_unknown_resource_lists_what_exists(tmp_path):
    data = yaml.safe_load(CHARACTERISATION_BENCH_PATH.read_text())
    instruments = {k: v for k, v in data["instruments"].items() if k != "scope"}
    instruments["wt"] = dict(instruments["wt"], measures=[m for m in instruments["wt"]["measures"] if m != "scope"])
    smaller = dict(data, instruments=instruments,
                   connections=[c for c in data["connections"] if "scope" not in c],
                   safety={k: v for k, v in data["safety"].items() if k != "scope"})
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(smaller))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(dict(data, visa_library=f"{other}@labsim")))
    with pytest.raises(UnknownResourceError) as err:
        labctl.open_bench(mine, mode="real")
    assert "scope" in str(err.value) and LASER in str(err.value)


def test_real_mode_needs_a_bench_file():
    with pytest.raises(labctl.ConfigError, match="bench file"):
        labctl.open_bench(mode="real")


def test_snapshot_records_every_instrument_setting(bench):
    bench.role("laser", 3).wavelength = 1551.0e-9
    snap = bench.snapshot()
    assert set(snap["instruments"]) == set(bench.config.instruments)
    assert snap["instruments"]["laser"]["channels"]["3"]["wavelength"] == pytest.approx(1551.0e-9)
    assert "idn" in snap["instruments"]["scope"]


def test_one_lock_per_resource_keeps_concurrent_queries_apart(bench):
    laser_driver = bench.instruments["laser"]
    laser_driver.ch_1.wavelength = 1550.5e-9
    idn = laser_driver.id
    results, errors = [], []

    def ask_idn():
        for _ in range(150):
            results.append(laser_driver.id == idn)

    def ask_wavelength():
        for _ in range(150):
            try:
                assert abs(laser_driver.ch_1.wavelength - 1550.5e-9) < 1e-15
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=ask_idn), threading.Thread(target=ask_wavelength)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 150
    assert errors == []


def test_settle_advances_the_simulated_clock(bench):
    start = bench.sim.world.time
    bench.settle(2.5)
    assert bench.sim.world.time == pytest.approx(start + 2.5)


def test_same_seed_same_numbers():
    readings = []
    for _ in range(2):
        with labctl.open_bench("characterisation", seed=11) as b:
            b.role("laser", 1).output_enabled = True
            b.role("switch").route = 1
            b.settle(0.1)
            readings.append(b.role("powermeter", 1).read_power())
    assert readings[0] == readings[1]


def _meter_dbm(bench) -> float:
    """Power at the meter behind the edge fibre, laser on, in dBm (read through the roles)."""
    bench.role("laser", 1).output_enabled = True
    bench.role("switch").route = 1
    bench.settle(0.1)
    return 10 * math.log10(bench.role("powermeter", 1).read_power() / 1e-3)


def test_a_bench_variant_changes_the_physics_and_is_recorded_in_the_snapshot():
    with labctl.open_bench("characterisation", seed=11) as b:
        own_km = b.config.components["edge_fibre"]["length_km"]
        attenuation = b.config.components["edge_fibre"]["attenuation_db_per_km"]
        reference = _meter_dbm(b)
        assert "changes" not in b.snapshot()
    with labctl.open_bench("characterisation", seed=11, changes={"edge_fibre.length_km": own_km + 50.0}) as b:
        assert b.config.components["edge_fibre"]["length_km"] == own_km + 50.0
        longer = _meter_dbm(b)
        assert b.snapshot()["changes"] == {"edge_fibre.length_km": own_km + 50.0}
    # 50 km more fibre: 50 x its attenuation less at the meter (the meter's own noise is far below 0.05 dB)
    assert reference - longer == pytest.approx(50.0 * attenuation, abs=0.05)
    with labctl.open_bench("characterisation", seed=11) as b:
        assert b.config.components["edge_fibre"]["length_km"] == own_km   # the file itself is untouched


@pytest.mark.parametrize("changes, field", [
    ({"edge_fibre.lenght_km": 5.0}, "components.edge_fibre.lenght_km"),           # misspelt parameter
    ({"edge_fibr.length_km": 5.0}, "edge_fibr.length_km"),                        # no such item
    ({"edge_fibre.length_km": -1.0}, "components.edge_fibre.length_km"),          # outside its physical range
    ({"edge_fibre.length_km": "far"}, "components.edge_fibre.length_km"),         # not a number
    ({"edge_fibre.type": "mzm"}, "components.edge_fibre.type"),                   # a change is not a new part
    ({"laser.linewidth_hz": -5.0}, "instruments.laser.sim.params.linewidth_hz"),  # an instrument's sim param
    ({"edge_fibre": 5.0}, "edge_fibre"),                                          # no parameter named
])
def test_a_bench_variant_is_validated_like_the_file(changes, field):
    with pytest.raises(labctl.ConfigError) as err:
        labctl.open_bench("characterisation", changes=changes)
    assert err.value.field == field
    assert err.value.line is None          # a variant has no lines; the field says where


def test_a_real_bench_cannot_be_varied_from_software():
    with pytest.raises(labctl.ConfigError, match="simulated variant"):
        labctl.open_bench(CHARACTERISATION_BENCH_PATH, mode="real", changes={"edge_fibre.length_km": 5.0})


def test_sim_adjust_changes_a_running_bench_validates_and_restores():
    with labctl.open_bench("characterisation", seed=11) as b:
        reference = _meter_dbm(b)
        own_km = b.config.components["edge_fibre"]["length_km"]
        previous = b.sim_adjust("edge_fibre", length_km=own_km + 25.0)
        assert previous == {"length_km": own_km}
        attenuation = b.config.components["edge_fibre"]["attenuation_db_per_km"]
        assert reference - _meter_dbm(b) == pytest.approx(25.0 * attenuation, abs=0.05)
        snap = b.snapshot()["adjustments"]
        assert [(a["component"], a["params"]) for a in snap] == [("edge_fibre", {"length_km": own_km + 25.0})]
        b.sim_adjust("edge_fibre", **previous)
        assert _meter_dbm(b) == pytest.approx(reference, abs=0.05)
        for params, field in (({"length_km": -2.0}, "components.edge_fibre.length_km"),
                              ({"lenght_km": 1.0}, "components.edge_fibre.lenght_km"),
                              ({"attenuation_db_per_km": 0.3}, "components.edge_fibre.attenuation_db_per_km")):
            with pytest.raises(labctl.ConfigError) as err:
                b.sim_adjust("edge_fibre", **params)
            assert err.value.field == field
        with pytest.raises(labctl.ConfigError, match="no such component"):
            b.sim_adjust("laser", power=1.0)
        assert len(b.snapshot()["adjustments"]) == 2   # refused changes are not recorded
