"""The import-linter contracts of pyproject.toml hold, so `pytest` alone also checks the architecture.

Each contract runs as its own test through the `lint-imports` command `make test` uses, so a broken
layer shows up by name with import-linter's report of the offending import chains. Each contract is
also shown to fail on a copy of the sources with one forbidden import added, so none holds vacuously.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_architecture_contracts_are_declared():
    ids = {contract["id"] for contract in CONTRACTS}
    assert {"layers", "backends-independent", "physics-pure", "opu-acyclic", "experiments-independent"} <= ids


PACKAGES = ("benchmarks", "experiments", "labctl", "drivers", "sim_backends")

#: Per contract: the (file, text appended to it) that break it; a file that does not exist is created.
VIOLATIONS = {
    "layers": [("drivers/_violation.py", "import labctl.bench\n")],
    "backends-independent": [("sim_backends/_violation.py", "import drivers.base\n")],
    "physics-pure": [("sim_backends/physics/_violation.py", "import sim_backends.scpi\n")],
    "opu-acyclic": [("labctl/opu/encoding.py", "\nimport labctl.opu._violation\n"),
                    ("labctl/opu/_violation.py", "import labctl.opu.encoding\n")],
    "opu-engines-siblings": [("labctl/opu/encoding.py", "\nimport labctl.opu.stationary\n")],
    "experiments-independent": [("experiments/eye_diagram.py", "\nimport experiments.receiver_snr\n")],
    "driver-vendors-independent": [("drivers/santec/_violation.py", "import drivers.keysight.n7714a\n")],
}


def lint(contract: str, root: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract, str(root / "pyproject.toml")],
        cwd=root, capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.mark.parametrize("contract", [c["id"] for c in CONTRACTS])
def test_import_contract_is_kept(contract):
    run = lint(contract, ROOT)
    assert run.returncode == 0, f"contract {contract!r} is broken:\n{run.stdout}\n{run.stderr}"
    assert "1 kept, 0 broken" in run.stdout, run.stdout


def test_every_contract_has_a_violation_that_breaks_it():
    assert set(VIOLATIONS) == {c["id"] for c in CONTRACTS}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_import_contract_breaks_on_a_forbidden_import(contract, tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "models", "*.yaml", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path, text in VIOLATIONS[contract]:
        with open(tmp_path / path, "a") as file:
            file.write(text)
    # the copy, not the installed checkout, is what the import graph is built from
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = lint(contract, tmp_path, env)
    assert run.returncode != 0, run.stdout
    assert "0 kept, 1 broken" in run.stdout, run.stdout
