"""pyannote.audio's speaker-diarization pipeline from a local weights directory (``HOTLINE_DIARIZATION_DIR``).

The directory holds ``config.yaml`` (pyannote.audio's ``SpeakerDiarization`` pipeline and its parameters) and
the checkpoints it names under ``pipeline.params``: ``segmentation`` and ``embedding`` (``pytorch_model.bin``
files, or folders holding one) and ``plda`` (a folder with ``xvec_transform.npz`` and ``plda.npz``; pyannote.audio
4 loads it whatever the clustering). Each is written ``$model/NAME`` (as in a copy of
pyannote/speaker-diarization-community-1), as a path relative to the directory, or as an absolute path: all
are resolved here, and anything else (a hub name such as ``pyannote/segmentation-3.0``) is refused, so nothing
is ever downloaded. Telemetry is off (``PYANNOTE_METRICS_ENABLED=0``) and the Hugging Face hub offline
(``HF_HUB_OFFLINE=1``) before pyannote.audio is imported. The pipeline is loaded once per process, on the CPU.

Audio reaches pyannote.audio in memory (16 kHz float32 tensor), so its file decoding (torchcodec) is not used
and not installed.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from asr.audio import SAMPLE_RATE
from asr.models import ModelError
from asr.turns import MAX_SPEAKERS, SpeakerTurn, from_annotation

log = logging.getLogger(__name__)

CHECKPOINTS = ("segmentation", "embedding", "plda")  # pipeline.params entries that name local weights
_HOWTO = (
    "Set HOTLINE_DIARIZATION_DIR to a local pyannote.audio pipeline directory: config.yaml naming its "
    "segmentation, embedding and plda checkpoints inside it (e.g. a copy of pyannote/speaker-diarization-community-1), "
    "or unset it to use the embedded diarizer."
)
_pipelines: dict[Path, Any] = {}
_lock = threading.Lock()  # one load at a time; one run at a time (each already uses every core)


def import_pyannote() -> str:
    """Import pyannote.audio with its telemetry off and the hub offline; its version."""
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported (faster-whisper usually imported it already).
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        with warnings.catch_warnings():
            # torchcodec (file decoding) is left out on purpose: audio is passed in memory.
            warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed correctly")
            import pyannote.audio
    except ImportError as e:
        raise ModelError(f"pyannote.audio cannot be imported ({e}): `make setup` installs it. {_HOWTO}") from e
    return str(pyannote.audio.__version__)


def read_config(directory: Path) -> dict[str, Any]:
    """config.yaml of the directory, with every checkpoint resolved to a local path (ModelError otherwise)."""
    if not directory.is_dir():
        raise ModelError(f"Diarization weights directory not found: {directory}. {_HOWTO}")
    path = directory / "config.yaml"
    if not path.is_file():
        raise ModelError(f"No config.yaml in the diarization weights directory {directory}. {_HOWTO}")
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ModelError(f"{path} cannot be read: {e}. {_HOWTO}") from e
    params = config.get("pipeline", {}).get("params") if isinstance(config, dict) else None
    if not isinstance(params, dict):
        raise ModelError(f"{path} has no pipeline.params. {_HOWTO}")
    for key in CHECKPOINTS:
        params[key] = {"checkpoint": str(_local_checkpoint(directory, key, params.get(key)))}
    config.pop("device", None)  # always the CPU
    return config


def _local_checkpoint(directory: Path, key: str, ref: object) -> Path:
    if not isinstance(ref, str) or not ref:
        raise ModelError(f"{directory / 'config.yaml'}: pipeline.params.{key} must name its checkpoint in the "
                         f"directory (e.g. {key}: $model/{key}). {_HOWTO}")
    candidate = directory / ref.removeprefix("$model/")  # an absolute path stays as it is
    if not candidate.exists():
        raise ModelError(f"{directory / 'config.yaml'}: {key} {ref!r} is not in {directory} "
                         f"(nothing is downloaded). {_HOWTO}")
    return candidate.resolve()


def load_pipeline(directory: Path) -> Any:
    """The pipeline of this directory, loaded once per process (ModelError if it cannot be)."""
    key = directory.absolute()
    with _lock:
        if key not in _pipelines:
            _pipelines[key] = _load(directory)
        return _pipelines[key]


def _load(directory: Path) -> Any:
    config = read_config(directory)
    import_pyannote()
    import torch
    from pyannote.audio import Pipeline

    try:
        with _warnings_logged():
            pipeline = Pipeline.from_pretrained(config)
    except Exception as e:  # whatever pyannote.audio raises, the operator must fix the directory
        raise ModelError(f"pyannote.audio cannot load the pipeline in {directory}: {e}. {_HOWTO}") from e
    if pipeline is None:
        raise ModelError(f"pyannote.audio found no pipeline in {directory}. {_HOWTO}")
    return pipeline.to(torch.device("cpu"))


def diarize(audio: np.ndarray, num_speakers: int | None, directory: Path) -> list[SpeakerTurn]:
    """Speaker turns of a mono 16 kHz float32 recording; the count given, else estimated from 1 to 6."""
    pipeline = load_pipeline(directory)
    if audio.size == 0:
        return []
    import torch

    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).unsqueeze(0)
    counts = {"num_speakers": num_speakers} if num_speakers else {"min_speakers": 1, "max_speakers": MAX_SPEAKERS}
    with _lock, _warnings_logged():
        output = pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": "session"}, **counts)
    # exclusive: one speaker at a time, as each turn is transcribed on its own (legacy pipelines: an Annotation)
    annotation = getattr(output, "exclusive_speaker_diarization", output)
    return from_annotation(annotation, len(audio) / SAMPLE_RATE)


@contextmanager
def _warnings_logged() -> Iterator[None]:
    """pyannote.audio's warnings (e.g. fewer speakers found than asked for) go to the log, once each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for message in dict.fromkeys(str(w.message).strip() for w in caught):
                log.warning("pyannote.audio: %s", message)
