"""The control plane's messages: a versioned JSON header, validated, plus raw array frames (never pickle).

A message is a ZeroMQ multipart message ``[header, *arrays]``. The header is a JSON object with the
protocol version ``v`` and a ``kind``; each array it announces (an :class:`ArraySpec`: dtype, shape, byte
length) follows as one frame of raw little-endian bytes, in the order the header lists them. Decoding
checks everything before anything is used: header size, JSON, version, schema (unknown fields refused),
frame count, byte lengths against dtype x shape, size limits, finite values. docs/network.md describes
the protocol.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from labctl.network.errors import ProtocolError
from labctl.strict import StrictModel

__all__ = ["DTYPES", "ERROR_CODES", "MAX_ARRAY_BYTES", "MAX_DIMS", "MAX_HEADER_BYTES", "PROTOCOL_VERSION", "Admit",
           "ArraySpec", "Bye", "CoreInfo", "EnergyTerm", "Error", "Header", "Heartbeat", "Hello", "Job", "JobEnergy",
           "ProjectionFigure", "Result", "decode", "encode"]
__all__ += ["Drive", "Light", "MAX_ASE_CARRIERS", "job_of"]

#: Version of this protocol; a header with another ``v`` is refused with the ``version`` error code.
PROTOCOL_VERSION = 1
#: Largest JSON header accepted (bytes).
MAX_HEADER_BYTES = 16 * 1024
#: Default largest array frame (bytes): 8 M float64 values; the center announces its own limit on admission.
MAX_ARRAY_BYTES = 64 * 1024 * 1024
#: Most dimensions of an array (``np.matmul`` batches plus the two matrix axes).
MAX_DIMS = 4
#: Most spectral slices of ASE a ``light`` message carries (an EDFA part emits at most 4096; a link may
#: hold several amplifiers).
MAX_ASE_CARRIERS = 65536
#: Array element types on the wire (little-endian IEEE 754).
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}

#: Error codes of ``error`` replies, and what each means.
ERROR_CODES = {
    "malformed": "not a message of this protocol (no header, header not a JSON object, or too many frames)",
    "version": "the header's protocol version is not one the receiver speaks",
    "schema": "the header does not match its kind's schema (unknown kind, missing or unknown field, bad value)",
    "too_large": "a header or array exceeds the size limits",
    "array": "the array frames do not match the header (count, dtype x shape vs byte length)",
    "not_finite": "an array holds NaN or infinity",
    "not_admitted": "the edge sent a job or heartbeat without being admitted (or its admission expired)",
    "too_many_cores": "the edge asked for more cores than the center has",
    "no_such_core": "the edge asked for a core by name (its own transmitter's) that this center does not serve",
    "no_free_cores": "every core the edge could have is allocated to other edges",
    "queue_full": "the edge already has the most jobs the center queues per edge",
    "job_failed": "the engine refused or failed the product (the message says why)",
    "no_data_plane": "the job asks to bring its own light, and this center's cores cannot take it (real "
                     "instruments, where light crosses the fibre, or a core that is not a simulated OCC)",
    "light": "the edge's light does not fit the drive it answers (shape, negative power; ASE of negative or "
             "implausible power or outside the optical band), or the edge could not launch it; the job fails",
    "not_waiting": "a light message for a job and program the center is not waiting on",
    "internal": "the center failed unexpectedly; the job was not done",
}

_JOB_ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
_LABEL = Annotated[str, Field(max_length=64, pattern=r"^[\x20-\x7e]*$")]


class _Message(StrictModel):
    v: Literal[1] = PROTOCOL_VERSION

    def arrays(self) -> list[ArraySpec]:
        """The array frames this header announces, in order."""
        return []


class ArraySpec(StrictModel):
    """One array frame: element type, shape and byte length (checked against each other and the frame)."""

    dtype: Literal["float32", "float64"]
    shape: tuple[Annotated[int, Field(ge=0, le=2**31)], ...] = Field(min_length=1, max_length=MAX_DIMS)
    nbytes: Annotated[int, Field(ge=0)]

    @classmethod
    def of(cls, array: np.ndarray) -> ArraySpec:
        return cls(dtype=array.dtype.name, shape=array.shape, nbytes=array.nbytes)


class Hello(_Message):
    """Edge -> center: admit me, with ``cores`` optical cores."""

    kind: Literal["hello"] = "hello"
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    edge: _LABEL = ""  #: a label for the center's log (the key's fingerprint identifies the edge)
    #: the cores by name, when the edge must have those (its own transmitter fits only the core it was
    #: calibrated with); None: any free ones
    core_names: list[_LABEL] | None = Field(None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _names_match_count(self) -> "Hello":
        if self.core_names is not None and (len(self.core_names) != self.cores
                                            or len(set(self.core_names)) != len(self.core_names)):
            raise ValueError(f"core_names must name {self.cores} distinct core(s), one per core asked for")
        return self


class CoreInfo(StrictModel):
    name: _LABEL
    calibrated: bool


class Admit(_Message):
    """Center -> edge: admitted; these cores are yours until you say bye or fall silent for ``timeout_s``."""

    kind: Literal["admit"] = "admit"
    cores: list[CoreInfo] = Field(min_length=1)
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)]
    timeout_s: Annotated[float, Field(gt=0, le=3600)]
    max_array_bytes: Annotated[int, Field(ge=1)]


class Job(_Message):
    """Edge -> center: compute ``a @ b`` (``np.matmul`` semantics); frames ``a``, ``b``."""

    kind: Literal["job"] = "job"
    job: _JOB_ID
    a: ArraySpec
    b: ArraySpec
    return_error: bool = False
    scale_a: float | None = None
    scale_b: float | None = None
    #: the edge launches the inputs' light itself (data plane in simulation): the center answers each
    #: program with a ``drive`` and detects the ``light`` the edge sends back
    edge_light: bool = False

    @field_validator("scale_a", "scale_b")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError("must be a finite number > 0")
        return value

    def arrays(self) -> list[ArraySpec]:
        return [self.a, self.b]


_Stat = Union[bool, int, float, Annotated[str, Field(max_length=200)], None]


_Finite = Annotated[float, Field(allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Text = Annotated[str, Field(max_length=1000)]
_Param = Union[bool, int, _Finite, _Text, None]


class EnergyTerm(StrictModel):
    """One draw the center metered for a job: a :class:`labctl.energy.provenance.PowerTerm` of its ledger's
    bench view, with its provenance as ``labctl.energy.ledger.provenance_to_dict`` writes it, so the edge's
    ledger names the same source."""

    device: Annotated[str, Field(min_length=1, max_length=200)]
    power_w: _NonNegative
    start_s: _Finite
    end_s: _Finite
    provenance: dict[Annotated[str, Field(max_length=64)],
                     Union[_Param, dict[Annotated[str, Field(max_length=64)], _Param]]] = Field(max_length=16)
    note: _Text = ""


class ProjectionFigure(StrictModel):
    """The center's projection of its cores onto integrated optoelectronics (``bench_projection``), at peak:
    total power, peak op rate and each term's power (W)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    power_w: _NonNegative
    peak_ops_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    terms: dict[Annotated[str, Field(max_length=64)], _NonNegative] = Field(max_length=16)


class JobEnergy(StrictModel):
    """What a job cost at the center. ``bench_j``: what the instruments of the job's core drew over the job's
    window ``[start_s, end_s]`` of the center's bench clock (``terms``, their sum; ``attribution`` says which
    instruments and from what); ``projected_j``: the job's ops (2 x ``optical_macs``) at the projection's
    energy per op at peak. None, with the reason in ``notes``, where the center cannot say."""

    bench_j: _NonNegative | None = None
    start_s: _Finite | None = None
    end_s: _Finite | None = None
    attribution: _Text = ""
    terms: list[EnergyTerm] = Field(default_factory=list, max_length=32)
    projected_j: _NonNegative | None = None
    projection: ProjectionFigure | None = None
    notes: list[_Text] = Field(default_factory=list, max_length=16)


class Result(_Message):
    """Center -> edge: the product of job ``job`` (frame ``product``, then ``error`` if asked for), the
    engine's statistics (``labctl.opu.interface.STATS_KEYS`` and more) and, from a center that meters its
    cores, the job's ``energy``."""

    kind: Literal["result"] = "result"
    job: _JOB_ID
    product: ArraySpec
    error: ArraySpec | None = None
    stats: dict[Annotated[str, Field(max_length=64)], _Stat] = Field(max_length=64)
    energy: JobEnergy | None = None

    def arrays(self) -> list[ArraySpec]:
        return [self.product] + ([self.error] if self.error is not None else [])


class Drive(_Message):
    """Center -> edge (data plane in simulation): launch program ``program`` of job ``job``; frame ``codes``
    (tiles, slots, inputs): the DAC codes (whole numbers in float32) the center's controller would send to
    its input DACs, with the settings the edge's transmitter needs (``sim_backends`` ``Drive``)."""

    kind: Literal["drive"] = "drive"
    job: _JOB_ID
    program: Annotated[int, Field(ge=0)]
    codes: ArraySpec
    symbol_rate_hz: Annotated[float, Field(gt=0, le=1e12)]
    dac_amplitude_v: Annotated[float, Field(gt=0, le=100)]
    gap_slots: Annotated[int, Field(ge=0, le=2**31)]
    bias_v: list[Annotated[float, Field(ge=-100, le=100)]] = Field(min_length=1, max_length=1024)
    rin_band_hz: Annotated[float, Field(ge=0, le=1e13)]
    dac_noise_referral: Annotated[float, Field(ge=0, le=1e3)]

    @field_validator("codes")
    @classmethod
    def _codes(cls, spec: ArraySpec) -> ArraySpec:
        if spec.dtype != "float32" or len(spec.shape) != 3:
            raise ValueError("codes are float32 of shape (tiles, slots, inputs)")
        return spec

    def arrays(self) -> list[ArraySpec]:
        return [self.codes]


class Light(_Message):
    """Edge -> center (data plane in simulation): the light answering drive ``program`` of job ``job``;
    frames ``light`` (tiles, slots, inputs) and ``idle`` (inputs,): float32 W per input at the center's input
    port, per slot and in the idle gaps; and, if the edge's link delivers light on no input's wavelength (an
    amplifier's ASE), ``ase`` (carriers, 2): float64 wavelength m and power W (both polarisations) of each
    spectral slice of it at the port. The center checks the values (``light`` error reply)."""

    kind: Literal["light"] = "light"
    job: _JOB_ID
    program: Annotated[int, Field(ge=0)]
    light: ArraySpec
    idle: ArraySpec
    ase: ArraySpec | None = None

    @field_validator("light", "idle")
    @classmethod
    def _float32(cls, spec: ArraySpec) -> ArraySpec:
        if spec.dtype != "float32":
            raise ValueError("light is float32 W")
        return spec

    @field_validator("ase")
    @classmethod
    def _carriers(cls, spec: ArraySpec | None) -> ArraySpec | None:
        if spec is not None and (spec.dtype != "float64" or len(spec.shape) != 2 or spec.shape[1] != 2
                                 or not 1 <= spec.shape[0] <= MAX_ASE_CARRIERS):
            raise ValueError(f"ase is float64 (carriers, 2), 1 to {MAX_ASE_CARRIERS} carriers of wavelength m "
                             "and power W")
        return spec

    def arrays(self) -> list[ArraySpec]:
        return [self.light, self.idle] + ([self.ase] if self.ase is not None else [])


class Error(_Message):
    """Either way: a message or job was refused; ``code`` is one of :data:`ERROR_CODES`."""

    kind: Literal["error"] = "error"
    code: Literal[tuple(ERROR_CODES)]  # type: ignore[valid-type]
    message: Annotated[str, Field(max_length=1000)]
    job: _JOB_ID | None = None


class Heartbeat(_Message):
    """Either way: I am alive (the center answers each with one)."""

    kind: Literal["heartbeat"] = "heartbeat"


class Bye(_Message):
    """Edge -> center: I am leaving; free my cores and drop my queued jobs."""

    kind: Literal["bye"] = "bye"


Header = Annotated[Union[Hello, Admit, Job, Result, Drive, Light, Error, Heartbeat, Bye], Field(discriminator="kind")]
_HEADER = TypeAdapter(Header)


def encode(header: _Message, arrays: list[np.ndarray] = ()) -> list[bytes]:
    """The frames of a message: its header as JSON, then each array's raw bytes (announced by the header)."""
    specs = header.arrays()
    if len(specs) != len(arrays):
        raise ProtocolError("array", f"{header.kind} announces {len(specs)} array(s), {len(arrays)} given")
    frames = [header.model_dump_json(exclude_none=True).encode()]
    for spec, array in zip(specs, arrays):
        data = np.ascontiguousarray(array, dtype=DTYPES[spec.dtype])
        if data.shape != tuple(spec.shape) or data.nbytes != spec.nbytes:
            raise ProtocolError("array", f"array of shape {data.shape} does not match its spec {spec}")
        frames.append(data.tobytes())
    return frames


def _schema_problem(exc: ValidationError) -> str:
    """Where and what, without echoing the offending input (a header may carry an edge's data)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "header"
    return f"{where}: {first['msg']}" + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")


def _decode_header(frame: bytes) -> Any:
    """The validated header of a message's first frame."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"header of {len(frame)} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        raw = json.loads(bytes(frame))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("malformed", "the first frame is not a JSON header") from None
    if not isinstance(raw, dict):
        raise ProtocolError("malformed", "the header is not a JSON object")
    if raw.get("v") != PROTOCOL_VERSION:
        raise ProtocolError("version", f"protocol version {raw.get('v')!r} is not supported; this side speaks "
                                       f"v={PROTOCOL_VERSION}")
    try:
        return _HEADER.validate_python(raw)
    except ValidationError as exc:
        raise ProtocolError("schema", _schema_problem(exc)) from None


def job_of(frame: bytes) -> tuple[str | None, str | None]:
    """``(kind, job)`` a message's first frame names, read from its JSON without the schema (None where it
    names none): which job a refused message concerned."""
    try:
        raw = json.loads(bytes(frame)) if len(frame) <= MAX_HEADER_BYTES else None
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(raw, dict):
        return None, None
    kind, job = raw.get("kind"), raw.get("job")
    return (kind if isinstance(kind, str) else None,
            job if isinstance(job, str) and re.fullmatch(r"[A-Za-z0-9_.:-]{1,80}", job) else None)


def decode(frames: list[bytes], *, max_array_bytes: int = MAX_ARRAY_BYTES) -> tuple[Any, list[np.ndarray]]:
    """``(header, arrays)`` of a message's frames, every check done (:class:`ProtocolError` with the reply's
    error code otherwise). Arrays are read-only views of the frames: nothing is copied."""
    if not frames:
        raise ProtocolError("malformed", "empty message")
    header = _decode_header(frames[0])
    specs = header.arrays()
    if len(frames) - 1 != len(specs):
        raise ProtocolError("array", f"{header.kind} announces {len(specs)} array frame(s), {len(frames) - 1} sent")
    arrays = []
    for name, spec, frame in zip(("first", "second", "third"), specs, frames[1:]):
        dtype = DTYPES[spec.dtype]
        count = math.prod(spec.shape)
        if spec.nbytes > max_array_bytes or count * dtype.itemsize > max_array_bytes:
            raise ProtocolError("too_large", f"the {name} array has {max(spec.nbytes, count * dtype.itemsize)} "
                                             f"bytes; the limit is {max_array_bytes}")
        if spec.nbytes != count * dtype.itemsize or len(frame) != spec.nbytes:
            raise ProtocolError("array", f"the {name} array: shape {tuple(spec.shape)} of {spec.dtype} is "
                                         f"{count * dtype.itemsize} bytes, the header says {spec.nbytes}, the "
                                         f"frame has {len(frame)}")
        array = np.frombuffer(frame, dtype=dtype).reshape(spec.shape)
        if not np.isfinite(array).all():
            raise ProtocolError("not_finite", f"the {name} array holds NaN or infinite values")
        arrays.append(array)
    return header, arrays
