"""Fuzzing the calibration-file loader: whatever the bytes, only CalibrationError subclasses come out.

Random bytes, random JSON, and mutations of valid files (truncation, inserted bytes, NaN/Infinity
literals, numbers beyond a double, duplicate keys, wrong types re-signed with a valid checksum) go
through :func:`labctl.opu.calibration_file.load` and the two engines' section readers
(``StationaryCalibration.from_section``, ``OPUCalibration.from_file``). Counter-examples found while
writing the fuzzers are kept below as explicit regression tests. ``FUZZ_N=3000`` in the environment runs
each property on more examples than the default 120 (a longer hunt, not for CI).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.config import load_bench
from labctl.opu import calibration_file as cf
from labctl.opu.calibration_file import CalibrationCorrupt, CalibrationError
from labctl.opu.streaming import OPUCalibration, OPUConfig
from labctl.opu.stationary import StationaryCalibration
from sim_backends.bench import CHARACTERISATION_BENCH_PATH

STREAMING_BENCH = CHARACTERISATION_BENCH_PATH.parent / "opu_core.yaml"

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_N", 120)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FP = cf.bench_fingerprint([("labctl.OCC16", "TCPIP0::occ1.labsim::hislip0::INSTR")])
K, Q, L = 3, 2, 5


def stationary_section() -> dict:
    rng = np.random.default_rng(0)
    cal = StationaryCalibration(
        biases_v=rng.uniform(-3, 3, K), input_advance_s=6.9e-5, adc_range_v=0.5, adc_offset_v=0.25,
        dark_v=rng.uniform(0, 1e-3, Q), code_table=np.sort(rng.integers(-32767, 32767, (K, L))).astype(float),
        u_table=np.tile(np.linspace(0, 1, L), (K, 1)), ring_peak_v=rng.uniform(0.02, 0.03, (Q, K)),
        ring_center_p=rng.uniform(0.5, 2, (Q, K)), ring_half_width_p=rng.uniform(0.01, 0.02, (Q, K)),
        thermal_crosstalk=np.full(Q, 0.05), g_lo_v=np.full(Q, 0.002), g_span_v=np.full(Q, 0.02), eps=0.003,
        decoder_gain=np.ones(Q), decoder_offset=np.zeros(Q), slot_sigma_v=np.full(Q, 1e-4),
        drift_reference_rms=0.05, steps=["dark", "delay", "bias", "rings", "decoder"])
    return cal.to_section()


def streaming_config() -> OPUConfig:
    return OPUConfig.from_bench(load_bench(STREAMING_BENCH))


def streaming_sections(config: OPUConfig) -> dict:
    cal = OPUCalibration.nominal(config)
    cal.delays_s = {key: 1e-6 for key in cal.modulators}
    cal.sampling_phase_s = 0.0
    cal.sections = {"bias", "drive", "timing", "lanes", "decoder"}
    return cal.to_sections(config)


OPERATING_POINT = {"lasers.laser1_1.1.power_dbm": 13.0, "components.metro_fibre1.length_km": 10.0,
                   "controller.occ1.bias_v": [0.5, -1.25, 2.0], "bench.mode": "sim", "lasers.laser1_1.1.output": True}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def valid_text(work) -> str:
    path = cf.save(work / "valid.json", {"core:occ1": stationary_section()}, bench_name="fuzz-bench",
                   bench_fingerprint=FP, operating_point=OPERATING_POINT)
    return path.read_text()


@pytest.fixture(scope="module")
def config() -> OPUConfig:
    return streaming_config()


def load_bytes(work: Path, data: bytes):
    """load() on these bytes; returns the CalibrationFile or the CalibrationError (anything else fails)."""
    path = work / "case.json"
    path.write_bytes(data)
    try:
        return cf.load(path, FP)
    except CalibrationError as exc:
        return exc


def signed(document: dict) -> bytes:
    document = dict(document)
    document["checksum"] = cf._checksum(document)
    return json.dumps(document).encode()


def use_everything(cal, config: OPUConfig | None = None):
    """What the engines do with a loaded file: read the sections; only CalibrationError may come out."""
    if isinstance(cal, CalibrationError):
        return cal
    try:
        for name, section in cal.sections.items():
            if name.startswith("core:"):
                StationaryCalibration.from_section(section, cal.path)
        if config is not None and "opu" in cal.sections:
            OPUCalibration.from_file(cal, config)
    except CalibrationError as exc:
        return exc
    return cal


#: keys the format gives a meaning to, mixed into random ones
KEYS = st.sampled_from(["__ndarray__", "dtype", "shape", "steps", "L1", "delays_s"]) | st.text(max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["<f8", "i1", "O", "<U3", "2025-01-01T00:00:00+00:00"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12)


# -- properties -----------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(work, data):
    assert isinstance(load_bytes(work, data), CalibrationError)


@FUZZ
@given(JSON)
def test_random_json(work, value):
    assert isinstance(load_bytes(work, json.dumps(value).encode()), CalibrationError)


@FUZZ
@given(cut=st.integers(min_value=0), junk=st.binary(min_size=1, max_size=16), insert=st.booleans())
def test_truncated_or_spliced_valid_files(work, valid_text, cut, junk, insert):
    data = valid_text.encode()
    at = cut % len(data)
    mutated = data[:at] + junk + data[at:] if insert else data[:at]
    result = use_everything(load_bytes(work, mutated))
    assert isinstance(result, (CalibrationError, cf.CalibrationFile))


@FUZZ
@given(st.data())
def test_numbers_replaced_by_nan_infinity_and_huge_literals(work, valid_text, data):
    literal = data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "9" * 5000, "1" + "0" * 400]))
    numbers = [i for i, ch in enumerate(valid_text) if ch.isdigit() and valid_text[i - 1] in " [:-,"]
    at = data.draw(st.sampled_from(numbers))
    end = at
    while end < len(valid_text) and valid_text[end] in "0123456789.eE+-":
        end += 1
    result = load_bytes(work, (valid_text[:at] + literal + valid_text[end:]).encode())
    assert isinstance(result, CalibrationError)  # corrupt; or, for the format version, an unknown version


@FUZZ
@given(st.data())
def test_wrong_types_anywhere_in_a_signed_file(work, valid_text, config, data):
    """A value anywhere in the document (metadata, operating point, sections, stored arrays) replaced by
    random JSON and the checksum recomputed, as an editor that knows the format would."""
    document = json.loads(valid_text)
    document.pop("checksum")
    sections = streaming_sections(config)
    document["sections"].update(json.loads(json.dumps({k: cf._encode(v, k) for k, v in sections.items()})))
    paths = []

    def walk(node, trail):
        paths.append(trail)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, trail + [key])
        elif isinstance(node, list) and len(node) <= 6:
            for index, child in enumerate(node):
                walk(child, trail + [index])

    walk(document, [])
    depth = data.draw(st.integers(1, max(len(trail) for trail in paths)))  # shallow nodes as likely as deep ones
    trail = data.draw(st.sampled_from([trail for trail in paths if len(trail) == depth]))
    replacement = data.draw(JSON)
    node = document
    for step in trail[:-1]:
        node = node[step]
    if isinstance(node[trail[-1]], dict) and data.draw(st.booleans()):
        node[trail[-1]][data.draw(KEYS)] = replacement       # a key added
    else:
        node[trail[-1]] = replacement                       # a value replaced
    if trail[:1] == ["operating_point"]:  # keep the hash consistent where the point is still a mapping
        try:
            document["operating_point_hash"] = cf.operating_point_hash(document["operating_point"])
        except (TypeError, ValueError):
            document["operating_point_hash"] = "sha256:not-a-mapping"
    result = use_everything(load_bytes(work, signed(document)), config)
    assert isinstance(result, (CalibrationError, cf.CalibrationFile))


@FUZZ
@given(st.sampled_from(["format", "bench", "created", "sections", "operating_point", "core:occ1", "biases_v"]))
def test_duplicate_keys_are_refused(work, valid_text, key):
    text = valid_text.replace(f'"{key}":', f'"{key}": 0, "{key}":', 1)
    result = load_bytes(work, text.encode())
    assert isinstance(result, CalibrationCorrupt) and "duplicate key" in str(result)


# -- explicit cases and regressions ---------------------------------------------------------------------------


def test_the_valid_file_loads_and_its_sections_are_usable(work, valid_text, config):
    cal = load_bytes(work, valid_text.encode())
    assert isinstance(cal, cf.CalibrationFile) and cal.operating_point == OPERATING_POINT
    core = StationaryCalibration.from_section(cal.section("core:occ1"))
    assert core.code_table.shape == (K, L) and core.ring_peak_v.shape == (Q, K)
    document = json.loads(valid_text)
    document.pop("checksum")
    document["sections"].update(json.loads(json.dumps(
        {k: cf._encode(v, k) for k, v in streaming_sections(config).items()})))
    assert isinstance(OPUCalibration.from_file(load_bytes(work, signed(document)), config), OPUCalibration)


def test_an_oversized_file_is_refused_before_it_is_read(work):
    path = work / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(cf.MAX_FILE_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(CalibrationCorrupt, match="larger than a calibration file may be"):
        cf.load(path, FP)
    os.unlink(path)


@pytest.mark.parametrize("data,match", [
    (b"\x00\x01{", "binary data"),
    (b'{"format": "labctl-calibration"\x00}', "binary data"),
    (b"\xff\xfe{}", "binary data"),
    (b"[" * 100_000 + b"]" * 100_000, "not a valid calibration JSON"),       # RecursionError in json
    (b'{"format_version": ' + b"9" * 5000 + b"}", "not a valid calibration JSON"),  # int digit limit
    (b'{"x": 1e999}', "overflows a double"),
    (b'{"x": NaN}', "NaN is not a number"),
    (b'{"x": 1, "x": 2}', "duplicate key"),
])
def test_regression_literals(work, data, match):
    result = load_bytes(work, data)
    assert isinstance(result, CalibrationCorrupt) and match in str(result)


def test_regression_format_version_true_float_or_huge_is_not_version_2(work, valid_text):
    for version in (True, 2.0, 10**400):
        document = json.loads(valid_text)
        document["format_version"] = version
        result = load_bytes(work, signed(document))
        assert isinstance(result, cf.CalibrationVersionError) and len(str(result)) < 400


@pytest.mark.parametrize("key,value,match", [
    ("operating_point", {"__ndarray__": 1.0}, "cannot be read"),            # reserved key: ValueError in _encode
    ("created", "0001-01-01T00:00:00+14:00", "ISO 8601"),                   # OverflowError once made UTC
    ("verified", "9999-12-31T23:00:00-14:00", "ISO 8601"),
    ("verified", 5, "'verified' is not a string"),
    ("created", "yesterday", "ISO 8601"),
])
def test_regression_metadata(work, valid_text, key, value, match):
    document = json.loads(valid_text)
    document[key] = value
    if key == "operating_point":
        document["operating_point_hash"] = "sha256:0"
    result = load_bytes(work, signed(document))
    assert isinstance(result, CalibrationCorrupt) and match in str(result)


@pytest.mark.parametrize("array", [
    {"__ndarray__": [1, 2], "dtype": "O", "shape": [2]},                 # object arrays
    {"__ndarray__": ["a"], "dtype": "<U1", "shape": [1]},                # strings
    {"__ndarray__": [1, 2], "dtype": "f8", "shape": [3]},                # shape does not fit
    {"__ndarray__": [1000], "dtype": "i1", "shape": [1]},                # overflows int8
    {"__ndarray__": [[1, 2]], "dtype": "f8", "shape": [2]},              # not flat
    {"__ndarray__": [1.0], "dtype": {"a": 1}, "shape": [1]},             # dtype not a string
    {"__ndarray__": [1.0], "dtype": "f8", "shape": "1"},                 # shape not a list
    {"__ndarray__": [1.0], "dtype": "(2,)f8", "shape": [1]},             # sub-array dtype
    {"__ndarray__": [1.0], "shape": [1]},                                # no dtype
])
def test_regression_malformed_stored_arrays(work, valid_text, array):
    document = json.loads(valid_text)
    document["sections"]["core:occ1"]["biases_v"] = array
    result = load_bytes(work, signed(document))
    assert isinstance(result, CalibrationCorrupt) and "malformed" in str(result)


@pytest.mark.parametrize("field,value,match", [
    ("biases_v", [1.0, 2.0], "shape"),                       # K = 2 here, 3 in the tables
    ("ring_peak_v", [[1.0]], "shape"),
    ("eps", "0.1", "must be a number"),
    ("eps", True, "must be a number"),
    ("steps", "decoder", "list of step names"),
    ("g_span_v", [0.0, 0.02], "positive"),
    ("thermal_crosstalk", [1.0, 0.05], r"\[0, 1\)"),                 # singular crosstalk matrix in matmul
    ("dark_v", {"a": 1}, "numeric array"),
    ("surprise", 1.0, "unknown fields"),
])
def test_regression_core_sections_with_wrong_content(valid_text, field, value, match):
    section = stationary_section()
    section[field] = value
    with pytest.raises(CalibrationCorrupt, match=match):
        StationaryCalibration.from_section(section)
    section = stationary_section()
    del section["g_lo_v"]
    with pytest.raises(CalibrationCorrupt, match="missing fields"):
        StationaryCalibration.from_section(section)


def test_regression_streaming_sections_with_wrong_container_types(work, valid_text, config):
    for section, key, value in (("timing", "delays_s", [1.0]), ("bias", None, [1, 2]), ("lanes", "L1", "x"),
                                ("drive", None, {"L1.x1": 3})):
        document = json.loads(valid_text)
        sections = json.loads(json.dumps({k: cf._encode(v, k) for k, v in streaming_sections(config).items()}))
        if key is None:
            sections[section] = value if isinstance(value, dict) else {"k": value}
        else:
            sections[section][key] = value
        document["sections"].update(sections)
        cal = load_bytes(work, signed(document))
        assert isinstance(cal, cf.CalibrationFile)
        with pytest.raises(CalibrationCorrupt):
            OPUCalibration.from_file(cal, config)
