"""Run every benchmark and write the results to a JSON file (``make bench``)."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import (
    bench_campaign,
    bench_core,
    bench_genai,
    bench_io,
    bench_network,
    bench_opu,
    bench_physics,
    bench_waveform,
    summary,
)

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args(argv)
    before = summary.peaks(summary.previous_results(HERE))  # read before this run replaces the files
    results = {
        "when_utc": datetime.now(timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "scpi_round_trip": bench_io.scpi_round_trip(),
        "bulk_transfers": bench_io.bulk_transfers(),
        "hostile_parsing_growth": bench_io.hostile_parsing_growth(),
        "physics": bench_physics.run(),
        "waveform": bench_waveform.run(),
        # each also written to its own file (results_opu.json, results_core.json, results_genai.json, ...)
        "opu": bench_opu.run(),
        "core": bench_core.run(),
        "genai": bench_genai.run(),
        "campaign": bench_campaign.run(),
        "network": bench_network.run(),
    }
    bench_opu.save(results["opu"])
    bench_core.save(results["core"])
    bench_genai.save(results["genai"])
    bench_campaign.save(results["campaign"])
    bench_network.save(results["network"])
    bench_waveform.save(results["waveform"])
    results["targets"] = summary.targets(results)
    results["peak_memory"] = summary.peak_changes(summary.peaks(results), before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    rt = results["scpi_round_trip"]
    for label in ("idn", "numeric"):
        r = rt[label]
        print(f"{r['query']:<12} labsim {r['labsim_us']:.1f} us  pyvisa-sim {r['pyvisa_sim_us']:.1f} us  "
              f"-> {r['speedup_vs_pyvisa_sim']:.1f}x faster")
    hp = results["hostile_parsing_growth"]
    print(f"hostile SCPI text x{hp['factor']} longer: {hp['ratio']:.1f}x the time (linear {hp['linear_ratio']}, "
          f"quadratic {hp['quadratic_ratio']})")
    bt = results["bulk_transfers"]
    print(f"AWG upload   {bt['awg_upload']['samples']:,} samples: {bt['awg_upload']['MB_per_s']:.0f} MB/s")
    print(f"scope capture {bt['scope_capture']['points']:,} points: {bt['scope_capture']['MB_per_s']:.0f} MB/s "
          f"(acquisition incl. physics), {bt['scope_transfer']['MB_per_s']:.0f} MB/s (transfer of the record)")
    ph = results["physics"]
    print(json.dumps(ph, indent=1)[:3000])
    print(bench_waveform.report(results["waveform"]))
    print(bench_opu.report(results["opu"]))
    print(bench_core.report(results["core"]))
    print(bench_genai.report(results["genai"]))
    print(bench_campaign.report(results["campaign"]))
    print(bench_network.report(results["network"]))
    print(summary.report(results["targets"], results["peak_memory"]))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
