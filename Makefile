# The two commands a newcomer needs (see README): `make run` and `make test`.
# Each sets up what it needs first (virtualenv, Python packages, the bundled Whisper weights) and is
# safe to run again: setup is redone only when pyproject.toml changes; the web app (web/, Vue + Vite) is
# reinstalled when web/package-lock.json changes and rebuilt into web/dist when its sources change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEB_DEPS := web/node_modules/.installed
WEB_SRC  := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/package.json

.PHONY: run test setup lint clean

run: setup ## Set up, then start the embedded default (API + web + worker, SQLite) on :8000
	$(BIN)/hotline serve

test: setup lint ## Set up, then run the whole test suite (slow tests use the real Whisper model)
	cd web && npm test
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

setup: $(STAMP) web/dist/index.html

# The web app: `npm ci` when the lock file changes, `npm run build` (type check + bundle) when a source does.
$(WEB_DEPS): web/package-lock.json web/package.json
	@command -v npm >/dev/null || { echo "The web app needs Node.js 20.19+ and npm (https://nodejs.org)"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build
	touch $@

$(STAMP): pyproject.toml requirements-s3-test.txt
	@command -v sipp >/dev/null || { echo "Installing sipp (Debian sip-tester), the SIP peer of the telephony tests"; \
		apt-get install -y -q sip-tester >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q sip-tester; } \
		|| echo "sipp could not be installed: the telephony tests will be skipped"; }
	@test -x /usr/bin/chromium || { echo "Installing chromium (Debian), the browser of the web end-to-end tests"; \
		apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; } \
		|| echo "chromium could not be installed: the web end-to-end tests will be skipped"; }
	@test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || { \
		echo "Installing fonts-wqy-microhei (Debian), the TrueType CJK font embedded in PDF exports"; \
		apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q fonts-wqy-microhei; } \
		|| echo "fonts-wqy-microhei could not be installed: PDF exports will fail (or set HOTLINE_CJK_FONT)"; }
	@command -v pdftotext >/dev/null || { echo "Installing poppler-utils (Debian), the PDF reader of the export tests"; \
		apt-get install -y -q poppler-utils >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q poppler-utils; } \
		|| echo "poppler-utils could not be installed: the PDF export tests will be skipped"; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "12351 Hotline needs Python 3.11 or newer: run with PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# SeaweedFS (the S3 server of the storage tests, a 48 MB binary) first, checked against its pinned hashes:
	@# the dev extra names the same version and then finds it installed.
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-s3-test.txt
	$(BIN)/python -m pip install --quiet -e '.[dev,openai,diarization]'
	$(BIN)/python -m pip install --quiet --no-deps openai-whisper==20250625 pyannote.audio==4.0.7
	@# PyPI's torchaudio links CUDA libraries that the CPU torch lacks: drop its compiled extension (pyannote.audio
	@# only uses torchaudio's pure-Python resampling, Kaldi fbank and MFCC, which then load).
	$(BIN)/python -c 'import importlib.util as u, pathlib as p; \
		[f.unlink() for f in (p.Path(u.find_spec("torchaudio").origin).parent / "lib").glob("*.so")]'
	$(BIN)/python -c 'from asr.diarize_pyannote import import_pyannote; print("pyannote.audio", import_pyannote())'
	$(BIN)/python -c 'from asr.models import bundled_model_dir; from app.config import Settings; \
		print("Whisper base ready in", bundled_model_dir(Settings().models_dir))'
	touch $@

clean: ## Remove the virtualenv and the web build (data in ./var is kept)
	rm -rf $(VENV) web/node_modules web/dist
