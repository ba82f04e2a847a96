"""Live decoding: endpointing, early finals, stable partials, finals before partials; and the real model on
a real call leg."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from asr.stream import LiveDecoder, LiveLeg, LiveText, StreamOptions
from telephony import g711

DATA = Path(__file__).resolve().parent.parent / "data"
RATE = 8000


def tone(seconds: float, level: float = 0.2) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 300 * t) * level * 32767).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


class Recorder:
    """A decode function that says how long each clip was, and remembers what it was asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[float]] = []
        self.events: list[LiveText] = []
        self.gate = threading.Event()
        self.gate.set()

    def decode(self, clips: list[np.ndarray]) -> list[str]:
        self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append([len(c) / 16000 for c in clips])
        return [f"话{len(c) // 1600}" for c in clips]

    def emit(self, text: LiveText) -> None:
        self.events.append(text)


def feed(leg: LiveLeg, pcm: bytes, start: float, chunk: float = 0.1) -> float:
    step = int(chunk * RATE) * 2
    for i in range(0, len(pcm), step):
        leg.feed(pcm[i:i + step], start + i / 2 / RATE)
    return start + len(pcm) / 2 / RATE


def wait_idle(decoder: LiveDecoder) -> None:
    deadline = time.monotonic() + 5
    while not decoder.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)


def test_utterances_are_cut_at_pauses_and_get_one_final_each() -> None:
    r = Recorder()
    decoder = LiveDecoder(r.decode, r.emit)
    leg = LiveLeg("c1", "caller", RATE, decoder, StreamOptions(partial_every=100))
    t = feed(leg, quiet(0.5), 0.0)
    t = feed(leg, tone(1.0), t)
    t = feed(leg, quiet(0.3), t)  # a short pause: same utterance
    t = feed(leg, tone(1.0), t)
    feed(leg, quiet(1.0), t)
    wait_idle(decoder)
    finals = [e for e in r.events if e.kind == "final"]
    assert len(finals) == 1
    f = finals[0]
    assert (f.call_id, f.role, f.utterance) == ("c1", "caller", 0)
    assert f.start == pytest.approx(0.5 - 0.2, abs=0.06)  # 200 ms of audio before the speech
    assert f.end == pytest.approx(2.8 + 0.2, abs=0.06)  # 200 ms after the last speech
    decoder.close()


def test_early_final_is_voided_when_the_speaker_goes_on() -> None:
    r = Recorder()
    decoder = LiveDecoder(r.decode, r.emit)
    leg = LiveLeg("c1", "agent", RATE, decoder, StreamOptions(partial_every=100, speculate_after=0.2,
                                                               endpoint_silence=0.6))
    t = feed(leg, tone(1.0), 0.0, chunk=0.02)
    t = feed(leg, quiet(0.4), t, chunk=0.02)  # an early final starts here …
    wait_idle(decoder)
    t = feed(leg, tone(1.0), t, chunk=0.02)  # … and is void: the speaker went on
    feed(leg, quiet(1.0), t, chunk=0.02)
    wait_idle(decoder)
    finals = [e for e in r.events if e.kind == "final"]
    assert len(finals) == 1 and finals[0].end == pytest.approx(2.4 + 0.2, abs=0.06)
    assert len(r.batches) == 2  # the void early final was decoded, but never sent
    decoder.close()


def test_partials_come_while_speaking_and_their_stable_prefix_never_shrinks() -> None:
    texts = iter(["我们公司", "我们公司拖", "我们公司拖欠工资", "我们公司拖欠工资两个月", "x"])
    events: list[LiveText] = []
    decoder = LiveDecoder(lambda clips: [next(texts) for _ in clips], events.append)
    leg = LiveLeg("c1", "caller", RATE, decoder, StreamOptions(partial_every=0.5, endpoint_silence=5))
    t = 0.0
    for _ in range(4):
        t = feed(leg, tone(0.5), t, chunk=0.02)
        wait_idle(decoder)
    partials = [e for e in events if e.kind == "partial"]
    assert [p.text for p in partials] == ["我们公司", "我们公司拖", "我们公司拖欠工资", "我们公司拖欠工资两个月"]
    stables = [p.stable for p in partials]
    assert stables == ["", "我们公司", "我们公司拖", "我们公司拖欠工资"]
    assert all(b.startswith(a) for a, b in zip(stables, stables[1:], strict=False))
    decoder.close()


def test_finals_go_before_waiting_partials() -> None:
    r = Recorder()
    r.gate.clear()  # hold the decoder while work piles up
    decoder = LiveDecoder(r.decode, r.emit)
    legs = [LiveLeg("c1", f"leg{i}", RATE, decoder, StreamOptions(partial_every=0.3)) for i in range(3)]
    ends = [feed(leg, tone(1.0), 0.0) for leg in legs[:2]]
    deadline = time.monotonic() + 5
    while decoder.busy == 0 and time.monotonic() < deadline:  # the decoder holds a batch of partials
        time.sleep(0.01)
    for leg, end in zip(legs[:2], ends, strict=True):
        feed(leg, tone(1.0), end)  # more partials wait behind it
    t = feed(legs[2], tone(1.0), 0.0)
    feed(legs[2], quiet(0.8), t)  # this one ends: its final must be decoded first
    time.sleep(0.1)
    r.gate.set()
    wait_idle(decoder)
    # the batch the decoder held when the final came was partials; the next one is the final, alone
    held = len(r.batches[0])
    kinds = [e.kind for e in r.events]
    assert kinds[:held] == ["partial"] * held
    assert len(r.batches[1]) == 1 and kinds[held] == "final"
    assert kinds.count("partial") > held  # the other legs' partials were decoded after it
    decoder.close()


@pytest.mark.slow
def test_real_model_live_text_of_a_call_leg(tmp_path: Path) -> None:
    """D03's caller, fed in 100 ms chunks (faster than real time, so partials are superseded by the final;
    partials in real time are covered end to end in tests/telephony/test_serve_call.py)."""
    from app.config import Settings
    from app.transcripts.flows import asr_options
    from asr.engines.faster_whisper import FasterWhisperEngine
    from asr.lexicon import default_corrector
    from asr.models import resolve_model_dir

    settings = Settings()
    options = asr_options(settings, "caller-left")
    engine = FasterWhisperEngine(resolve_model_dir(None, settings.models_dir), options, workers=2)
    events: list[LiveText] = []
    decoder = LiveDecoder(lambda clips: engine.decode_clips(clips, 1), events.append,
                          corrector=default_corrector(), threads=2)
    leg = LiveLeg("d03", "caller", RATE, decoder)
    pcm = g711.decode((DATA / "d03_caller_11s.ulaw").read_bytes(), g711.PCMU)
    feed(leg, pcm, 0.0)
    leg.flush()
    deadline = time.monotonic() + 60
    while not decoder.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    decoder.close()
    text = "".join(e.text for e in events if e.kind == "final")
    assert all(w in text for w in ("青岛", "有限公司", "派到黄岛", "不要我们了"))  # greedy: 联创 may come out 联策
