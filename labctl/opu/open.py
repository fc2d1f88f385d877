"""One way to open the OPU(s) of a bench, whatever its architecture.

The bench file's ``opu:`` section says which engine it describes (``architecture: streaming``, the
default when absent, or ``weight_stationary``); :data:`OPUSection` validates it as the matching config
and :func:`open_opus` / :func:`open_opu` build the engines. Callers get :class:`OpticalMatmul` objects.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from labctl.errors import ConfigError
from labctl.opu.interface import OpticalMatmul, architecture, section_architecture
from labctl.opu.stationary.calibration import calibrate as calibrate_core
from labctl.opu.stationary.config import StationaryConfig, StationaryOPUError
from labctl.opu.stationary.engine import StationaryOPU
from labctl.opu.streaming.config import StreamingConfig
from labctl.opu.streaming.engine import StreamingOPU

__all__ = ["OPU", "OPUSection", "architecture", "open_cores", "open_opu", "open_opus", "opu_config"]

#: File name of the streaming OPU's calibration inside a calibration folder.
STREAMING_CALIBRATION_NAME = "opu_calibration.json"


#: The bench file's ``opu:`` section: the config of the engine its ``architecture`` names.
OPUSection = Annotated[
    Union[Annotated[StreamingConfig, Tag("streaming")], Annotated[StationaryConfig, Tag("weight_stationary")]],
    Discriminator(section_architecture),
]
_SECTION = TypeAdapter(OPUSection)


def opu_config(bench) -> StreamingConfig | StationaryConfig:
    """The bench's ``opu:`` section validated as its architecture's config (errors name the dotted field)."""
    path = getattr(bench, "path", None)
    section = getattr(getattr(bench, "config", bench), "opu", None)
    if not section:
        raise ConfigError(path, "opu", "this bench file has no 'opu' section describing the optical processing "
                          "unit (see sim_backends/benches/opu_core.yaml or ring_core.yaml)")
    try:
        return _SECTION.validate_python(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"][1:]]   # the first element is the architecture tag
        if first["type"] == "union_tag_invalid":
            where, message = "opu.architecture", "must be 'streaming' or 'weight_stationary'"
        else:
            where = ".".join(["opu", *loc])
            message = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(
                first["type"], first["msg"])
        raise ConfigError(path, where, message) from None


def _folder(calibration: Any) -> Path | None:
    """``calibration`` as a calibration folder, or None when it names a file or an object.

    A path that does not exist yet and has no file suffix (``cal/``) is a folder to fill: it is created,
    so cores calibrated now are saved there for the next run."""
    if not isinstance(calibration, (str, Path)):
        return None
    path = Path(calibration)
    if path.is_dir():
        return path
    if not path.exists() and not path.suffix:
        path.mkdir(parents=True, exist_ok=True)  # another process (a core of the same center) may make it too
        return path
    return None


def _core_file(calibration: Any, controller: str) -> Any:
    """A core's calibration in ``calibration``: a folder holds one ``<controller>.json`` per core."""
    folder = _folder(calibration)
    if folder is not None:
        path = folder / f"{controller}.json"
        return path if path.is_file() else None
    return calibration


def _open_core(bench, config: StationaryConfig, index: int, calibration: Any, accept_stale: bool) -> StationaryOPU:
    """Core ``index``, loaded from its calibration; a core without one is calibrated now (saved into the
    folder when ``calibration`` is one), since a weight-stationary core cannot compute uncalibrated."""
    controller = config.cores[index].controller
    source = _core_file(calibration, controller)
    if source is not None:
        return StationaryOPU(bench, source, core=index, accept_stale=accept_stale)
    folder = _folder(calibration)
    target = folder / f"{controller}.json" if folder is not None else None
    return calibrate_core(StationaryOPU(bench, core=index), target).opu


def _open_streaming(bench, calibration: Any, accept_stale: bool) -> StreamingOPU:
    folder = _folder(calibration)
    if folder is not None:
        path = folder / STREAMING_CALIBRATION_NAME
        calibration = path if path.is_file() else None
    return StreamingOPU(bench, calibration, accept_stale=accept_stale)


def open_opus(bench, calibration: Any = None, *, accept_stale: bool = False) -> list[OpticalMatmul]:
    """Every OPU of a bench, ready to use: one per weight-stationary core, or the one streaming OPU.

    ``calibration``: a folder of calibration files (``<controller>.json`` per core, written by ``labctl
    run calibrate_core``; ``opu_calibration.json`` for a streaming OPU; created when missing), a file, a calibration object, or
    None. Weight-stationary cores without a calibration are calibrated now (and saved into the folder);
    a streaming OPU without one runs on its nominal values. A file made at another operating point, or
    one failing its drift check, raises unless ``accept_stale``.
    """
    config = opu_config(bench)
    if isinstance(config, StationaryConfig):
        return [_open_core(bench, config, i, calibration, accept_stale) for i in range(len(config.cores))]
    return [_open_streaming(bench, calibration, accept_stale)]


def open_opu(bench, calibration: Any = None, *, core: int = 0, accept_stale: bool = False) -> OpticalMatmul:
    """One OPU of a bench (core ``core`` of a weight-stationary bench), ready to use (see :func:`open_opus`)."""
    config = opu_config(bench)
    if isinstance(config, StationaryConfig):
        if not 0 <= core < len(config.cores):
            raise StationaryOPUError(f"core={core} does not exist; this bench has {len(config.cores)} core(s)")
        return _open_core(bench, config, core, calibration, accept_stale)
    if core != 0:
        raise ConfigError(getattr(bench, "path", None), "opu", f"core={core}: a streaming bench has one OPU (core 0)")
    return _open_streaming(bench, calibration, accept_stale)


def open_cores(bench, calibration_dir: Any = None, *, accept_stale: bool = False) -> list[OpticalMatmul]:
    """Every OPU of a bench (:func:`open_opus` with a calibration folder)."""
    return open_opus(bench, calibration_dir, accept_stale=accept_stale)


class OPU(StreamingOPU):
    """The streaming OPU under the name ``labctl.OPU``.

    On a weight-stationary bench, ``OPU(bench, ...)`` warns (DeprecationWarning) and returns
    ``open_opu(bench, ...)``: use :func:`open_opu` (or :func:`open_opus`), which open either architecture.
    """

    def __new__(cls, bench, *args: Any, **kwargs: Any):
        if cls is OPU and architecture(bench) == "weight_stationary":
            warnings.warn("labctl.OPU(bench) on a weight-stationary bench is deprecated: use "
                          "labctl.opu.open_opu(bench)", DeprecationWarning, stacklevel=2)
            return open_opu(bench, *args, **kwargs)
        return super().__new__(cls)
