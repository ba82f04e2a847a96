"""pyannote.audio diarization from a local weights directory (HOTLINE_DIARIZATION_DIR), on real pyannote code.

No pyannote weights ship on PyPI, so the tests make their own: a small PyanNet segmentation model (powerset,
three speakers, two at a time), a small x-vector embedding model and a PLDA, with random weights, saved the
way ``Model.from_pretrained`` reads them, and a ``config.yaml`` for pyannote.audio's ``SpeakerDiarization``
laid out like pyannote/speaker-diarization-community-1. Random weights find arbitrary speakers: these tests
check the structure of the result (sorted turns within the audio, S1… labels, the speaker count honoured,
conversions), not its accuracy. They load with the network blocked, so nothing can reach the hub.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import torch
from pyannote.core import Annotation, Segment

from asr.audio import decode
from asr.diarize import diarize
from asr.diarize_pyannote import import_pyannote, load_pipeline, read_config
from asr.engines import RawSegment
from asr.models import ModelError
from asr.turns import from_annotation, to_annotation, to_rttm
from asr.types import AsrOptions
from asr.worker import transcribe_channels
from tests.conftest import DATA

SESSION = DATA / "session_md01.wav"  # 26 s mediation session, 16 kHz mono
CONFIG = """\
dependencies:
  pyannote.audio: 4.0.0
pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: {clustering}
    segmentation: {segmentation}
    embedding: {embedding}
    plda: {plda}
    segmentation_step: 0.5
    segmentation_batch_size: 8
    embedding_batch_size: 8
    embedding_exclude_overlap: true
params:
{params}
"""
VBX = "  clustering: {threshold: 0.6, Fa: 0.07, Fb: 0.8}\n  segmentation: {min_duration_off: 0.0}"
AHC = "  clustering: {method: centroid, min_cluster_size: 2, threshold: 0.7}\n  segmentation: {min_duration_off: 0.0}"


def _save(model: Any, path: Path) -> None:
    """A checkpoint as Lightning's trainer writes one (with pyannote.audio's own entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)


def make_weights(root: Path) -> None:
    """segmentation/, embedding/ and plda/ under root, small and random (seeded)."""
    import_pyannote()
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)
    segmentation = PyanNet(lstm={"hidden_size": 16, "num_layers": 1, "monolithic": True},
                           linear={"hidden_size": 16, "num_layers": 1})
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=5.0,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2, permutation_invariant=True)
    segmentation.setup()  # adds the classifier for these specifications
    with torch.no_grad():  # powerset classes: silence, 3 single speakers, 3 pairs; favour single speakers
        segmentation.classifier.bias.copy_(torch.tensor([0.0, 1.5, 1.0, 0.5, -3.0, -3.0, -3.0]))
    _save(segmentation, root / "segmentation" / "pytorch_model.bin")

    embedding = XVectorMFCC(mfcc={"melkwargs": {"n_mels": 40}}, dimension=32)
    embedding.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                              duration=5.0)
    embedding.setup()
    _save(embedding, root / "embedding" / "pytorch_model.bin")

    rng = np.random.default_rng(0)
    (root / "plda").mkdir()
    lda = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    np.savez(root / "plda" / "xvec_transform.npz", mean1=np.zeros(32), mean2=np.zeros(32), lda=lda)
    np.savez(root / "plda" / "plda.npz", mu=np.zeros(32), tr=np.eye(32), psi=np.linspace(2.0, 0.5, 32))


def write_config(root: Path, clustering: str = "VBxClustering", segmentation: str = "$model/segmentation",
                 embedding: str = "$model/embedding", plda: str = "$model/plda") -> Path:
    params = VBX if clustering == "VBxClustering" else AHC
    (root / "config.yaml").write_text(CONFIG.format(clustering=clustering, segmentation=segmentation,
                                                    embedding=embedding, plda=plda, params=params))
    return root


class NetworkBlocked:
    """Every outgoing connection or name lookup fails, and is remembered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[str] = []
        for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                            (socket, "create_connection"), (socket, "getaddrinfo")):
            monkeypatch.setattr(owner, name, self._refuse(name))

    def _refuse(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.attempts.append(f"{name}{args[1:] if name.startswith('connect') else args}")
            raise OSError("network blocked by the test")
        return refuse


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A community-1-like directory, its pipeline loaded with the network blocked."""
    root = write_config(tmp_path_factory.mktemp("diarization"))
    make_weights(root)
    with pytest.MonkeyPatch.context() as mp:
        blocked = NetworkBlocked(mp)
        pipeline = load_pipeline(root)
    assert blocked.attempts == []
    assert type(pipeline).__name__ == "SpeakerDiarization" and type(pipeline.clustering).__name__ == "VBxClustering"
    yield root


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return decode(SESSION)[0]


def test_loaded_offline_with_telemetry_off(weights: Path) -> None:
    import huggingface_hub.constants
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "0" and not is_metrics_enabled()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE
    assert load_pipeline(weights) is load_pipeline(weights)  # once per process


def _assert_well_formed(turns: list[Any], duration: float, most: int) -> None:
    assert turns, "random weights still find speech in a 26 s session"
    assert all(0 <= t.start < t.end <= duration for t in turns)
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:], strict=False))  # sorted, one at a time
    first_seen = list(dict.fromkeys(t.speaker for t in turns))
    assert first_seen == [f"S{i}" for i in range(1, len(first_seen) + 1)] and len(first_seen) <= most


@pytest.fixture(scope="module")
def estimated(weights: Path, audio: np.ndarray) -> list[Any]:
    return diarize(audio, None, weights)


@pytest.mark.parametrize("num_speakers", [None, 2])
def test_session_turns(weights: Path, audio: np.ndarray, estimated: list[Any], num_speakers: int | None) -> None:
    duration = len(audio) / 16000
    with pytest.MonkeyPatch.context() as mp:
        blocked = NetworkBlocked(mp)
        turns = diarize(audio, num_speakers, weights) if num_speakers else estimated
    assert blocked.attempts == []
    _assert_well_formed(turns, duration, num_speakers or 6)
    annotation = to_annotation(turns, "MD01")
    assert sorted(annotation.labels()) == sorted({t.speaker for t in turns})
    assert from_annotation(annotation, duration) == turns
    lines = to_rttm(turns, "MD01").splitlines()
    assert len(lines) == len(turns) and all(line.startswith("SPEAKER MD01 1 ") for line in lines)


def test_silence_and_nothing(weights: Path) -> None:
    assert diarize(np.zeros(0, dtype=np.float32), None, weights) == []
    turns = diarize(np.zeros(16000 * 3, dtype=np.float32), 1, weights)
    assert all(t.speaker == "S1" and 0 <= t.start < t.end <= 3 for t in turns)


def test_worker_uses_pyannote_for_single_microphone(weights: Path, audio: np.ndarray, estimated: list[Any]) -> None:
    """The worker decodes each pyannote turn (a stand-in for Whisper records what it was asked to decode)."""

    class Regions:
        name, model_dir = "regions", Path("regions")

        def __init__(self) -> None:
            self.asked: list[list[tuple[float, float]]] = []

        def transcribe_channels(self, channels: list[np.ndarray],
                                regions: list[list[tuple[float, float]]] | None = None) -> list[list[RawSegment]]:
            assert regions is not None and len(channels) == 1
            self.asked = regions
            return [[RawSegment(s, e, "工资一直没有发") for s, e in regions[0]]]

    engine = Regions()
    result = transcribe_channels([audio], AsrOptions(layout="mono", diarization_dir=weights), engine)
    assert engine.asked[0] == [(t.start, t.end) for t in estimated]
    assert result.segments and {s.speaker for s in result.segments} <= {f"S{i}" for i in range(1, 7)}


def test_relative_and_absolute_paths(weights: Path, tmp_path: Path) -> None:
    """A 3.1-style config: checkpoint files named by path (relative to the directory, or absolute)."""
    for name in ("segmentation", "plda"):
        (tmp_path / name).symlink_to(weights / name)
    write_config(tmp_path, "AgglomerativeClustering", segmentation="segmentation/pytorch_model.bin",
                 embedding=str(weights / "embedding" / "pytorch_model.bin"), plda="plda")
    params = read_config(tmp_path)["pipeline"]["params"]
    assert params["segmentation"] == {"checkpoint": str(weights / "segmentation" / "pytorch_model.bin")}
    assert params["embedding"] == {"checkpoint": str(weights / "embedding" / "pytorch_model.bin")}
    assert type(load_pipeline(tmp_path).clustering).__name__ == "AgglomerativeClustering"


def test_from_annotation_clips_orders_and_renames() -> None:
    annotation = Annotation()
    annotation[Segment(5.0, 7.0)] = "SPEAKER_00"
    annotation[Segment(-0.5, 2.0)] = "SPEAKER_01"
    annotation[Segment(2.0, 4.0)] = "SPEAKER_00"
    annotation[Segment(9.5, 11.0)] = "SPEAKER_02"
    annotation[Segment(10.5, 12.0)] = "SPEAKER_01"  # entirely past the end
    turns = from_annotation(annotation, duration=10.0)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 2.0, "S1"), (2.0, 4.0, "S2"), (5.0, 7.0, "S2"),
                                                           (9.5, 10.0, "S3")]


def _error(directory: Path) -> str:
    with pytest.raises(ModelError) as caught:
        diarize(np.zeros(16000, dtype=np.float32), None, directory)
    assert "HOTLINE_DIARIZATION_DIR" in str(caught.value)
    return str(caught.value)


def test_missing_directory(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "absent")


def test_no_config(tmp_path: Path) -> None:
    assert "No config.yaml" in _error(tmp_path)


def test_hub_name_is_refused_not_downloaded(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = NetworkBlocked(monkeypatch)
    write_config(tmp_path, segmentation="pyannote/segmentation-3.0", embedding=str(weights / "embedding"),
                 plda=str(weights / "plda"))
    assert "'pyannote/segmentation-3.0' is not in" in _error(tmp_path)
    write_config(tmp_path, segmentation=str(weights / "segmentation"), embedding=str(weights / "embedding"), plda="")
    assert "pipeline.params.plda must name" in _error(tmp_path)
    assert blocked.attempts == []


def test_unloadable_checkpoint(weights: Path, tmp_path: Path) -> None:
    (tmp_path / "segmentation").mkdir()
    (tmp_path / "segmentation" / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    write_config(tmp_path, embedding=str(weights / "embedding"), plda=str(weights / "plda"))
    assert "cannot load the pipeline" in _error(tmp_path)
    (tmp_path / "config.yaml").write_text("pipeline: [")
    assert "cannot be read" in _error(tmp_path)


def test_setting_reaches_asr_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import Settings
    from app.transcripts.flows import asr_options

    monkeypatch.setenv("HOTLINE_DIARIZATION_DIR", str(tmp_path))
    assert asr_options(Settings(), "mono").diarization_dir == tmp_path
    monkeypatch.delenv("HOTLINE_DIARIZATION_DIR")
    assert asr_options(Settings(), "mono").diarization_dir is None


def test_worker_reports_a_broken_directory_at_startup(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The worker loads the pipeline before taking jobs, so a wrong setting is in the log at once."""
    import logging

    from app.cli import _preload_model
    from app.config import Settings

    settings = Settings(data_dir=tmp_path / "var", diarization_dir=tmp_path / "missing")
    settings.ensure_dirs()
    with caplog.at_level(logging.ERROR, logger="hotline.worker"):
        _preload_model(settings)
    assert "Diarization weights directory not found" in caplog.text


def test_bench_says_what_to_set(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SESSION, corpus / "MD01.wav")
    shutil.copy(DATA / "truth_MD01.json", corpus / "MD01.json")
    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path / "var"), "HOTLINE_DIARIZATION_DIR": str(tmp_path / "no")}
    out = subprocess.run([sys.executable, "-m", "app.cli", "bench", "asr", str(corpus), "--no-openai"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "HOTLINE_DIARIZATION_DIR" in out.stderr and "Traceback" not in out.stderr
