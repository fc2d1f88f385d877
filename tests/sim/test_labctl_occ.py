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
    """One core of a built bench (default: the first of the file's ``opu.cores``), driven through SCPI: the
    controller and its four lasers. ``sim`` reuses a bench already built (several cores of one bench)."""

    def __init__(self, config: dict, seed: int = 1, index: int = 0, sim=None):
        self.config = config
        self.sim = build_bench(config, seed=seed) if sim is None else sim
        self.world = self.sim.world
        self.occ = self.sim.by_name[config["opu"]["cores"][index]["controller"]]
        self.channels = config["opu"]["cores"][index]["channels"]

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


# -- reproducible per core, whatever the other cores do ------------------------------------------------------


def two_core_config(config: dict) -> dict:
    """Cores 1 and 2 of the bench file in one bench."""
    one, two = core_config(config, 1), core_config(config, 2)
    merged = {"name": one["name"], "connections": one["connections"] + two["connections"]}
    for part in ("instruments", "components"):
        merged[part] = {**one[part], **two[part]}
    merged["opu"] = {**one["opu"], "cores": one["opu"]["cores"] + two["opu"]["cores"]}
    return merged


def _lit_program(core: Core, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lasers 1-4 on at quadrature, their rings of bank 1 half-way up the resonance; random input codes."""
    table = tiles(2, 0.0)
    for k in range(4):
        core.laser(k)
        m = core.config["components"][f"mzm{core.occ.name[-1]}_{k + 1}"]
        core.write_ok(f":BIAS:VOLT {-m['phase_offset_v'] - m['v_pi'] / 2:.6f},(@{k + 1})")
        table[:, 0, k] = 0.8
    core.write_ok(":OUTP ON;:ADC:RANG 0.5;:ADC:OFFS 0.2")
    codes = np.random.default_rng(seed).integers(-16000, 16000, (2, 512, N)).astype(np.int16)
    return table, codes


def test_each_core_has_its_own_noise_stream_whatever_the_order_or_threads(full_config):
    """One seed, two benches: cores run one after the other in opposite orders, or at once from two threads,
    read identical codes per core (each draws from World.rng_for(<its name>), not a shared stream)."""
    import threading

    config = two_core_config(full_config)

    def bench():
        sim = build_bench(config, seed=5)
        cores = [Core(config, index=i, sim=sim) for i in (0, 1)]
        return cores, [_lit_program(c, 20 + i) for i, c in enumerate(cores)]

    def run_twice(core, program):
        return [core.run(*program) for _ in range(2)]  # the stream (and the drift) continue between programs

    cores, programs = bench()
    forward = [run_twice(c, p) for c, p in zip(cores, programs)]
    cores, programs = bench()
    backward = [run_twice(c, p) for c, p in reversed(list(zip(cores, programs)))][::-1]
    cores, programs = bench()
    threaded = [None, None]

    def work(i):
        threaded[i] = run_twice(cores[i], programs[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i in (0, 1):
        for a, b, c in zip(forward[i], backward[i], threaded[i]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    assert np.mean(forward[0][0] != forward[0][1]) > 0.5  # the second program has fresh noise
    assert np.mean(forward[0][0][:, :, 0] != forward[1][0][:, :, 0]) > 0.5  # and the cores differ


# -- what a real controller adds: heater DAC levels, heater noise, thermal drift ------------------------------


def _quiet(config: dict, **params) -> dict:
    """``config`` with occ1's sim params updated."""
    config["instruments"]["occ1"]["sim"]["params"].update(params)
    return config


def test_heaters_get_the_nearest_dac_level(config):
    """8-bit heater DACs over 10 V (39 mV steps): table volts within one level give identical readings (the
    same seed), another level a different one; the bank's heater sees the level."""
    lsb = 10.0 / 256
    results = []
    for volts in (25.2 * lsb, 24.8 * lsb, 26.0 * lsb):
        core = Core(_quiet(copy.deepcopy(config), heater_dac_bits=8), seed=3)
        table, codes = _lit_program(core, 0)
        table[:, 0, :4] = volts
        results.append(core.run(table, codes))
        applied = core.world.voltage_into("bank1_1", "heater1", np.zeros(1))[0]
        assert applied == pytest.approx(round(volts / lsb) * lsb, abs=1e-12)
    np.testing.assert_array_equal(results[0], results[1])
    assert abs(results[2][:, :, 0].astype(float).mean() - results[0][:, :, 0].astype(float).mean()) > 100
    with pytest.raises(ValueError, match="heater_dac_bits"):
        Core(_quiet(copy.deepcopy(config), heater_dac_bits=4))


def _slope_setup(config: dict, seed: int, **params):
    """Ring 3 of bank 1 at the steepest point of its Lorentzian, laser 3 on, MZM at full transmission; many
    short tiles. Returns (core, table, codes, expected reading slope in V per W of heater power)."""
    q, k = 0, 2
    core = Core(_quiet(copy.deepcopy(config), **params), seed=seed)
    core.laser(k)
    core.write_ok(f":OUTP ON;:BIAS:VOLT {-core.mzm(k)['phase_offset_v']},(@{k + 1});:ADC:RANG 0.2;:ADC:OFFS 0.09")
    bank = core.bank(q)
    half_width_w = bank.fwhm_m[k] / 2 / bank.tuning_m_per_w
    p_res = core.resonance_volts(q, k) ** 2 / bank.heater_resistance_ohm
    p_slope = p_res - half_width_w / math.sqrt(3)  # a Lorentzian's steepest point: detuning fwhm / (2 sqrt 3)
    n_tiles = 400
    table = tiles(n_tiles, 0.0)
    table[:, q, k] = math.sqrt(p_slope * bank.heater_resistance_ohm)
    codes = zero_codes(n_tiles, 64)
    # closed form: the drop's derivative there, scaled by the reading per unit drop (fitted on two points)
    powers = np.zeros((3, bank.n_rings))
    powers[:, k] = [p_slope - 1e-7, p_slope + 1e-7, p_res]
    drop = bank.drop(core.wavelength(k), powers)[:, 0]
    on = core.volts(core.run(tiles(1, 0.0) + np.where(np.arange(N) == k, core.resonance_volts(q, k), 0.0)[None, None, :]
                              * (np.arange(N) == q)[None, :, None], zero_codes(1, 256)))[0, :, q].mean()
    dark_v = core.config["components"]["pd1_1"]["dark_current_a"] * 500.0
    volts_per_drop = (on - dark_v) / drop[2]
    return core, table, codes, volts_per_drop * (drop[1] - drop[0]) / 2e-7


def _tile_means(core: Core, table, codes) -> np.ndarray:
    return core.volts(core.run(table, codes))[:, :, 0].mean(axis=1)


def test_heater_noise_spreads_the_weights_by_the_rings_slope(config):
    """Per-tile heater noise sigma_v moves the heater power by 2 v sigma_v / R: the tile-to-tile spread of the
    reading is |dV/dP| 2 v sigma_v / R (closed form from the bank's Lorentzian), on top of the receiver's."""
    quiet, table, codes, slope = _slope_setup(config, 1, heater_noise_v=0.0, thermal_drift_k=0.0)
    base = _tile_means(quiet, table, codes).std()
    sigma_v = 2e-3
    noisy, table, codes, _ = _slope_setup(config, 1, heater_noise_v=sigma_v, thermal_drift_k=0.0)
    spread = _tile_means(noisy, table, codes).std()
    v = table[0, 0, 2]
    expected = abs(slope) * 2 * v * sigma_v / 500.0
    assert expected > 10 * base
    assert math.sqrt(spread**2 - base**2) == pytest.approx(expected, rel=0.15)  # 400 tiles: 3.5 % std error


def test_thermal_drift_wanders_the_weights_on_the_program_clock(config):
    """The chip temperature (OU, sigma_T, tau) acts like heater power dT / R_th: with tau far below a tile,
    tile means spread by |dV/dP| sigma_T / R_th; with tau far above the program, consecutive tiles agree."""
    sigma_t, r_th = 0.02, 2500.0
    fast, table, codes, slope = _slope_setup(config, 2, heater_noise_v=0.0, thermal_drift_k=sigma_t,
                                             thermal_drift_time_s=1e-7)
    spread = _tile_means(fast, table, codes).std()
    quiet, _, _, _ = _slope_setup(config, 2, heater_noise_v=0.0, thermal_drift_k=0.0)
    base = _tile_means(quiet, table, codes).std()
    expected = abs(slope) * sigma_t / r_th
    assert expected > 10 * base
    assert math.sqrt(spread**2 - base**2) == pytest.approx(expected, rel=0.15)
    slow, table, codes, _ = _slope_setup(config, 2, heater_noise_v=0.0, thermal_drift_k=sigma_t,
                                         thermal_drift_time_s=1e3)
    means = _tile_means(slow, table, codes)
    assert np.diff(means).std() < 3 * base  # ~10 ms of program against 1000 s: no visible change tile to tile


def test_unknown_or_unphysical_parameters_are_refused(config):
    for params, match in (({"heater_noise_volts": 1e-5}, "unknown"), ({"thermal_drift_k": -1.0}, "thermal_drift_k"),
                          ({"adc_enob": 15.0}, "adc_enob"), ({"inputs": 2.5}, "inputs")):
        with pytest.raises(ValueError, match=match):
            Core(_quiet(copy.deepcopy(config), **params))


def test_a_photodiode_changed_on_a_running_bench_changes_the_readings(core):
    """The detector's noise and dark level are cached by the parameters they depend on: changing the
    photodiode's dark current or its amplifier noise between two programs shows in the next one."""
    core.write_ok(":OUTP ON;:ADC:RANG MIN;:ADC:OFFS 0")
    program = (tiles(1, 0.0), zero_codes(1, 4096))
    before = core.volts(core.run(*program))[0, :, 0]
    core.world.nodes["pd1_1"].configure(dark_current_a=2e-6, input_noise_a_per_rthz=8e-12)
    after = core.volts(core.run(*program))[0, :, 0]
    assert after.mean() - before.mean() == pytest.approx((2e-6 - 5e-9) * 500.0, rel=0.02)
    assert after.std() > 1.5 * before.std()  # twice the TIA noise (the ADC's own noise adds to both)


def test_the_bench_file_is_what_its_generator_writes():
    from sim_backends.benches import make_ring_core

    assert BENCH.read_text() == make_ring_core.build()


def test_a_modulator_changed_on_a_running_bench_changes_the_readings(core):
    """3 dB more modulator insertion loss halves the light on the photodiode in the next program (the gains
    are cached by the state of every part upstream of the photodiodes, not by object identity)."""
    k, q = 2, 0
    core.laser(k)
    core.write_ok(f":OUTP ON;:ADC:RANG 0.2;:ADC:OFFS 0.09;:BIAS:VOLT {-core.mzm(k)['phase_offset_v']},(@{k + 1})")
    table = tiles(1, 0.0)
    table[0, q, k] = core.resonance_volts(q, k)
    dark_v = core.config["components"]["pd1_1"]["dark_current_a"] * 500.0
    before = core.volts(core.run(table, zero_codes(1, 4096)))[0, :, q].mean() - dark_v
    mzm = core.world.nodes[f"mzm1_{k + 1}"]
    mzm.insertion_loss_db = mzm.insertion_loss_db + 3.0
    after = core.volts(core.run(table, zero_codes(1, 4096)))[0, :, q].mean() - dark_v
    assert after / before == pytest.approx(10 ** -0.3, rel=0.01)


def test_a_fibre_changed_on_a_running_bench_moves_the_delay(core):
    """One more metre of metro fibre (4.9 ns at n_g 1.468) delays the outputs by ~5 slots at 1 GBd in the
    next program: the delays are found again when a part upstream of the photodiodes changes."""
    k, rate = 4, 1e9
    table = _delay_setup(core, [k], rate)
    bits = np.random.default_rng(6).integers(0, 2, 128) * 2 - 1
    codes = zero_codes(1, 512)
    codes[0, 100:228, k] = bits * 16000
    core.write_ok(f":INP:ADV {core.path_delay(k):.12g}")
    assert pattern_lag(core.run(table, codes)[0].astype(float).sum(axis=1), bits, 100) == 0
    fibre = core.world.nodes["metro_fibre1"]
    fibre.length_km = fibre.length_km + 1e-3
    extra = 1.0 * core.config["components"]["metro_fibre1"]["group_index"] / C_LIGHT
    assert pattern_lag(core.run(table, codes)[0].astype(float).sum(axis=1), bits, 100) == round(extra * rate)


def test_settings_changed_between_programs_reach_the_next_program(config):
    """The ADC's clipping and a modulator's bias act on the next program whatever ran before (the symbol-level
    model is reused between programs only while everything it is built from is unchanged)."""
    k, q = 2, 0
    peak = -config["components"][f"mzm1_{k + 1}"]["phase_offset_v"]  # theta = 0 at DAC code 0

    def reading(core: Core, adc: str, bias: float) -> np.ndarray:
        table = tiles(1, 0.0)
        table[0, q, k] = core.resonance_volts(q, k)
        core.write_ok(f":OUTP ON;{adc};:BIAS:VOLT {bias!r},(@{k + 1})")
        return core.volts(core.run(table, zero_codes(1, 2048)))[0, :, q]

    wide = ":ADC:RANG 0.5;:ADC:OFFS 0.2"
    probe = Core(config)  # the level to clip below, from another controller
    probe.laser(k)
    first = reading(probe, wide, peak)
    lit, sigma = float(first.mean()), float(first.std())
    offset = lit - 0.01 - 10 * sigma  # a 10 mV range whose top is 10 sigma below the reading
    core = Core(config)
    core.laser(k)
    assert np.allclose(reading(core, f":ADC:RANG 0.01;:ADC:OFFS {offset!r}", peak), offset + 0.005, atol=1e-6)
    again = reading(core, wide, peak)
    assert again.std() > 0.5 * sigma and abs(again.mean() - lit) < 5 * sigma / math.sqrt(again.size) + 1e-3 * lit
    # a bias of V_pi more: the modulator's null, where the light falls to the extinction ratio's leak
    null = reading(core, wide, peak - config["components"][f"mzm1_{k + 1}"]["v_pi"])
    dark_v = config["components"]["pd1_1"]["dark_current_a"] * 500.0
    assert null.mean() - dark_v < 0.05 * (lit - dark_v)
