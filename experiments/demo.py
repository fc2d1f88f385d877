"""The `make demo` showcase on the built-in simulated benches.

Part 1, the characterisation bench: identifies every instrument, measures the modulator's transfer
curve with the power meter and the scope and fits V_pi and the extinction ratio, then sends a PAM4
pattern through the modulator locked at quadrature and captures it on the scope; writes HDF5 results
files and PNG plots and prints a short summary next to the values the simulated bench was built with.

Part 2, the optical computing center (``sim_backends/benches/ring_core.yaml``): calibrates its three
weight-stationary cores, then runs the three bundled generative models at once, one per core, and
generates the same seeds electronically; prints the throughput and quality table and one energy table
(J per image: what the bench drew, the integrated projection, this machine's CPU) and writes the image
grids (optical next to electronic), the energy ledger and that table. ``--skip-genai`` runs part 1 only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labctl import load_bench, open_bench, run_experiment
from labctl.bench import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH
from labctl.opu import open_opus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=8, help="images per generative model")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps of the diffusion models")
    parser.add_argument("--skip-genai", action="store_true", help="run the characterisation part only")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    print("labctl demo on the built-in simulated benches")
    with open_bench(CHARACTERISATION_BENCH_PATH, mode="sim", seed=args.seed) as bench:
        print(f"\n1. instruments of bench '{bench.config.name}':")
        for name, idn in bench.identify().items():
            spec = bench.config.instruments[name]
            print(f"   {name:<11} {spec.role:<20} {idn}")

        print("\n2. MZM transfer curve: bias sweep with the laser on (power meter, then scope)")
        result = run_experiment("mzm_transfer", bench=bench, out=args.out, seed=args.seed)

        print("\n3. modulated link: PAM4 from the AWG, MZM locked at quadrature by the bias controller,")
        print("   scope triggered by the AWG marker")
        link = run_experiment("modulation_trace", bench=bench, out=args.out, seed=args.seed)

    truth = load_bench(CHARACTERISATION_BENCH_PATH).components["mzm1"]
    s = result.summary
    print("\n4. results (fitted from measurements; the simulated modulator's true values in brackets)")
    print(f"   V_pi from power meter : {s['v_pi_v']:.3f} V   [{truth['v_pi']} V]")
    print(f"   V_pi from scope       : {s['v_pi_scope_v']:.3f} V   [{truth['v_pi']} V]")
    print(f"   extinction ratio      : {s['extinction_ratio_db']:.1f} dB (power meter), "
          f"{s['extinction_ratio_scope_db']:.1f} dB (scope)   [{truth['extinction_ratio_db']} dB]")
    print(f"   quadrature bias (+)   : {s['quadrature_bias_v']:.3f} V")
    print(f"   peak power at meter   : {s['max_power_dbm']:.2f} dBm")
    m = link.summary
    print(f"   PAM4 eye amplitude    : {m['eye_amplitude_v'] * 1e3:.2f} mV, worst Q between levels {m['worst_q']:.1f}, "
          f"level spacing max/min {m['level_spacing_ratio']:.3f}")
    print(f"   link delay mod pattern: {m['link_delay_mod_period_s'] * 1e9:.2f} ns")
    for run in (result, link):
        print(f"\n   results file: {run.results_path}")
        for artefact in run.artefacts:
            print(f"   plot:         {artefact}")
    if not args.skip_genai:
        generative_showcase(args)
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; all sources were shut down.")
    return 0


def generative_showcase(args: argparse.Namespace) -> None:
    """Three generative models in parallel on the three optical cores, against electronics."""
    from experiments.genai.generate import generate_parallel  # imports torch (optional): only for this part
    from experiments.genai.results import energy_table

    print(f"\n5. generative AI on the optical computing center ({SYSTEM_BENCH_PATH.name}): three 16 x 16")
    print("   weight-stationary cores (microring weight banks, inputs sent over 12 km of edge + metro fibre)")
    with open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=args.seed) as bench:
        started = time.perf_counter()
        (args.out / "calibration").mkdir(parents=True, exist_ok=True)
        cores = open_opus(bench, args.out / "calibration")
        print(f"   calibrated {len(cores)} cores in {time.perf_counter() - started:.0f} s "
              f"(files in {args.out / 'calibration'})")
        labels = [i % 10 for i in range(args.images)]
        print(f"   generating {args.images} images per model, same seeds electronically; latent-digits is asked "
              f"for the digits {labels}")
        result = generate_parallel(["ddpm-digits", "latent-digits", "vae-digits"], cores, n=args.images,
                                   steps=args.steps, seed=args.seed, label=labels, bench=bench,
                                   out_dir=args.out / "genai", progress=True)
    print()
    print("\n".join("   " + line for line in result.summary().splitlines()))
    table = args.out / "genai_energy.txt"
    table.write_text(energy_table(result.metrics, result.out_dir / result.metrics["energy"]["ledger"]) + "\n")
    print(f"\n   image grids (electronic | optical): {args.out / 'genai'}/<model>/grid.png")
    print(f"   energy: {table} (the table above), {result.out_dir / result.metrics['energy']['ledger']} (the ledger)")


if __name__ == "__main__":
    raise SystemExit(main())
