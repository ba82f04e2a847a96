"""Speakers of single-microphone sessions (walk-in visits, mediation, hearings).

Calls need none of this: each party is on its own channel. For one microphone there are two diarizers, both
returning speaker turns (S1, S2, … in order of first speaking), convertible to a pyannote.core ``Annotation``
or RTTM; the number of speakers is given, or estimated (up to six).

The embedded default needs no downloaded weights: speech regions from VAD are cut into 1.5 s windows (0.25 s
apart), each described by the mean and spread of its MFCCs (from Whisper's own log-mel features), the windows
are clustered (Ward), and every 10 ms frame takes the speaker most of its windows voted for. The number of
speakers, when not given, is taken where the clustering's merge cost jumps most.

pyannote.audio's speaker-diarization pipeline runs instead when ``weights_dir`` (``HOTLINE_DIARIZATION_DIR``)
names a local pipeline directory: ``config.yaml`` plus the segmentation, embedding and PLDA checkpoints it
names (as ``$model/segmentation``, a path relative to the directory, or an absolute path), e.g. a copy of
pyannote/speaker-diarization-community-1. It loads on the CPU with its telemetry off and the Hugging Face hub
switched off; a directory that is missing or does not load is a ``ModelError``, never a silent fallback or a
download (asr/diarize_pyannote.py).

Measured with ``hotline bench asr`` (DER, pyannote.metrics, 0.25 s collar) on the dev mediation session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.fft import dct

from asr.engines import utterances
from asr.turns import MAX_SPEAKERS, SpeakerTurn

FPS = 100  # Whisper's feature frames per second
_WINDOW_S, _HOP_S = 1.5, 0.25
_features = FeatureExtractor()


def _windows(mfcc: np.ndarray, regions: list[tuple[float, float]]) -> tuple[list[tuple[int, int]], np.ndarray]:
    spans, feats = [], []
    for start, end in regions:
        t = start
        while True:
            stop = min(t + _WINDOW_S, end)
            a, b = int(t * FPS), max(int(stop * FPS), int(t * FPS) + 1)
            window = mfcc[:, a:b]
            spans.append((a, b))
            feats.append(np.concatenate([window.mean(1), window.std(1)]))
            if stop >= end:
                break
            t += _HOP_S
    x = np.array(feats)
    return spans, (x - x.mean(0)) / (x.std(0) + 1e-6)


def _estimate_count(heights: np.ndarray, n: int) -> int:
    """k where going from k to k-1 clusters costs much more than from k+1 to k."""
    top = min(MAX_SPEAKERS, n - 1)
    if top < 2:
        return 1
    merges = heights[::-1]  # merges[0]: 2 → 1, merges[1]: 3 → 2, …
    ratios = {k: merges[k - 2] / max(merges[k - 1], 1e-9) for k in range(2, top + 1)}
    return max(ratios, key=lambda k: ratios[k])


def diarize(audio: np.ndarray, num_speakers: int | None = None, weights_dir: Path | None = None) -> list[SpeakerTurn]:
    """Speaker turns of a mono recording (16 kHz float32): pyannote.audio from ``weights_dir`` when it is set
    (asr.models.ModelError if it cannot be used), else the embedded default."""
    if weights_dir is not None:
        from asr.diarize_pyannote import diarize as pyannote_diarize

        return pyannote_diarize(audio, num_speakers, weights_dir)
    return _embedded(audio, num_speakers)


def _embedded(audio: np.ndarray, num_speakers: int | None) -> list[SpeakerTurn]:
    regions = utterances(audio)
    if not regions:
        return []
    mfcc = dct(_features(audio), axis=0, norm="ortho")[1:20]
    spans, x = _windows(mfcc, regions)
    if len(spans) < 2 or num_speakers == 1:
        return [SpeakerTurn(s, e, "S1") for s, e in regions]
    tree = linkage(x, "ward")
    k = min(num_speakers or _estimate_count(tree[:, 2], len(spans)), len(spans))
    labels = fcluster(tree, k, "maxclust")
    frames = mfcc.shape[1]
    votes = np.zeros((frames, k + 1))
    for (a, b), label in zip(spans, labels, strict=True):
        votes[a:b, label] += 1
    return _turns(votes)


def _turns(votes: np.ndarray) -> list[SpeakerTurn]:
    speech = votes.sum(1) > 0
    winner = np.where(speech, votes.argmax(1), -1)
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    start = 0
    for i in range(1, len(winner) + 1):
        if i < len(winner) and winner[i] == winner[start]:
            continue
        if winner[start] != -1:
            name = names.setdefault(int(winner[start]), f"S{len(names) + 1}")
            turns.append(SpeakerTurn(round(start / FPS, 2), round(i / FPS, 2), name))
        start = i
    return turns
