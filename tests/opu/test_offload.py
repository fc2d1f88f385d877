"""labctl.offload: torch layers routed to an OPU, with a per-layer ledger of the MACs sent to optics.

Plumbing tests use :class:`RecordingExactOPU`, a test double; the end-to-end test uses the real
``labctl.OPU`` on the simulated bench (sim_backends/benches/opu_core.yaml).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import labctl  # noqa: E402
from labctl.opu import OpticalMatmul  # noqa: E402
from labctl.opu.streaming import calibrate  # noqa: E402
from labctl import offload as offload_mod  # noqa: E402  (the callable module)
from labctl.offload import (  # noqa: E402
    OffloadWarning,
    OpticalConv2d,
    OpticalLedger,
    OpticalLinear,
    is_offloaded,
    ledger,
    offload,
    restore,
)

REPO = Path(__file__).resolve().parents[2]
OPU_BENCH = REPO / "sim_backends" / "benches" / "opu_core.yaml"


class RecordingExactOPU:
    """TEST DOUBLE -- not an optical result, never used outside tests.

    It stands in for ``labctl.OPU`` to check the offload wrapper's routing, operand shapes and MAC
    counts: it records every ``matmul`` call (operand shapes and types) and computes the product exactly
    with NumPy in float64, returning the same type as the input (torch float32 tensor for torch inputs),
    with a zero error estimate. Nothing optical happens here.
    """

    def __init__(self):
        self.calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        self.types: list[str] = []
        self.last_stats: dict = {}

    def matmul(self, a, b, return_error=False):
        self.types.append(type(a).__module__.split(".")[0])
        is_torch = isinstance(a, torch.Tensor)
        an = a.detach().cpu().numpy().astype(np.float64) if is_torch else np.asarray(a, np.float64)
        bn = b.detach().cpu().numpy().astype(np.float64) if isinstance(b, torch.Tensor) else np.asarray(b, np.float64)
        self.calls.append((an.shape, bn.shape))
        y = np.matmul(an, bn)
        batch = math.prod(np.broadcast_shapes(an.shape[:-2], bn.shape[:-2])) if an.ndim > 2 or bn.ndim > 2 else 1
        self.last_stats = {"macs": int(batch * an.shape[-2] * an.shape[-1] * bn.shape[-1]), "lanes": 1}
        sigma = np.zeros_like(y)
        if is_torch:
            y, sigma = torch.from_numpy(y.astype(np.float32)), torch.from_numpy(sigma.astype(np.float32))
        return (y, sigma) if return_error else y


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- Linear ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_shape", [(5,), (2, 3), ()])
def test_linear_matches_torch_and_counts_macs(bias, batch_shape):
    torch.manual_seed(0)
    layer = nn.Linear(7, 6, bias=bias)
    opu = RecordingExactOPU()
    model = offload(nn.Sequential(layer), opu)
    x = torch.randn(*batch_shape, 7, generator=_gen(1))
    with torch.no_grad():
        expected = layer(x)
        y = model(x)
    assert y.shape == expected.shape and y.dtype == x.dtype
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    batch = math.prod(batch_shape)
    assert opu.calls == [((batch, 7), (7, 6))]  # one call, activations @ W.T
    assert opu.types == ["torch"]
    rec = ledger(model).records["0"]
    assert (rec.kind, rec.weight_shape, rec.calls, rec.opu_calls) == ("linear", (6, 7), 1, 1)
    assert rec.macs == batch * 7 * 6
    assert rec.opu_stats["macs"] == rec.macs  # what the OPU itself reported
    assert rec.input_shape == (*batch_shape, 7) and rec.output_shape == (*batch_shape, 6)


def test_linear_bias_is_added_electronically():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([10.0, -20.0]))
    opu = RecordingExactOPU()
    model = offload(layer, opu)  # the root itself may be the layer
    x = torch.zeros(4, 3)
    y = model(x)  # parameters are frozen: no torch.no_grad() needed
    # the OPU saw only x @ W.T (zeros); the bias appears in the output
    assert torch.equal(y, torch.tensor([[10.0, -20.0]] * 4))
    assert opu.calls == [((4, 3), (3, 2))]


# -- Conv2d ------------------------------------------------------------------------------------------

CONV_CASES = [
    dict(cin=3, cout=4, k=3, stride=1, padding=0, dilation=1, groups=1, bias=True, hw=(7, 6)),
    dict(cin=3, cout=6, k=3, stride=2, padding=1, dilation=1, groups=1, bias=False, hw=(9, 8)),
    dict(cin=4, cout=6, k=(3, 2), stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2, bias=True, hw=(8, 9)),
    dict(cin=6, cout=6, k=3, stride=1, padding="same", dilation=2, groups=6, bias=True, hw=(7, 7)),  # depthwise
    dict(cin=4, cout=8, k=4, stride=1, padding="same", dilation=1, groups=4, bias=False, hw=(6, 5)),  # even k
    dict(cin=2, cout=3, k=1, stride=3, padding="valid", dilation=1, groups=1, bias=True, hw=(8, 7)),
    dict(cin=3, cout=3, k=3, stride=1, padding=1, dilation=1, groups=1, bias=True, hw=(5, 6), mode="reflect"),
    dict(cin=2, cout=4, k=3, stride=2, padding=2, dilation=1, groups=2, bias=True, hw=(6, 6), mode="circular"),
    dict(cin=2, cout=2, k=3, stride=1, padding=1, dilation=1, groups=1, bias=False, hw=(4, 4), mode="replicate"),
]


def _conv_out(n, hw, k, stride, padding, dilation):
    """Closed-form output size (torch documentation of Conv2d)."""
    k = (k, k) if isinstance(k, int) else k
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        return hw
    p = (0, 0) if padding == "valid" else (padding, padding) if isinstance(padding, int) else padding
    return tuple((hw[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_conv2d_matches_torch_and_counts_macs(case):
    case = dict(case)
    hw, mode = case.pop("hw"), case.pop("mode", "zeros")
    torch.manual_seed(3)
    conv = nn.Conv2d(case["cin"], case["cout"], case["k"], stride=case["stride"], padding=case["padding"],
                     dilation=case["dilation"], groups=case["groups"], bias=case["bias"], padding_mode=mode)
    n = 2
    x = torch.randn(n, case["cin"], *hw, generator=_gen(4))
    opu = RecordingExactOPU()
    model = offload(conv, opu)
    assert isinstance(model, OpticalConv2d) and isinstance(model, nn.Conv2d)
    with torch.no_grad():
        expected = conv(x)
        y = model(x)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    h_out, w_out = _conv_out(n, hw, case["k"], case["stride"], case["padding"], case["dilation"])
    assert y.shape == (n, case["cout"], h_out, w_out)
    kh, kw = (case["k"], case["k"]) if isinstance(case["k"], int) else case["k"]
    g = case["groups"]
    k_len = case["cin"] // g * kh * kw
    # one call per forward: groups become the batch dimension of one product
    if g == 1:
        assert opu.calls == [((n * h_out * w_out, k_len), (k_len, case["cout"]))]
    else:
        assert opu.calls == [((g, n * h_out * w_out, k_len), (g, k_len, case["cout"] // g))]
    rec = ledger(model).records["<root>"]
    assert rec.macs == n * h_out * w_out * case["cout"] * (case["cin"] // g) * kh * kw
    assert rec.opu_stats["macs"] == rec.macs and rec.calls == 1


def test_conv2d_unbatched_input():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    model = offload(conv, RecordingExactOPU())
    x = torch.randn(2, 5, 4, generator=_gen(5))
    with torch.no_grad():
        torch.testing.assert_close(model(x), conv(x), atol=1e-5, rtol=1e-5)
    assert ledger(model).records["<root>"].macs == 5 * 4 * 3 * 2 * 9


# -- a model, the ledger, restore --------------------------------------------------------------------


def test_model_copy_ledger_and_restore():
    torch.manual_seed(7)
    original = _Tiny()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    opu = RecordingExactOPU()
    model = labctl.offload(original, opu)  # the module is callable: labctl.offload(...) is offload(...)
    # a deep copy: the original is untouched, keeps its classes and gradients
    assert type(original.conv) is nn.Conv2d and type(original.fc) is nn.Linear
    assert all(p.requires_grad for p in original.parameters())
    assert not any(p.requires_grad for p in model.parameters())
    assert model.state_dict().keys() == original.state_dict().keys()
    assert isinstance(model.fc, OpticalLinear) and isinstance(model.conv, OpticalConv2d)
    assert is_offloaded(model) and not is_offloaded(original)

    x = torch.randn(3, 2, 5, 5, generator=_gen(8))
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), atol=1e-5, rtol=1e-5)
        model(x[:1])
    book = offload_mod.ledger(model)
    assert book is model.optical_ledger and isinstance(book, OpticalLedger)
    conv_macs = (3 + 1) * 25 * 4 * 2 * 9
    fc_macs = (3 + 1) * 100 * 3
    assert book.macs_by_layer() == {"conv": conv_macs, "fc": fc_macs}
    assert book.total_macs == conv_macs + fc_macs
    assert book.records["conv"].calls == 2 and book.total_opu_calls == 4
    plain = book.to_dict()
    assert plain["total_macs"] == conv_macs + fc_macs
    assert [d["name"] for d in plain["layers"]] == ["conv", "fc"] and plain["layers"][0]["weight_shape"] == [4, 2, 3, 3]
    assert "conv" in book.summary()

    back = offload_mod.restore(model)
    assert type(back.conv) is nn.Conv2d and type(back.fc) is nn.Linear and not is_offloaded(back)
    assert not hasattr(back, "optical_ledger")
    n_before = len(opu.calls)
    with torch.no_grad():
        torch.testing.assert_close(back(x), original(x))
    assert len(opu.calls) == n_before  # restored layers no longer touch the OPU
    assert is_offloaded(model)  # restore returned a copy
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k])

    book.reset()
    assert book.total_macs == 0 and list(book.records) == ["conv", "fc"]


def test_layer_kinds_exclude_and_min_macs():
    torch.manual_seed(1)
    original = _Tiny()
    x = torch.randn(1, 2, 5, 5, generator=_gen(2))
    only_linear = offload(original, RecordingExactOPU(), layers=("linear",))
    assert type(only_linear.conv) is nn.Conv2d and isinstance(only_linear.fc, OpticalLinear)
    excluded = offload(original, RecordingExactOPU(), exclude=["fc"])
    assert type(excluded.fc) is nn.Linear and ledger(excluded).skipped == {"fc": "excluded"}

    # min_macs: the fc product (300 MACs) stays electronic, the conv one (1800) goes to optics
    opu = RecordingExactOPU()
    model = offload(original, opu, min_macs=1000)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), atol=1e-5, rtol=1e-5)
    book = ledger(model)
    assert book.records["conv"].macs == 25 * 4 * 2 * 9 and book.records["conv"].electronic_calls == 0
    assert book.records["fc"].macs == 0 and book.records["fc"].electronic_macs == 100 * 3
    assert book.total_electronic_macs == 300 and len(opu.calls) == 1


def test_real_error_estimate_is_exposed():
    class NoisyDouble(RecordingExactOPU):
        """TEST DOUBLE: exact product plus a constant, declared error estimate (checks the plumbing)."""

        def matmul(self, a, b, return_error=False):
            y, _ = super().matmul(a, b, return_error=True)
            return y, torch.full_like(y, 0.25)

    model = offload(nn.Linear(4, 3), NoisyDouble())
    with torch.no_grad():
        model(torch.ones(2, 4))
    assert torch.equal(model.optical_error, torch.full((2, 3), 0.25))
    assert ledger(model).records["<root>"].last_sigma_rms == pytest.approx(0.25)


def test_opu_without_return_error_and_numpy_result():
    class PlainDouble:
        """TEST DOUBLE: ``matmul(a, b)`` only, returning NumPy (exact), to check type handling."""

        def __init__(self):
            self.n = 0

        def matmul(self, a, b):
            self.n += 1
            return np.asarray(a) @ np.asarray(b)

    layer = nn.Linear(3, 2)
    opu = PlainDouble()
    model = offload(layer, opu)
    x = torch.randn(4, 3, generator=_gen(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), layer(x), atol=1e-5, rtol=1e-5)
    assert opu.n == 1 and model.optical_error is None


# -- attention ---------------------------------------------------------------------------------------


class _Attn(nn.Module):
    """A minimal self-attention block calling F.scaled_dot_product_attention (as diffusers'
    AttnProcessor2_0 does), with q/k/v/out projections."""

    def __init__(self, d=8, heads=2, causal=False, kv_heads=None):
        super().__init__()
        self.h, self.kvh, self.causal = heads, kv_heads or heads, causal
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d // heads * self.kvh)
        self.out = nn.Linear(d, d)

    def forward(self, x, mask=None):
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.h, -1).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, self.kvh, -1).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal,
                                           enable_gqa=self.kvh != self.h)
        return self.out(o.transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("causal,kv_heads,mask", [(False, None, None), (True, None, None), (False, 1, "bool"),
                                                  (False, None, "float")])
def test_attention_sdpa_routed(causal, kv_heads, mask):
    torch.manual_seed(11)
    block = nn.Sequential(_Attn(causal=causal, kv_heads=kv_heads))
    x = torch.randn(2, 5, 8, generator=_gen(12))
    m = None
    if mask == "bool":
        m = torch.rand(5, 5, generator=_gen(13)) > 0.3
        m |= torch.eye(5, dtype=torch.bool)
    elif mask == "float":
        m = torch.randn(5, 5, generator=_gen(13))
    opu = RecordingExactOPU()
    model = offload(block, opu, attention=True)
    with torch.no_grad():
        expected = block[0](x, m)
        y = model[0](x, m)  # a submodule called directly is covered too
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    book = ledger(model)
    rec = book.records["0.sdpa"]
    e = 8 // 2
    assert rec.kind == "attention" and rec.calls == 1 and rec.opu_calls == 2
    assert rec.macs == 2 * 2 * 5 * 5 * (e + e)  # batch * heads * L * S * (E + Ev)
    assert (2, 2, 5, e) in [c[0] for c in opu.calls] and (2, 2, e, 5) in [c[1] for c in opu.calls]
    assert book.records["0.q"].macs == 10 * 8 * 8
    # the function mode is switched off after the forward
    assert torch._C._len_torch_function_stack() == 0
    # a deep copy shares the OPU and has its own ledger; restore removes the routing hooks
    twin = copy.deepcopy(model)
    assert twin._optical_context.handle.opu is opu and ledger(twin) is not book
    back = restore(model)
    n = len(opu.calls)
    with torch.no_grad():
        torch.testing.assert_close(back[0](x, m), expected)
    assert len(opu.calls) == n
    assert not any(m_._forward_pre_hooks or m_._forward_hooks for m_ in back.modules())


def test_attention_not_routed_unless_asked_and_mode_cleared_on_error():
    block = _Attn()
    x = torch.randn(1, 3, 8, generator=_gen(0))
    model = offload(block, RecordingExactOPU())
    with torch.no_grad():
        model(x)
    assert "sdpa" not in ledger(model).records and set(ledger(model).records) == {"q", "kv", "out"}

    model = offload(block, RecordingExactOPU(), attention=True)
    with pytest.raises(ValueError, match="last dimension must be 8"), torch.no_grad():
        model(torch.randn(1, 3, 7))
    assert torch._C._len_torch_function_stack() == 0 and model._optical_context.stack == []


def test_multihead_attention_out_proj_is_reported_not_offloaded():
    mha = nn.Sequential(nn.MultiheadAttention(8, 2, batch_first=True))
    with pytest.warns(OffloadWarning, match="MultiheadAttention"), pytest.raises(ValueError, match="nothing to offload"):
        offload(mha, RecordingExactOPU())


# -- bad input ---------------------------------------------------------------------------------------


def test_bad_input():
    opu = RecordingExactOPU()
    with pytest.raises(TypeError, match="matmul"):
        offload(nn.Linear(2, 2), object())
    with pytest.raises(TypeError, match="nn.Module"):
        offload(lambda x: x, opu)
    with pytest.raises(ValueError, match="nothing to offload"):
        offload(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)), opu)
    with pytest.warns(OffloadWarning, match="only scaled_dot_product_attention"):
        offload(nn.Sequential(nn.ReLU()), opu, attention=True)
    with pytest.raises(ValueError, match="layers: unknown"):
        offload(nn.Linear(2, 2), opu, layers=("lstm",))
    with pytest.raises(ValueError, match="min_macs"):
        offload(nn.Linear(2, 2), opu, min_macs=-1)
    with pytest.raises(ValueError, match="exclude"):
        offload(nn.Linear(2, 2), opu, exclude=["nope"])
    model = offload(nn.Linear(2, 2), opu)
    with pytest.raises(ValueError, match="already offloaded"):
        offload(model, opu)
    with pytest.raises(ValueError, match="not made by labctl.offload"):
        ledger(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="not made by labctl.offload"):
        restore(nn.Linear(2, 2))
    # autograd is kept out
    with pytest.raises(RuntimeError, match="inference-only"):
        model(torch.ones(1, 2, requires_grad=True))
    with pytest.raises(ValueError, match="last dimension must be 2"), torch.no_grad():
        model(torch.ones(1, 3))
    conv = offload(nn.Conv2d(3, 2, 3), opu)
    with pytest.raises(ValueError, match="3 input channels"), torch.no_grad():
        conv(torch.ones(1, 2, 5, 5))
    with pytest.raises(ValueError, match="smaller than the dilated kernel"), torch.no_grad():
        conv(torch.ones(1, 3, 2, 2))
    # a subclass with its own forward keeps its semantics (electronic) and is reported
    class Scaled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.warns(OffloadWarning, match="overrides forward"):
        m = offload(nn.Sequential(Scaled(2, 2), nn.Linear(2, 2)), opu)
    assert type(m[0]) is Scaled and "0" in ledger(m).skipped


# -- end to end on the real OPU (simulated bench) ----------------------------------------------------


# A quick calibration (~5 s): biases, delays and the lane fit (offset terms, gains, residual noise) with a
# linear drive. The full one (drive predistortion, sampling phase, decoder) takes ~8-12 s here and gives
# ~4x smaller errors; the wrapper's check (error consistent with the OPU's estimate) is the same.
CAL_STEPS = ("bias", "timing", "lanes")


def test_mlp_end_to_end_on_simulated_opu():
    """A 16-32-10 MLP on the simulated OPU bench against the same MLP in float64."""

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.randn(4, 16, generator=_gen(1))
    layer_io = {}

    def keep(name):
        def hook(module, args, out):
            layer_io[name] = (args[0].clone(), out.clone(), module.optical_error)
        return hook

    t0 = time.perf_counter()
    with labctl.open_bench(str(OPU_BENCH)) as bench:
        opu = calibrate(bench, None, steps=CAL_STEPS, lane_slots=1024, decoder_products=1).opu
        assert isinstance(opu, OpticalMatmul)
        t1 = time.perf_counter()
        model = offload(mlp, opu)
        model[0].register_forward_hook(keep("0"))
        model[2].register_forward_hook(keep("2"))
        with torch.no_grad():
            y = model(x)
        t2 = time.perf_counter()
    assert y.shape == (4, 10) and y.dtype == torch.float32
    print(f"calibration {t1 - t0:.2f} s, offloaded forward {t2 - t1:.2f} s")
    book = ledger(model)
    assert book.macs_by_layer() == {"0": 4 * 16 * 32, "2": 4 * 32 * 10}
    for rec in book.records.values():
        assert rec.calls == 1 and rec.opu_calls == 1
        assert rec.opu_stats["macs"] == rec.macs  # the OPU's own count of useful MACs agrees
    w1, b1 = mlp[0].weight.detach().double(), mlp[0].bias.detach().double()
    w2, b2 = mlp[2].weight.detach().double(), mlp[2].bias.detach().double()
    # each optical layer: its error against the exact product of the input it actually received is
    # consistent with the OPU's own per-output error estimate
    for name, (w, b) in {"0": (w1, b1), "2": (w2, b2)}.items():
        inp, out, sigma = layer_io[name]
        err = out.double() - F.linear(inp.double(), w, b)
        assert sigma is not None and torch.all(sigma > 0)
        rms_z = float((err / sigma.double()).pow(2).mean().sqrt())
        print(f"layer {name}: rms error {float(err.pow(2).mean().sqrt()):.4g}, rms sigma "
              f"{float(sigma.pow(2).mean().sqrt()):.4g}, rms z {rms_z:.3g}")
        assert 0.2 < rms_z < 3.0
    # end to end against float64: layer 0's estimated error carried through ReLU and W2 (linearised at the
    # hidden units that were active), plus layer 2's own
    h_pre, s1 = layer_io["0"][1].double(), layer_io["0"][2].double()
    var = (w2**2 @ ((h_pre > 0) * s1**2).T).T + layer_io["2"][2].double() ** 2
    y_ref = F.linear(torch.relu(F.linear(x.double(), w1, b1)), w2, b2)
    err = y.double() - y_ref
    rms_z = float((err / var.sqrt()).pow(2).mean().sqrt())
    rel = float(err.norm() / y_ref.norm())
    print(f"end to end: relative error {rel:.3g}, rms z against the propagated estimate {rms_z:.3g}")
    assert 0.2 < rms_z < 3.0
    # measured 0.79 with the quick calibration (linear drive, no decoder); over 40 outputs the figure spreads
    # by ~11 %, so 0.95 is ~2 spreads above it (the rms z check above is the tight one)
    assert rel < 0.95
