"""The import-linter contracts of pyproject.toml hold, so `pytest` alone also checks the architecture.

Each contract runs as its own test through the `lint-imports` command `make test` uses, so a broken
layer shows up by name with import-linter's report of the offending import chains.
"""

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


@pytest.mark.parametrize("contract", [c["id"] for c in CONTRACTS])
def test_import_contract_is_kept(contract):
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract, str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"contract {contract!r} is broken:\n{run.stdout}\n{run.stderr}"
    assert "1 kept, 0 broken" in run.stdout, run.stdout
