# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ml,gen,real]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m experiments.demo --out results/demo

# The import contracts (pyproject.toml [tool.importlinter]) first: a broken layer fails in a second.
test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2

# OptiCommPy (the `bench` extra) for the waveform level's side-by-side rows; if it cannot be installed, those
# rows are skipped with a note and everything else is measured.
bench: $(STAMP)
	-$(BIN)/python -c "import optic" 2>/dev/null || $(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks.run_all --out benchmarks/results.json

clean:
	rm -rf $(VENV) results build *.egg-info
