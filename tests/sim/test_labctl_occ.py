"""The simulated OCC-16 optical core controller over SCPI (docs/occ_protocol.md), on core 1 of
sim_backends/benches/ring_core.yaml.

Protocol: every command as the reference writes it, sent with ``handle_write`` and read back from the
output queue (what the VISA layer does), the SCPI error queue after each. Physics: expected values are
closed forms of the bench file's numbers, computed here -- the dark level (dark current x receiver
gain), the microring bank's drop (``MicroringBank.drop`` built from the bank's own yaml entry), the
fibre group delay sum L n_g / c + D L (lambda - lambda_ref), the clock advance T (settle + S / rate) --
never earlier simulator output.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sim_backends.bench import build_bench, load_bench_file
from sim_backends.physics.microring import MicroringBank

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "ring_core.yaml"
C_LIGHT = 299_792_458.0
FIBRE_REFERENCE_M = 1550e-9  # the fibres' dispersion reference wavelength (sim default; the yaml sets none)
N = 16

# docs/occ_protocol.md: query header -> *RST value
DEFAULTS = {":SYMB:RATE?": 1e9, ":DAC:AMPL?": 0.5, ":ADC:RANG?": 0.2, ":ADC:OFFS?": 0.0, ":HEAT:LIM?": 5.0,
            ":TILE:SLOT?": 1024, ":TILE:SETT?": 2e-5, ":INP:ADV?": 0.0}


# -- the bench: core 1 only (the other two cores are copies; building them would only cost time) -----


@pytest.fixture(scope="module")
def full_config() -> dict:
    return load_bench_file(BENCH)


def core_config(config: dict, core: int = 1) -> dict:
    """The bench file's parts of one core: its lasers, controller, components and their connections."""
    own = re.compile(rf"[a-z_]+{core}(_\d+)?")
    instruments = {k: v for k, v in config["instruments"].items() if own.fullmatch(k)}
    components = {k: v for k, v in config["components"].items() if own.fullmatch(k)}
    names = set(instruments) | set(components)
    connections = [c for c in config["connections"]
                   if all(end.strip().split(".")[0] in names for end in c.split("->"))]
    opu = {**config["opu"], "cores": [config["opu"]["cores"][core - 1]]}
    return copy.deepcopy({"name": config["name"], "instruments": instruments, "components": components,
                          "connections": connections, "opu": opu})


@pytest.fixture
def config(full_config) -> dict:
    return core_config(full_config)


class Core:
    """Core 1 of a built bench, driven through SCPI: the controller and its four lasers."""

    def __init__(self, config: dict, seed: int = 1):
        self.config = config
        self.sim = build_bench(config, seed=seed)
        self.world = self.sim.world
        self.occ = self.sim.by_name["occ1"]
        self.channels = config["opu"]["cores"][0]["channels"]

    # SCPI
    @staticmethod
    def send(inst, message) -> bytes:
        inst.handle_write(message if isinstance(message, bytes) else message.encode())
        out = bytes(inst.output)
        inst.output.clear()
        return out

    def write(self, message) -> None:
        assert self.send(self.occ, message) == b""

    def ask(self, message: str) -> str:
        return self.send(self.occ, message).decode().strip()

    def number(self, message: str) -> float:
        return float(self.ask(message))

    def error(self) -> int:
        return int(self.ask("SYST:ERR?").split(",")[0])

    def errors(self) -> list[int]:
        codes = []
        while (code := self.error()) != 0:
            codes.append(code)
        return codes

    def write_ok(self, message) -> None:
        self.write(message)
        assert self.errors() == [], message

    def table(self, volts) -> None:
        self.write(b":HEAT:TABL " + block(np.asarray(volts, dtype="<f4").tobytes()))

    def inputs(self, codes) -> None:
        self.write(b":INP:DATA " + block(np.asarray(codes, dtype="<i2").tobytes()))

    def run(self, volts, codes) -> np.ndarray:
        """Load, run and fetch one program; ADC codes (T, S, N_out)."""
        codes = np.asarray(codes)
        self.write_ok(f":TILE:SLOT {codes.shape[1]}")
        self.table(volts)
        self.inputs(codes)
        self.write(":INIT")
        assert self.ask("*OPC?") == "1"
        assert self.errors() == []
        reply = self.send(self.occ, ":FETC:DATA?")
        payload = parse_block(reply)
        return np.frombuffer(payload, dtype="<i2").reshape(codes.shape[0], codes.shape[1], -1)

    def volts(self, codes: np.ndarray) -> np.ndarray:
        """ADC codes -> volts: offset + code / 65536 x range (docs/occ_protocol.md)."""
        return self.number(":ADC:OFFS?") + codes.astype(float) / 65536 * self.number(":ADC:RANG?")

    # lasers (N7714A SCPI), one per input
    def laser(self, k: int, on: bool = True) -> None:
        ch = self.channels[k]
        laser = self.sim.by_name[ch["laser"]]
        p = ch["laser_port"]
        self.send(laser, f":SOUR{p}:WAV {ch['wavelength_m']!r};:SOUR{p}:POW {self.config['opu']['laser_power_dbm']}DBM;"
                         f":SOUR{p}:POW:STAT {'ON' if on else 'OFF'}")
        assert self.send(laser, "SYST:ERR?").startswith(b"0,")

    # closed forms from the bench file
    def wavelength(self, k: int) -> float:
        return self.channels[k]["wavelength_m"]

    def bank(self, q: int) -> MicroringBank:
        spec = dict(self.config["components"][f"bank1_{q + 1}"])
        spec.pop("type")
        return MicroringBank(**spec)

    def resonance_volts(self, q: int, k: int) -> float:
        """Heater volts that put ring k of bank q on its channel (neighbours cold): P = detuning / tuning."""
        bank = self.bank(q)
        power = (self.wavelength(k) - bank.resonance_wavelengths[k]) / bank.tuning_m_per_w
        return math.sqrt(power * bank.heater_resistance_ohm)

    def path_delay(self, k: int) -> float:
        """Modulator k -> photodiodes: sum over the fibres of L n_g / c + D L (lambda_k - lambda_ref)."""
        total = 0.0
        for name in ("edge_fibre1", "metro_fibre1", "dcf1"):
            f = self.config["components"][name]
            length = f["length_km"] * 1e3
            d_s_per_m2 = f["dispersion_ps_nm_km"] * 1e-12 / (1e-9 * 1e3)
            walk_off = d_s_per_m2 * length * (self.wavelength(k) - FIBRE_REFERENCE_M)
            total += length * f["group_index"] / C_LIGHT + walk_off
        return total

    def mzm(self, k: int) -> dict:
        return self.config["components"][f"mzm1_{k + 1}"]

    def quadrature_bias(self, k: int) -> float:
        """Bias volts putting MZM k at quadrature (theta = -pi/4) with the DAC at code 0."""
        m = self.mzm(k)
        return -m["phase_offset_v"] - m["v_pi"] / 2


def block(payload: bytes) -> bytes:
    length = str(len(payload)).encode()
    return b"#" + str(len(length)).encode() + length + payload


def parse_block(reply: bytes) -> bytes:
    assert reply[:1] == b"#", reply[:40]
    digits = int(reply[1:2])
    length = int(reply[2:2 + digits])
    payload = reply[2 + digits:2 + digits + length]
    assert len(payload) == length and reply[2 + digits + length:] == b"\n"
    return payload


def tiles(t: int = 1, volts: float = 0.0) -> np.ndarray:
    return np.full((t, N, N), volts)


def zero_codes(t: int = 1, s: int = 8) -> np.ndarray:
    return np.zeros((t, s, N), dtype=np.int16)


def pattern_lag(signal: np.ndarray, bits: np.ndarray, start: int, search: int = 20) -> int:
    """Slot lag (within +-search) at which ``bits`` launched at ``start`` best match ``signal``."""
    v = signal - signal.mean()
    scores = [np.dot(v[start + s:start + s + bits.size], bits) for s in range(-search, search + 1)]
    return int(np.argmax(scores)) - search


@pytest.fixture
def core(config) -> Core:
    return Core(config)


# -- protocol -------------------------------------------------------------------------------------------


def test_idn_and_core_size(core):
    maker, model, serial, firmware = core.ask("*IDN?").split(",")
    assert (maker, model, firmware) == ("LABCTL", "OCC-16", "1.0.0")
    assert serial
    params = core.config["instruments"]["occ1"]["sim"]["params"]
    assert core.ask(":CORE:INPuts?") == str(params["inputs"]) == "16"
    assert core.ask(":CORE:OUTP?") == str(params["outputs"]) == "16"
    assert core.errors() == []


@pytest.mark.parametrize("command, query, expected", [
    (":SYMBol:RATE 1.5GHZ", ":SYMB:RATE?", 1.5e9),
    (":SYMB:RATE 250MHZ", ":SYMBol:RATE?", 250e6),
    (":SYMB:RATE MIN", ":SYMB:RATE?", 1e6),
    (":SYMB:RATE MAX", ":SYMB:RATE?", 2.5e9),
    (":DAC:AMPLitude 300MV", ":DAC:AMPL?", 0.3),
    (":DAC:AMPL MAX", ":DAC:AMPL?", 1.0),
    (":ADC:RANGe 50MV", ":ADC:RANG?", 0.05),
    (":ADC:RANG MIN", ":ADC:RANG?", 0.01),
    (":ADC:OFFSet -0.25", ":ADC:OFFS?", -0.25),
    (":ADC:OFFS MAX", ":ADC:OFFS?", 1.0),
    (":HEATer:LIMit 2.5V", ":HEAT:LIM?", 2.5),
    (":HEAT:LIM MIN", ":HEAT:LIM?", 0.0),
    (":TILE:SLOTs 4096", ":TILE:SLOT?", 4096),
    (":TILE:SLOT MAX", ":TILE:SLOT?", 1048576),
    (":TILE:SETTle 50US", ":TILE:SETT?", 50e-6),
    (":TILE:SETT MIN", ":TILE:SETT?", 1e-6),
    (":INPut:ADVance 68.5US", ":INP:ADV?", 68.5e-6),
    (":INP:ADV MAX", ":INP:ADV?", 1e-3),
])
def test_settings_round_trip_with_si_suffixes_and_min_max(core, command, query, expected):
    core.write_ok(command)
    assert core.number(query) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    core.write_ok(command.split()[0] + " DEF")
    assert core.number(query) == pytest.approx(DEFAULTS[query.replace("SYMBol", "SYMB")], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("command, query", [
    (":SYMB:RATE 3GHZ", ":SYMB:RATE?"),
    (":SYMB:RATE 999KHZ", ":SYMB:RATE?"),
    (":DAC:AMPL 1.01", ":DAC:AMPL?"),
    (":ADC:RANG 5MV", ":ADC:RANG?"),
    (":ADC:OFFS -1.5", ":ADC:OFFS?"),
    (":HEAT:LIM 10.5", ":HEAT:LIM?"),
    (":TILE:SLOT 0", ":TILE:SLOT?"),
    (":TILE:SLOT 1048577", ":TILE:SLOT?"),
    (":TILE:SETT 20MS", ":TILE:SETT?"),
    (":INP:ADV -1US", ":INP:ADV?"),
])
def test_out_of_range_settings_are_refused_with_222(core, command, query):
    before = core.ask(query)
    core.write(command)
    assert core.errors() == [-222]
    assert core.ask(query) == before


def test_bias_channel_lists(core):
    core.write_ok(":BIAS:VOLT 1.5,(@1:3)")
    core.write_ok(":BIAS:VOLTage -2.25,(@5)")
    core.write_ok(":BIAS:VOLT 10,(@16)")
    values = [float(v) for v in core.ask(":BIAS:VOLT? (@1:6)").split(",")]
    assert values == [1.5, 1.5, 1.5, 0.0, -2.25, 0.0]
    assert float(core.ask(":BIAS:VOLT? (@16)")) == 10.0
    core.write(":BIAS:VOLT 10.5,(@2)")
    core.write(":BIAS:VOLT 1,(@17)")
    assert core.errors() == [-222, -222]
    assert [float(v) for v in core.ask(":BIAS:VOLT? (@2)").split(",")] == [1.5]


def test_heater_table_above_the_limit_is_rejected_whole(core):
    core.write_ok(":HEAT:LIM 2")
    good = np.linspace(0.0, 2.0, 2 * N * N).reshape(2, N, N)  # the limit itself is allowed
    core.table(good)
    assert core.errors() == []
    assert core.ask(":HEAT:TABL:COUN?") == "2"
    for bad_value in (2.01, -0.1, float("nan")):
        bad = tiles(3, 1.0)
        bad[2, 7, 11] = bad_value
        core.table(bad)
        assert core.errors() == [-222], bad_value
        assert core.ask(":HEAT:TABL:COUN?") == "2"  # the previous table is kept, nothing of the new one
    core.write_ok(":HEAT:LIM 5")
    core.table(tiles(3, 2.01))
    assert core.errors() == []
    assert core.ask(":HEAT:TABL:COUN?") == "3"


def test_wrong_block_sizes_are_refused_with_223(core):
    core.table(tiles(2, 0.5))
    core.inputs(zero_codes(2, 8))
    assert core.errors() == []
    per_tile = N * N * 4
    for size in (0, per_tile - 4, per_tile + 4, 3 * per_tile + 2):
        core.write(b":HEAT:TABL " + block(b"\x00" * size))
        assert core.errors() == [-223], size
    assert core.ask(":HEAT:TABL:COUN?") == "2"
    for size in (2 * N - 2, 2 * N * 8 + 1, 2 * N * 8 + 2):
        core.write(b":INP:DATA " + block(b"\x00" * size))
        assert core.errors() == [-223], size
    assert core.ask(":INP:DATA:COUN?") == str(2 * 8 * N)


def test_initiate_refused_with_221_when_the_program_cannot_run(core):
    core.write(":INIT")  # outputs off (and nothing loaded)
    assert core.errors() == [-221]
    core.write_ok(":OUTP ON")
    core.write(":INIT")  # no heater table
    assert core.errors() == [-221]
    core.write_ok(":TILE:SLOT 8")
    core.table(tiles(2, 0.5))
    core.inputs(zero_codes(1, 8))  # one tile of inputs for a two-tile table
    core.write(":INIT")
    assert core.errors() == [-221]
    core.inputs(zero_codes(2, 8))
    core.write_ok(":TILE:SLOT 16")  # now the inputs are 2 x 8 slots, the program 2 x 16
    core.write(":INIT")
    assert core.errors() == [-221]
    assert core.ask(":FETC:DATA:COUN?") == "0"
    core.write_ok(":TILE:SLOT 8")
    core.write_ok(":OUTP OFF")
    core.write(":INIT")
    assert core.errors() == [-221]
    core.write_ok(":OUTP ON")
    core.write_ok(":INIT")
    assert core.ask(":FETC:DATA:COUN?") == str(2 * 8 * N)


@pytest.mark.parametrize("change", [
    ":ADC:RANG 0.1", ":SYMB:RATE 500MHZ", ":INP:ADV 1US", ":BIAS:VOLT 1,(@2)", ":OUTP ON", "table", "inputs",
])
def test_fetch_after_a_change_is_stale_230(core, change):
    core.write_ok(":OUTP ON")
    codes = zero_codes(2, 8)
    out = core.run(tiles(2, 0.3), codes)
    assert out.shape == (2, 8, N)
    assert core.ask(":FETC:DATA:COUN?") == str(out.size)
    if change == "table":
        core.table(tiles(2, 0.4))
    elif change == "inputs":
        core.inputs(codes)
    else:
        core.write(change)
    assert core.errors() == []
    assert core.send(core.occ, ":FETC:DATA?") == b""  # refused: no reply at all
    assert core.errors() == [-230]
    assert core.ask(":FETC:DATA:COUN?") == "0"


def test_rst_returns_every_setting_to_its_default(core):
    for message in (":SYMB:RATE 2GHZ", ":DAC:AMPL 0.9", ":ADC:RANG 1", ":ADC:OFFS 0.4", ":HEAT:LIM 7",
                    ":TILE:SETT 1MS", ":INP:ADV 70US", ":BIAS:VOLT 3,(@1:16)", ":OUTP ON"):
        core.write_ok(message)
    core.run(tiles(1, 0.5), zero_codes(1, 32))
    core.write_ok("*RST")
    for query, default in DEFAULTS.items():
        assert core.number(query) == pytest.approx(default, rel=1e-12), query
    assert core.ask(":OUTP?") == "0"
    assert [float(v) for v in core.ask(":BIAS:VOLT? (@1:16)").split(",")] == [0.0] * N
    assert core.ask(":HEAT:TABL:COUN?") == "0"
    assert core.ask(":INP:DATA:COUN?") == "0"
    assert core.ask(":FETC:DATA:COUN?") == "0"


# -- physics --------------------------------------------------------------------------------------------


def test_lasers_off_the_adc_reads_the_dark_level(core):
    pd = core.config["components"]["pd1_1"]
    gain = pd.get("transimpedance_ohm", pd.get("load_ohm"))
    dark_v = pd["dark_current_a"] * gain
    core.write_ok(":OUTP ON;:ADC:RANG MIN;:ADC:OFFS 0")
    rng = np.random.default_rng(0)
    codes = rng.integers(-20000, 20000, (2, 4096, N)).astype(np.int16)  # inputs play, no light to modulate
    volts = core.volts(core.run(tiles(2, 0.0), codes))
    mean, spread = volts.mean(), volts.std()
    assert abs(mean - dark_v) < 5 * spread / math.sqrt(volts.size) + 0.05 * dark_v
    assert spread < 0.002  # receiver + ADC noise of a dark photodiode: far below a lit channel (mV)
    # and a lit one reads far above it: laser 3 on, ring 3 of bank 1 on resonance
    core.laser(2)
    core.write_ok(f":ADC:RANG 0.5;:ADC:OFFS 0.2;:BIAS:VOLT {-core.mzm(2)['phase_offset_v']},(@3)")
    lit = tiles(1, 0.0)
    lit[0, 0, 2] = core.resonance_volts(0, 2)
    reading = core.volts(core.run(lit, zero_codes(1, 256)))[0, :, 0].mean()
    assert reading - dark_v > 100 * spread


def test_reading_follows_the_rings_lorentzian_drop_with_its_heater(core):
    q, k = 0, 2  # ring 3 of bank 1, input 3 (channel 3's carrier)
    core.laser(k)
    # modulator at full transmission with the DAC at 0: theta = 0
    core.write_ok(f":OUTP ON;:BIAS:VOLT {-core.mzm(k)['phase_offset_v']},(@{k + 1})")
    bank = core.bank(q)
    p_res = core.resonance_volts(q, k) ** 2
    heater_p = np.linspace(0.0, 2.0 * p_res, 41)  # V^2, across the resonance
    table = tiles(heater_p.size, 0.0)
    table[:, q, k] = np.sqrt(heater_p)
    # the ADC range from the bench's power budget: laser - MZM IL - mux - fibres - splitter, x responsivity
    # x receiver gain, with a wide margin (the test is on the shape, not the scale)
    parts = core.config["components"]
    pd = parts[f"pd1_{q + 1}"]
    gain = pd.get("transimpedance_ohm", pd.get("load_ohm"))
    loss_db = (core.mzm(k)["insertion_loss_db"] + parts["mux1"]["insertion_loss_db"]
               + sum(parts[f]["length_km"] * parts[f]["attenuation_db_per_km"]
                     for f in ("edge_fibre1", "metro_fibre1", "dcf1"))
               + 10 * math.log10(parts["splitter1"]["ports"]) + parts["splitter1"]["excess_loss_db"])
    full_v = 10 ** ((core.config["opu"]["laser_power_dbm"] - loss_db) / 10) * 1e-3 * pd["responsivity_a_per_w"] * gain
    core.write_ok(f":ADC:RANG {min(2.0, 3 * full_v):.6g};:ADC:OFFS {min(2.0, 3 * full_v) / 2 - 0.01 * full_v:.6g}")
    volts = core.volts(core.run(table, zero_codes(heater_p.size, 64)))[:, :, q].mean(axis=1)
    dark_v = pd["dark_current_a"] * gain
    signal = volts - dark_v
    powers = np.zeros((heater_p.size, bank.n_rings))
    powers[:, k] = heater_p / bank.heater_resistance_ohm
    drop = bank.drop(core.wavelength(k), powers)[:, 0]  # the whole bank's drop bus at channel k
    scale = float(np.dot(signal, drop) / np.dot(drop, drop))
    assert scale > 0
    assert np.max(np.abs(signal - scale * drop)) < 0.03 * scale * drop.max()
    assert abs(int(np.argmax(signal)) - int(np.argmax(drop))) <= 1
    assert signal.max() > 10 * signal.min()  # a real resonance: on-resonance >> cold ring


def test_program_advances_the_clock_by_tiles_times_settle_plus_slots(core):
    core.write_ok(":OUTP ON;:SYMB:RATE 1GHZ;:TILE:SETT 20US")
    t, s = 3, 200
    start = core.world.time
    core.run(tiles(t, 0.5), zero_codes(t, s))
    assert core.world.time - start == pytest.approx(t * (20e-6 + s / 1e9), rel=1e-9)
    core.write_ok(":SYMB:RATE 250MHZ;:TILE:SETT 100US")
    start = core.world.time
    core.run(tiles(2, 0.5), zero_codes(2, 1000))
    assert core.world.time - start == pytest.approx(2 * (100e-6 + 1000 / 250e6), rel=1e-9)


def _delay_setup(core: Core, inputs: list[int], rate: float = 1e9) -> np.ndarray:
    """Lasers of ``inputs`` on, their modulators at quadrature, their rings of every bank on resonance."""
    table = tiles(1, 0.0)
    for k in inputs:
        core.laser(k)
        core.write_ok(f":BIAS:VOLT {core.quadrature_bias(k):.6f},(@{k + 1})")
        for q in range(N):
            table[0, q, k] = core.resonance_volts(q, k)
    core.write_ok(f":OUTP ON;:SYMB:RATE {rate:g};:ADC:RANG 1;:ADC:OFFS 0.45")
    return table


@pytest.mark.parametrize("early_slots", [0, 5, -3])
def test_input_advance_off_by_whole_slots_shifts_the_outputs(core, early_slots):
    k, rate = 4, 1e9
    table = _delay_setup(core, [k], rate)
    delay = core.path_delay(k)
    bits = np.random.default_rng(3).integers(0, 2, 128) * 2 - 1
    codes = zero_codes(1, 512)
    codes[0, 100:228, k] = bits * 16000
    core.write_ok(f":INP:ADV {delay - early_slots / rate:.12g}")  # launched early_slots too late
    out = core.run(table, codes)[0].astype(float).sum(axis=1)
    assert pattern_lag(out, bits, 100) == early_slots


def test_without_advance_the_outputs_lag_by_the_fibre_delay(core):
    k, rate = 9, 1e9
    table = _delay_setup(core, [k], rate)
    lag = round(core.path_delay(k) * rate)  # ~68.8 us of fibre: ~68772 slots
    bits = np.random.default_rng(4).integers(0, 2, 128) * 2 - 1
    codes = zero_codes(1, lag + 512)
    codes[0, 100:228, k] = bits * 16000
    out = core.run(table, codes)[0].astype(float).sum(axis=1)
    assert pattern_lag(out, bits, 100 + lag) == 0


def test_each_input_gets_its_own_chromatic_walk_off_even_if_the_first_run_was_dark(config):
    """Without the dispersion-compensating fibre's dispersion, carriers walk off by D L (lambda - lambda_ref);
    regression: the controller must not keep the delays it found while the lasers were still off."""
    config["components"]["dcf1"]["dispersion_ps_nm_km"] = 0.0
    core = Core(config)
    core.write_ok(":OUTP ON")
    core.run(tiles(1, 0.0), zero_codes(1, 16))  # dark first (as a calibration starts)
    first, last = 0, N - 1
    table = _delay_setup(core, [first, last])
    walk = (core.path_delay(last) - core.path_delay(first)) * 1e9
    assert abs(walk) > 3.5  # ~4.7 ns between channels 1 and 16 over 12 km of uncompensated fibre
    rng = np.random.default_rng(5)
    bits = {k: rng.integers(0, 2, 256) * 2 - 1 for k in (first, last)}
    codes = zero_codes(1, 768)
    for k in (first, last):
        codes[0, 100:356, k] = bits[k] * 16000
    core.write_ok(f":INP:ADV {core.path_delay(first):.12g}")
    out = core.run(table, codes)[0].astype(float).sum(axis=1)
    assert pattern_lag(out, bits[first], 100) == 0
    assert pattern_lag(out, bits[last], 100) == round(walk)


def _noisy_run(config: dict, seed: int) -> np.ndarray:
    core = Core(config, seed=seed)
    table = _delay_setup(core, [0, 1, 2, 3])
    codes = np.random.default_rng(9).integers(-16000, 16000, (2, 256, N)).astype(np.int16)
    return core.run(np.concatenate([table, table * 0.98]), codes)


def test_results_are_reproducible_for_a_seed_and_differ_for_another(config):
    a, b, c = _noisy_run(config, 11), _noisy_run(config, 11), _noisy_run(config, 12)
    np.testing.assert_array_equal(a, b)
    differ = np.mean(a != c)
    assert differ > 0.5  # noise in (nearly) every reading
    # ...but only noise: the same signal
    assert np.abs(a.astype(float).mean() - c.astype(float).mean()) < 0.01 * np.abs(a.astype(float)).mean()
