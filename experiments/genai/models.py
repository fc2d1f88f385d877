"""The bundled generative models: ``load_model(name)`` -> a generator with ``generate(n, seed, ...)``.

=================  ===========================================================================================
``ddpm-digits``    pixel-space diffusion: diffusers ``UNet2DModel`` (8x8x1, blocks (32, 64), one attention
                   block) trained as a DDPM (1000 steps, cosine betas); sampled with ``DDIMScheduler`` through
                   diffusers' ``DDIMPipeline``. Unconditional.
``latent-digits``  latent, class-conditional diffusion with Stable Diffusion's structure: ``AutoencoderKL``
                   (8x8x1 <-> 4x4x4 latents), ``UNet2DConditionModel`` with cross-attention on a tiny
                   ``CLIPTextModel`` prompt encoder and a ``CLIPTokenizer`` on a shipped 39-word vocabulary,
                   classifier-free guidance; sampled through diffusers' ``StableDiffusionPipeline``.
``vae-digits``     one-shot generator of another family: the decoder of an ``AutoencoderKL`` trained as a
                   VAE (8x8x1 <-> 2x2x4 latents); one decoder pass from z ~ N(0, I). Unconditional.
=================  ===========================================================================================

    >>> gen = load_model("latent-digits")
    >>> images = gen.generate(16, seed=0, steps=20, label=7, guidance=3.0)   # (16, 8, 8) float32 in [0, 1]
    >>> images = gen.generate(4, seed=0, prompt="digit 3")

Seeds: image ``i`` of ``generate(n, seed)`` is drawn from its own ``torch.Generator`` seeded ``seed + i``,
so it does not depend on ``n`` (the same seeds can be re-generated electronically or optically).

Every part is loaded with ``from_pretrained(local_path, local_files_only=True)`` from
``experiments/genai/models/<name>/`` (safetensors weights; nothing is fetched from a hub). The folders are
also ordinary diffusers pipeline folders: ``DDPMPipeline.from_pretrained(path)`` and
``StableDiffusionPipeline.from_pretrained(path)`` load them too. Retrain with the scripts named in
:data:`RETRAIN`.

**Your own pipeline folder**: ``load_model(path)`` with the path of a diffusers pipeline folder (one with a
``model_index.json``) whose ``_class_name`` is ``StableDiffusionPipeline``, ``DDPMPipeline`` or
``DDIMPipeline`` (:data:`PIPELINE_CLASSES`) loads it with that pipeline class
(``from_pretrained(path, local_files_only=True)``; Stable Diffusion without safety checker) and runs that
class: e.g. real Stable Diffusion weights at their own size (``(n, 512, 512, 3)`` images). Colour images
come out as ``(n, H, W, 3)``, grey ones as ``(n, H, W)``. An optional ``generation_config.json`` in the folder
sets the default ``steps``, ``guidance``, ``height``, ``width``.

    >>> sd = load_model("/data/stable-diffusion-v1-5")          # a StableDiffusionPipeline folder
    >>> images = sd.generate(2, seed=0, steps=4, prompt="a red boat")   # (2, 512, 512, 3) in [0, 1]

``gen.components`` holds the torch modules (``unet``, ``vae``, ``text_encoder``) plus tokenizer and
scheduler; ``gen.with_components(unet=other)`` gives a generator that uses a replacement (e.g. an optically
offloaded copy) and leaves ``gen`` untouched.
"""

from __future__ import annotations

import contextlib
import copy
import json
import operator
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from labctl.errors import LabctlError

from .prompts import PromptError, check_prompt, label_prompt

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_NAMES = ("ddpm-digits", "latent-digits", "vae-digits")
#: diffusers pipeline classes (``model_index.json`` ``_class_name``) of the folders ``load_model(path)`` runs.
PIPELINE_CLASSES = ("StableDiffusionPipeline", "DDPMPipeline", "DDIMPipeline")
RETRAIN = {
    "ddpm-digits": "python -m experiments.genai.train_ddpm",
    "latent-digits": "python -m experiments.genai.train_latent",
    "vae-digits": "python -m experiments.genai.train_vae",
    "digit-classifier": "python -m experiments.genai.classifier",
}

__all__ = ["MODEL_NAMES", "MODELS_DIR", "PIPELINE_CLASSES", "Generator", "GenAIError", "ModelWeightsError",
           "PipelineFolder", "PromptError", "UnknownModelError", "load_model"]


class GenAIError(LabctlError):
    """Base class of the generative-model errors."""


class UnknownModelError(GenAIError, LookupError):
    """A model name that is not bundled; the message lists the known ones."""


class ModelWeightsError(GenAIError, OSError):
    """A model folder, config or weights file is missing or cannot be read (corrupt, wrong shapes)."""


def _load_component(cls, root: Path, subfolder: str | None, name: str, weights: bool = True, **kwargs):
    """``cls.from_pretrained(root, subfolder=...)`` from local files only; every failure -> ModelWeightsError."""
    folder = root / subfolder if subfolder else root
    hint = f"; retrain with `{RETRAIN[name]}`" if name in RETRAIN else ""
    if not folder.is_dir():
        raise ModelWeightsError(f"{name}: missing model folder {folder}{hint}")
    if weights and not any(folder.glob("*.safetensors")):
        raise ModelWeightsError(f"{name}: no .safetensors weights file in {folder}{hint}")
    try:
        if subfolder:
            kwargs["subfolder"] = subfolder
        from diffusers.models.modeling_utils import ModelMixin

        if isinstance(cls, type) and issubclass(cls, ModelMixin):
            kwargs.setdefault("low_cpu_mem_usage", False)  # no `accelerate` needed, and no warning about it
        return cls.from_pretrained(str(root), local_files_only=True, **kwargs)
    except Exception as exc:  # corrupt header, truncated file, wrong shapes, bad config ...
        raise ModelWeightsError(f"{name}: cannot load {cls.__name__} from {folder}: "
                                f"{type(exc).__name__}: {exc}{hint}") from exc


@contextlib.contextmanager
def _quiet_transformers(diffusers: bool = False):
    """Silence transformers' progress bars and its 'torchvision not installed' notices (nothing here uses
    images processors) for the duration -- with ``diffusers``, also diffusers' loading bars and notices
    (e.g. 'accelerate not found'); restore the caller's settings after."""
    from transformers.utils import logging as tlog

    libs = [tlog]
    if diffusers:
        from diffusers.utils import logging as dlog

        libs.append(dlog)
    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libs]
    for lib in libs:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def _positive_int(value, what: str, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer >= 1, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{what}: expected an integer >= 1, got {value!r}") from None
    if v < 1 or (maximum is not None and v > maximum):
        rng = f"1..{maximum}" if maximum is not None else ">= 1"
        raise ValueError(f"{what}: expected an integer in {rng}, got {v}")
    return v


class Generator:
    """A bundled generator. Subclasses implement :meth:`_generate`."""

    name: str = ""
    conditional: bool = False
    #: Denoising steps when ``steps`` is not given (1 for one-shot generators).
    default_steps: int = 1
    #: Prompts name digits (requested labels are read from them for the classifier's accuracy).
    digit_prompts: bool = True

    def __init__(self, path: Path, components: dict[str, Any], generation: dict[str, Any]):
        self.path = Path(path)
        self.components = dict(components)
        self.generation = dict(generation)

    # ----------------------------------------------------------------------------------------------- API
    def generate(self, n: int, seed: int = 0, steps: int | None = None, prompt: str | Sequence[str] | None = None,
                 label: int | Sequence[int] | None = None, guidance: float | None = None) -> np.ndarray:
        """``n`` images, float32 in [0, 1]: (n, H, W) grey (the bundled models: (n, 8, 8)) or (n, H, W, 3)
        colour; image ``i`` is drawn from seed ``seed + i``."""
        n = self.check_request(n, seed, steps, prompt, label, guidance)
        images = np.asarray(self._generate(n, int(seed), steps, prompt, label, guidance), dtype=np.float32)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim not in (3, 4) or images.shape[0] != n:
            raise GenAIError(f"{self.name}: the pipeline gave images of shape {images.shape}, expected "
                             f"({n}, H, W) or ({n}, H, W, channels)")
        return np.clip(images, 0.0, 1.0)

    def check_request(self, n: int, seed: int = 0, steps: int | None = None,
                      prompt: str | Sequence[str] | None = None, label: int | Sequence[int] | None = None,
                      guidance: float | None = None) -> int:
        """Raise what :meth:`generate` would raise for these arguments (``ValueError``, :class:`PromptError`)
        without generating anything; return ``n`` as an int."""
        n = _positive_int(n, "n")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63 - n:
            raise ValueError(f"seed: expected an integer in 0..2**63-1-n, got {seed!r}")
        if not self.conditional and (prompt is not None or label is not None):
            raise PromptError(f"{self.name} is unconditional: it takes no prompt or label "
                              f"(the conditional model is latent-digits)")
        if not self.conditional and guidance is not None:
            raise ValueError(f"guidance: {self.name} is unconditional and has no guidance scale")
        self._steps(steps)
        return n

    def with_components(self, **replacements) -> "Generator":
        """A shallow copy using ``replacements`` (e.g. ``unet=offloaded_unet``); this generator is unchanged."""
        unknown = set(replacements) - set(self.components)
        if unknown:
            raise KeyError(f"{self.name}: no component(s) {sorted(unknown)}; it has {sorted(self.components)}")
        other = copy.copy(self)
        other.components = {**self.components, **replacements}
        return other

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """The torch modules (the parts whose matrix products can be offloaded)."""
        return {k: v for k, v in self.components.items() if isinstance(v, torch.nn.Module)}

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.modules.values() for p in m.parameters())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.num_parameters} parameters, {self.path}>"

    # ------------------------------------------------------------------------------------------- helpers
    def _steps(self, steps) -> int:
        if steps is None:
            return int(self.generation.get("steps", self.default_steps))
        return _positive_int(steps, "steps", self.components["scheduler"].config.num_train_timesteps)

    @staticmethod
    def _generators(n: int, seed: int) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(seed + i) for i in range(n)]

    def _generate(self, n, seed, steps, prompt, label, guidance):  # pragma: no cover - abstract
        raise NotImplementedError


def _ddim(scheduler):
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(scheduler.config)


class DDPMDigits(Generator):
    """Pixel-space DDPM ``UNet2DModel``, DDIM sampling (eta = 0) through ``DDIMPipeline``."""

    name = "ddpm-digits"
    default_steps = 50

    @classmethod
    def load(cls, path: Path) -> "DDPMDigits":
        from diffusers import DDPMScheduler, UNet2DModel

        unet = _load_component(UNet2DModel, path, "unet", cls.name).eval()
        sched = _load_component(DDPMScheduler, path, "scheduler", cls.name, weights=False)
        return cls(path, {"unet": unet, "scheduler": sched}, _generation_config(path))

    def _generate(self, n, seed, steps, prompt, label, guidance):
        from diffusers import DDIMPipeline

        pipe = DDIMPipeline(unet=self.components["unet"], scheduler=_ddim(self.components["scheduler"]))
        pipe.set_progress_bar_config(disable=True)
        out = pipe(batch_size=n, generator=self._generators(n, seed), eta=0.0,
                   num_inference_steps=self._steps(steps), output_type="np")
        return out.images[..., 0]


class LatentDigits(Generator):
    """Class-conditional latent diffusion (Stable Diffusion's structure) through ``StableDiffusionPipeline``.

    ``prompt``: one string for all images or one per image; ``label``: a digit or one per image (turned into
    'a handwritten <word>'); neither: labels 0, 1, ..., 9, 0, ... ``guidance``: classifier-free guidance
    scale >= 1 (1 = none; default from ``generation_config.json``).
    """

    name = "latent-digits"
    conditional = True
    default_steps = 50
    default_guidance = 4.0

    @classmethod
    def load(cls, path: Path) -> "LatentDigits":
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        with _quiet_transformers():
            parts = {
                "vae": _load_component(AutoencoderKL, path, "vae", cls.name).eval(),
                "text_encoder": _load_component(CLIPTextModel, path, "text_encoder", cls.name).eval(),
                "tokenizer": _load_component(CLIPTokenizer, path, "tokenizer", cls.name, weights=False),
                "unet": _load_component(UNet2DConditionModel, path, "unet", cls.name).eval(),
                "scheduler": _load_component(DDPMScheduler, path, "scheduler", cls.name, weights=False),
            }
        return cls(path, parts, _generation_config(path))

    def prompts(self, n: int, prompt=None, label=None) -> list[str]:
        """The ``n`` prompts ``generate`` would use (validated)."""
        if prompt is not None and label is not None:
            raise PromptError("give either prompt or label, not both")
        if prompt is not None:
            ps = [prompt] * n if isinstance(prompt, str) else list(prompt)
        elif label is not None:
            labels = [label] * n if np.ndim(label) == 0 else list(np.asarray(label).tolist())
            ps = [label_prompt(lab) for lab in labels]
        else:
            ps = [label_prompt(i % 10) for i in range(n)]
        if len(ps) != n:
            raise PromptError(f"{len(ps)} prompts/labels given for n = {n} images (give one, or n)")
        return [check_prompt(p) for p in ps]

    def guidance_scale(self, guidance: float | None = None) -> float:
        """The classifier-free guidance scale used for ``guidance`` (None: the model's default), validated."""
        try:
            g = float(self.generation.get("guidance", self.default_guidance) if guidance is None else guidance)
        except (TypeError, ValueError):
            raise ValueError(f"guidance: expected a number in 1..50, got {guidance!r}") from None
        if not np.isfinite(g) or not 1.0 <= g <= 50.0:
            raise ValueError(f"guidance: expected a classifier-free guidance scale in 1..50 (1 = none), got {g}")
        return g

    def check_request(self, n, seed=0, steps=None, prompt=None, label=None, guidance=None) -> int:
        n = super().check_request(n, seed, steps, prompt, label, guidance)
        self.prompts(n, prompt, label)
        self.guidance_scale(guidance)
        return n

    def _generate(self, n, seed, steps, prompt, label, guidance):
        with _quiet_transformers():
            from diffusers import StableDiffusionPipeline

        prompts = self.prompts(n, prompt, label)
        g = self.guidance_scale(guidance)
        c = self.components
        pipe = StableDiffusionPipeline(vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                       unet=c["unet"], scheduler=_ddim(c["scheduler"]), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(prompt=prompts, height=8, width=8, num_inference_steps=self._steps(steps), guidance_scale=g,
                   generator=self._generators(n, seed), output_type="np")
        return out.images[..., 0]


class VAEDigits(Generator):
    """One-shot VAE decoder (``AutoencoderKL``): z ~ N(0, temperature^2 I), one decoder pass. ``steps`` is
    accepted and ignored (there is nothing to iterate)."""

    name = "vae-digits"

    @classmethod
    def load(cls, path: Path) -> "VAEDigits":
        from diffusers import AutoencoderKL

        vae = _load_component(AutoencoderKL, path, "vae", cls.name).eval()
        return cls(path, {"vae": vae}, _generation_config(path))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        cfg = self.components["vae"].config
        side = cfg.sample_size // 2 ** (len(cfg.block_out_channels) - 1)
        return (cfg.latent_channels, side, side)

    def _steps(self, steps) -> int:
        if steps is not None:
            _positive_int(steps, "steps")
        return 1

    @torch.no_grad()
    def _generate(self, n, seed, steps, prompt, label, guidance):
        self._steps(steps)
        temperature = float(self.generation.get("temperature", 1.0))
        z = torch.cat([torch.randn((1, *self.latent_shape), generator=g) for g in self._generators(n, seed)])
        x = self.components["vae"].decode(z * temperature).sample
        return ((x / 2 + 0.5).clamp(0, 1))[:, 0].numpy()


_CLASSES = {"ddpm-digits": DDPMDigits, "latent-digits": LatentDigits, "vae-digits": VAEDigits}


# -- diffusers pipeline folders given by path ----------------------------------------------------------------


class PipelineFolder(Generator):
    """A diffusers pipeline folder given by its path, run with its own pipeline class (:attr:`pipeline`).

    ``name`` is the folder's name; its scheduler is the folder's own (a fresh copy per call). Subclasses:
    one per entry of :data:`PIPELINE_CLASSES`.
    """

    #: The diffusers pipeline class (``model_index.json`` ``_class_name``).
    pipeline: str = ""
    #: Extra ``from_pretrained``/constructor arguments of that class.
    pipeline_kwargs: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> "PipelineFolder":
        import diffusers

        path = Path(path)
        kwargs = {"local_files_only": True, "low_cpu_mem_usage": False, **cls.pipeline_kwargs}
        try:
            with _quiet_transformers(diffusers=True):
                pipe = getattr(diffusers, cls.pipeline).from_pretrained(str(path), **kwargs)
        except Exception as exc:  # missing part, corrupt or truncated weights, wrong shapes, bad config ...
            raise ModelWeightsError(f"{path}: cannot load it as a {cls.pipeline}: {type(exc).__name__}: {exc}") \
                from exc
        parts = {k: v.eval() if isinstance(v, torch.nn.Module) else v
                 for k, v in pipe.components.items() if v is not None}
        gen = cls(path, parts, _generation_config(path))
        gen.name = path.resolve().name or str(path)
        return gen

    def _pipe(self):
        """A pipeline of :attr:`pipeline` on this generator's components (possibly offloaded copies)."""
        import diffusers

        parts = dict(self.components)
        sched = parts["scheduler"]
        parts["scheduler"] = type(sched).from_config(sched.config)  # schedulers keep state between calls
        with _quiet_transformers(diffusers=True):
            pipe = getattr(diffusers, self.pipeline)(**parts, **self.pipeline_kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _size(self) -> dict[str, int]:
        return {k: int(self.generation[k]) for k in ("height", "width") if k in self.generation}


class DDPMFolder(PipelineFolder):
    """An unconditional ``DDPMPipeline`` folder (its DDPM scheduler: default 1000 steps)."""

    pipeline = "DDPMPipeline"
    default_steps = 1000

    def _generate(self, n, seed, steps, prompt, label, guidance):
        out = self._pipe()(batch_size=n, generator=self._generators(n, seed), num_inference_steps=self._steps(steps),
                           output_type="np")
        return out.images


class DDIMFolder(DDPMFolder):
    """An unconditional ``DDIMPipeline`` folder (DDIM, eta = 0: deterministic given the seed)."""

    pipeline = "DDIMPipeline"
    default_steps = 50

    def _generate(self, n, seed, steps, prompt, label, guidance):
        out = self._pipe()(batch_size=n, generator=self._generators(n, seed), eta=0.0,
                           num_inference_steps=self._steps(steps), output_type="np")
        return out.images


class StableDiffusionFolder(PipelineFolder, LatentDigits):
    """A ``StableDiffusionPipeline`` folder (no safety checker): free-text prompts (none: the empty prompt),
    classifier-free guidance (default 7.5, or ``guidance`` of ``generation_config.json``), images at the
    pipeline's own size (``unet.sample_size`` x the VAE's scale factor) unless ``height``/``width`` are set
    in ``generation_config.json``."""

    pipeline = "StableDiffusionPipeline"
    pipeline_kwargs = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    default_steps = 50
    default_guidance = 7.5
    digit_prompts = False

    def prompts(self, n: int, prompt=None, label=None) -> list[str]:
        if label is not None:
            raise PromptError(f"{self.name}: a Stable Diffusion folder takes a text prompt, not a digit label")
        ps = [""] * n if prompt is None else [prompt] * n if isinstance(prompt, str) else list(prompt)
        if len(ps) != n:
            raise PromptError(f"{len(ps)} prompts given for n = {n} images (give one, or n)")
        tok = self.components["tokenizer"]
        for p in ps:
            if not isinstance(p, str):
                raise PromptError(f"prompt: expected a string, got {type(p).__name__}")
            with _quiet_transformers():
                length = len(tok(p).input_ids)
            if length > tok.model_max_length:
                raise PromptError(f"prompt {p[:60]!r}: {length} tokens, the text encoder takes at most "
                                  f"{tok.model_max_length} (with the start and end tokens)")
        return ps

    def _generate(self, n, seed, steps, prompt, label, guidance):
        out = self._pipe()(prompt=self.prompts(n, prompt, label), num_inference_steps=self._steps(steps),
                           guidance_scale=self.guidance_scale(guidance), generator=self._generators(n, seed),
                           output_type="np", **self._size())
        return out.images


_FOLDER_CLASSES = {c.pipeline: c for c in (StableDiffusionFolder, DDPMFolder, DDIMFolder)}


def _load_folder(path: Path) -> PipelineFolder:
    what = f"give a bundled model name ({', '.join(MODEL_NAMES)}) or a diffusers pipeline folder of a " \
           f"{', '.join(PIPELINE_CLASSES)}"
    if not path.is_dir():
        raise ModelWeightsError(f"{path} is not a directory; {what}")
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelWeightsError(f"{path} is not a diffusers pipeline folder (no model_index.json); {what}")
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError) as exc:
        raise ModelWeightsError(f"{path}: unreadable model_index.json: {exc}") from exc
    kind = data.get("_class_name") if isinstance(data, dict) else None
    if kind not in _FOLDER_CLASSES:
        raise ModelWeightsError(f"{path}: model_index.json names a {kind!r} pipeline; this command runs "
                                f"{', '.join(PIPELINE_CLASSES)} folders")
    return _FOLDER_CLASSES[kind].load(path)


def _generation_config(path: Path) -> dict:
    f = path / "generation_config.json"
    if not f.exists():
        return {}
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise ModelWeightsError(f"{path.name}: unreadable {f}: {exc}") from exc


def is_pipeline_path(name) -> bool:
    """True if ``name`` is not a bundled model name but names an existing file or directory (a model folder
    given by path; :func:`load_model` says what is wrong with it if it is not a pipeline folder)."""
    if isinstance(name, str) and name in _CLASSES:
        return False
    return isinstance(name, (str, Path)) and str(name) != "" and Path(name).expanduser().exists()


def load_model(name: str | Path, path: str | Path | None = None) -> Generator:
    """Load a bundled model (``MODEL_NAMES``) from its folder, or from ``path`` (same layout); or, when
    ``name`` is the path of a diffusers pipeline folder (:data:`PIPELINE_CLASSES`), that pipeline
    (:class:`PipelineFolder`). :class:`UnknownModelError` for anything else, :class:`ModelWeightsError` for
    a folder that is not such a pipeline or cannot be loaded."""
    if isinstance(name, str) and name in _CLASSES:
        root = Path(path) if path is not None else MODELS_DIR / name
        return _CLASSES[name].load(root)
    if path is None and is_pipeline_path(name):
        return _load_folder(Path(name).expanduser())
    missing = " (no such file or directory)" if isinstance(name, Path) or "/" in str(name) else ""
    raise UnknownModelError(f"unknown model {str(name)!r}{missing}; known models: {', '.join(MODEL_NAMES)}; or "
                            f"give the path of a diffusers pipeline folder (with a model_index.json) of a "
                            f"{', '.join(PIPELINE_CLASSES)}")
