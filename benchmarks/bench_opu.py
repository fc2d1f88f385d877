"""Issue 5 benchmark: ``OPU.matmul`` on the simulated OPU bench against ``torch.matmul``, with a cost split.

Run: ``python -m benchmarks.bench_opu`` (writes benchmarks/results_opu.json). The calibration is done
once, outside the timing. For each shape: OPU wall time, ``torch.matmul`` (float32) of the same shape in
the same run, and where the OPU's time goes: simulating the physics (``World.physics_seconds``, the
outermost signal evaluations), instrument control (drivers + VISA + SCPI + binary transfers + the
simulated instruments' own processing: the rest of the upload and capture time) and electronic
encode/decode. Nothing is asserted.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

import labctl
from labctl.opu.calibrate import calibrate

HERE = Path(__file__).parent
BENCH = HERE.parent / "sim_backends" / "benches" / "opu_core.yaml"
#: The issue's target shape (256x256)@(256x1024) is 16.8 M slots on the one-lane bench; at the
#: simulator's present speed it would take hours, so smaller shapes are measured.
SHAPES = ((16, 32, 16), (32, 64, 64))


def _torch_time(m: int, k: int, n: int, repeats: int = 20) -> float:
    import torch

    # One thread: on 2 cores torch's pool and NumPy's OpenBLAS pool spin against each other in one
    # process and a tiny matmul then takes milliseconds instead of microseconds.
    torch.set_num_threads(1)
    a, b = torch.rand(m, k), torch.rand(k, n)
    torch.matmul(a, b)  # warm-up: thread pool and kernel selection
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> dict:
    results: dict = {"bench": str(BENCH.name), "shapes": []}
    with labctl.open_bench(BENCH, seed=1) as bench:
        start = time.perf_counter()
        opu = calibrate(bench, None, lane_slots=1024, decoder_products=1).opu
        results["calibration_seconds"] = time.perf_counter() - start
        world = bench.sim.world
        rng = np.random.default_rng(0)
        for m, k, n in SHAPES:
            a, b = rng.random((m, k)) - 0.5, rng.random((k, n)) - 0.5
            physics_before = world.physics_seconds
            start = time.perf_counter()
            y = opu.matmul(a, b)
            wall = time.perf_counter() - start
            physics = world.physics_seconds - physics_before
            stats = opu.last_stats
            electronic = stats["plan_s"] + stats["decode_s"]
            control = max(wall - physics - electronic, 0.0)
            ref = a @ b
            sigma = float(np.sqrt(np.mean((y - ref) ** 2)))
            torch_s = _torch_time(m, k, n)
            results["shapes"].append({
                "shape": f"({m}x{k})@({k}x{n})", "macs": m * k * n, "slots": stats["slots_per_lane"],
                "opu_seconds": wall, "torch_seconds": torch_s, "opu_over_torch": wall / torch_s,
                "physics_seconds": physics, "control_seconds": control, "electronic_seconds": electronic,
                "control_share": control / wall, "physics_share": physics / wall,
                "uploads": stats["uploads"], "upload_bytes": stats["upload_bytes"], "captures": stats["captures"],
                "capture_points": stats["capture_points"], "optical_time_s": stats["optical_time_s"],
                "rms_error": sigma, "bits_range": float(np.log2(np.ptp(ref) / sigma)),
            })
    return results


def main() -> int:
    results = run()
    out = HERE / "results_opu.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"calibration: {results['calibration_seconds']:.1f} s")
    for r in results["shapes"]:
        print(f"{r['shape']:<18} OPU {r['opu_seconds']:.2f} s vs torch {r['torch_seconds'] * 1e6:.0f} us "
              f"({r['opu_over_torch']:.3g}x); physics {r['physics_share']:.0%}, instrument control "
              f"{r['control_share']:.0%}; {r['uploads']} uploads, {r['captures']} captures; "
              f"{r['bits_range']:.2f} bits (log2 range/sigma)")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
