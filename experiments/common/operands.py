"""Operands for precision measurements: real weights and recorded activations of the bundled diffusion
model's UNet layers (A @ B = the layer's output without bias)."""

from __future__ import annotations

from typing import Any

import numpy as np

from labctl.errors import LabctlError


class ModelOperandError(LabctlError):
    """The model-weight operands cannot be made (model missing, layer unknown or unsupported)."""


_MODEL_CACHE: dict[tuple, dict[str, tuple[np.ndarray, np.ndarray]]] = {}


def model_operands(model: str, layer_names: list[str], *, rows: int = 64, batch: int = 4, timestep: int = 500,
                   activations: str = "forward", seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer: (A, B)} with A @ B = the layer's output without bias (float64).

    B: the layer's weight as (in, out) -- Linear W^T, Conv2d W.reshape(out, in*kh*kw)^T. A: the layer's
    input recorded by a forward hook during one UNet pass on ``batch`` N(0, 1) images at ``timestep``
    (Conv2d inputs unfolded into patch rows, the im2col form of the convolution), ``rows`` rows drawn
    at random; or N(0, 1) entries with ``activations="gaussian"``.
    """
    key = (model, tuple(layer_names), rows, batch, timestep, activations, seed)
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    try:  # torch and the models are optional: imported only when model operands are asked for
        import torch
        import torch.nn.functional as F

        from experiments.genai.models import load_model
    except ImportError as exc:
        raise ModelOperandError(f"torch / the genai models cannot be imported ({exc}); "
                                "pip install -e '.[ml,gen]'") from None
    try:
        gen = load_model(model)
    except LabctlError as exc:
        raise ModelOperandError(str(exc)) from None
    unet = gen.components.get("unet")
    if unet is None:
        raise ModelOperandError(f"{model} has no UNet (components: {', '.join(gen.components)})")
    modules = dict(unet.named_modules())
    for name in layer_names:
        m = modules.get(name)
        if not isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            known = [n for n, mod in modules.items() if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d))]
            raise ModelOperandError(f"{name!r} is not a Linear or Conv2d layer of {model}'s UNet; they are: "
                                    + ", ".join(known))
        if isinstance(m, torch.nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros"
                                               or isinstance(m.padding, str)):
            raise ModelOperandError(f"{name}: grouped, non-zero-padded or 'same'-padded convolutions are not supported")
    captured: dict[str, Any] = {}

    def recorder(name: str):
        def hook(module, inputs, output) -> None:   # returns None: the layer's output is left as it is
            captured.setdefault(name, inputs[0].detach().clone())
        return hook

    hooks = [modules[name].register_forward_hook(recorder(name)) for name in layer_names]
    g = torch.Generator().manual_seed(seed)
    cfg = unet.config
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else tuple(cfg.sample_size)[0]
    sample = torch.randn(batch, cfg.in_channels, size, size, generator=g)
    try:
        with torch.no_grad():
            unet(sample, torch.full((batch,), int(timestep), dtype=torch.long))
    finally:
        for h in hooks:
            h.remove()
    rng = np.random.default_rng(seed)
    out = {}
    for name in layer_names:
        m = modules[name]
        x = captured.get(name)
        if x is None:
            raise ModelOperandError(f"{name} was not called in the UNet's forward pass")
        w = m.weight.detach().double()
        if isinstance(m, torch.nn.Linear):
            a = x.double().reshape(-1, x.shape[-1])
            b = w.T
        else:
            a = F.unfold(x.double(), m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
            a = a.transpose(1, 2).reshape(-1, a.shape[1])
            b = w.reshape(w.shape[0], -1).T
        a = a.numpy()
        pick = rng.choice(a.shape[0], size=min(rows, a.shape[0]), replace=False)
        a = np.ascontiguousarray(a[np.sort(pick)])
        if activations == "gaussian":
            a = rng.standard_normal(a.shape)
        out[name] = (a, np.ascontiguousarray(b.numpy()))
    _MODEL_CACHE[key] = out
    return out
