# Two commands on a fresh machine with Python 3.11+:
#   make demo   - the main job: six replies through the gate, and without it
#   make test   - venv + install, ruff, mypy --strict, pytest (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PY_DIRS := gate integrations bench tests

.PHONY: demo test lint typecheck pytest install clean stop-audio

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/playback-gate demo

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy --strict gate integrations bench tests

# The test audio device (a private PulseAudio null sink) is started by scripts/audio-device.sh.
# Where it can't be set up (no root, no apt), device tests skip with the reason; in CI they fail.
pytest: $(STAMP)
	env_sh=$$(scripts/audio-device.sh start) || env_sh=; eval "$$env_sh"; $(BIN)/python -m pytest

stop-audio:
	scripts/audio-device.sh stop

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
