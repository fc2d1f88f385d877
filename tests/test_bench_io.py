"""bench_io's figures come from benches that exist: ``make bench`` starts with them, so a renamed bench or
resource there stops the whole run (checked here on tiny repeats; the timings themselves are not judged)."""

from benchmarks import bench_io


def test_scpi_round_trip_reaches_both_simulators():
    out = bench_io.scpi_round_trip(repeats=1, inner=2)
    assert set(out) == {"idn", "numeric"}
    for row in out.values():
        assert row["labsim_us"] > 0 and row["pyvisa_sim_us"] > 0


def test_bulk_transfers_move_the_samples_they_report():
    out = bench_io.bulk_transfers(samples=10_000, repeats=1)
    assert out["awg_upload"]["bytes"] == 2**20
    assert out["scope_capture"]["points"] >= 10_000
    assert out["scope_transfer"]["bytes"] == 2 * out["scope_capture"]["points"]


def test_a_child_prints_only_its_figures_on_stdout(capsys):
    """measure_in_child parses the child's stdout as JSON: the measurement's own prints must go to stderr."""
    import json

    from benchmarks.child import print_measured

    def measure():
        print("calibrating...")
        return {"ratio": 1.5, "path": bench_io.HERE}

    assert print_measured(measure) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"ratio": 1.5, "path": str(bench_io.HERE)}
    assert "calibrating..." in out.err
