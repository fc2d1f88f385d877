"""A remote OPU is an OpticalMatmul: the center's engine's own product, and offload works through it."""

from __future__ import annotations

import numpy as np
import pytest

import labctl
from labctl.bench import SYSTEM_BENCH_PATH, open_bench
from labctl.opu import STATS_KEYS, OpticalMatmul, open_opu

from .conftest import SEED


def test_remote_product_is_the_local_engines_product_for_the_same_seed(start_center, keys, calibration):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 16)), rng.standard_normal((16, 8))
    center = start_center()
    with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], edge="edge one",
                        timeout_s=30) as remote:
        assert isinstance(remote, OpticalMatmul)
        assert remote.calibrated and [core.name for core in remote.cores] == ["occ1"]
        remote_product = remote.matmul(a, b)  # the center's first product since its bench opened
        stats = remote.last_stats
        product, sigma = remote.matmul(a, b, return_error=True)
    with open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=SEED) as bench:
        local = open_opu(bench, calibration, core=0)
        local_product = local.matmul(a, b)
    # the simulated center is deterministic for its seed: the same first product, bit for bit
    assert remote_product.dtype == np.float64 and np.array_equal(remote_product, local_product)
    assert set(STATS_KEYS) <= set(stats) and stats["macs"] == local.last_stats["macs"] == 4 * 16 * 8
    assert stats["core"] == "occ1" and stats["wall_s"] >= stats["center_wall_s"] > 0 and stats["resubmits"] == 0
    assert product.shape == sigma.shape == (4, 8) and (sigma > 0).all()
    log = center.log()
    assert "admitted edge" in log and "(edge one): cores occ1" in log
    for value in (*a.flat[:8], *remote_product.flat[:8]):  # payloads never reach the log
        assert f"{value:.4f}" not in log


def test_offload_of_a_torch_model_runs_on_the_remote_cores(shared_center, keys):
    torch = pytest.importorskip("torch", reason="labctl.offload needs torch (pip install -e '.[ml]')")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
    x = torch.randn(5, 16)
    with labctl.connect(shared_center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0],
                        timeout_s=30) as remote:
        optical = labctl.offload.offload(model, remote)
        with torch.no_grad():
            y_optical, y_electronic = optical(x), model(x)
        ledger = labctl.offload.ledger(optical)
    assert y_optical.dtype == torch.float32 and y_optical.shape == (5, 4)
    assert ledger.total_macs == 5 * 16 * 12 + 5 * 12 * 4 and ledger.total_opu_calls == 2
    # the remote engine's statistics reached the ledger, and its error estimate was used
    assert sum(r.opu_stats["macs"] for r in ledger.records.values()) == ledger.total_macs
    assert all(r.last_sigma_rms > 0 for r in ledger.records.values())
    error = (y_optical - y_electronic).pow(2).mean().sqrt() / y_electronic.pow(2).mean().sqrt()
    assert error < 0.1  # a 16-input core's few effective bits, not a different function
