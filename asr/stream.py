"""Live decoding for calls in progress: utterance by utterance, partial text while someone speaks.

Per leg (one party of one call) a ``LiveLeg`` follows the audio as it arrives:

* **Endpointing**: 20 ms frames are speech when their level is well above the leg's noise floor (telephone
  legs are one person each, so energy is a sound detector here). Speech of 100 ms opens an utterance
  (with 200 ms of audio before it); ``endpoint_silence`` of quiet closes it; an utterance longer than
  ``max_utterance`` is closed where it stands.
* **Finals start early**: after ``speculate_after`` of quiet the utterance's final audio is already known
  (it ends 200 ms after the last speech), so its decode starts then, while the endpoint is still being
  confirmed. If the speaker goes on, that result is thrown away; if not, it is sent the moment the
  endpoint is confirmed (or the moment it is ready). The wait for the endpoint and the decode overlap.
* **Partials**: while an utterance is open, its audio so far is decoded every ``partial_every`` seconds.
  What the last two hypotheses agree on (their common prefix) is committed and never taken back, so the
  text the staff member has read does not keep changing; the rest is shown as provisional.

One ``LiveDecoder`` serves every leg of every call: decoding threads (one per core) take whatever is
waiting, finals first, and decode it as one batch (one encoder pass over all pending utterances, each in a
window of its own length); the first thread decodes finals only, so a final never queues behind a
partial. A newer partial of a leg replaces one still waiting, and partials wait while finals are due, so
when the machine is saturated partials thin out and finals keep their pace. Nothing here blocks the
caller: ``feed`` only appends audio and queues work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.signal import resample_poly

from asr import mandarin
from asr.lexicon import Corrector

log = logging.getLogger("hotline.live")

FRAME_S = 0.02
SPEECH_START_S = 0.1
PRE_ROLL_S = 0.2
WHISPER_RATE = 16000


@dataclass(frozen=True)
class StreamOptions:
    endpoint_silence: float = 0.5  # seconds of quiet that end an utterance
    speculate_after: float = 0.2  # seconds of quiet after which the final decode starts
    partial_every: float = 0.6  # seconds of audio between partial decodes (updates well within a second)
    max_utterance: float = 20.0
    min_level: float = 0.004  # RMS (full scale 1.0) below which nothing is speech
    floor_ratio: float = 3.0  # speech: RMS this many times the leg's noise floor
    batch: int = 8


@dataclass(frozen=True)
class LiveText:
    """What a decode produced for one utterance of one leg."""

    kind: Literal["partial", "final"]
    call_id: str
    role: str
    utterance: int
    start: float  # seconds since the call started
    end: float
    text: str  # partial: the whole hypothesis (stable prefix included); final: the utterance's text
    stable: str = ""  # partial: the committed prefix


Emit = Callable[[LiveText], None]


@dataclass
class _Job:
    kind: Literal["partial", "final"]
    leg: LiveLeg
    utterance: int
    start: float
    end: float
    audio: np.ndarray  # float32 at 16 kHz
    attempt: int = 0  # finals: which early start this is (a later one replaces it)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class _Final:
    """The final of one utterance: decoded early, sent once the endpoint is confirmed."""

    job: _Job
    text: str | None = None  # set when decoded
    confirmed: bool = False  # the endpoint has been reached


class LiveLeg:
    """Endpointing and partial scheduling for one party of one call (see the module docstring)."""

    def __init__(self, call_id: str, role: str, sample_rate: int, decoder: LiveDecoder,
                 options: StreamOptions | None = None) -> None:
        self.call_id = call_id
        self.role = role
        self.rate = sample_rate
        self.decoder = decoder
        self.opts = options or StreamOptions()
        self.frame = int(FRAME_S * sample_rate)
        self.floor: float | None = None  # the leg's noise level (RMS)
        self.pending = np.zeros(0, dtype=np.float32)  # audio not yet cut into frames
        self.pending_start = 0.0  # call time of pending[0]
        self.recent: list[np.ndarray] = []  # pre-roll frames while quiet
        self.utterance: list[np.ndarray] | None = None
        self.utt_start = 0.0
        self.utt_index = 0
        self.speech_run = 0.0
        self.silence_run = 0.0
        self.last_speech_end = 0.0
        self.next_partial = 0.0
        self.hypotheses: list[str] = []
        self.committed = ""
        self.final: _Final | None = None  # the open utterance's early final, if started
        self.closed: list[_Final] = []  # finals of ended utterances still being decoded
        self.attempts = 0
        self.lock = threading.Lock()

    def feed(self, pcm: bytes, start: float) -> None:
        """16-bit little-endian mono PCM whose first sample is at ``start`` seconds into the call."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if not len(self.pending):
            self.pending_start = start
        self.pending = np.concatenate([self.pending, samples])
        while len(self.pending) >= self.frame:
            frame, self.pending = self.pending[: self.frame], self.pending[self.frame:]
            self._frame(frame, self.pending_start)
            self.pending_start += FRAME_S

    def _frame(self, frame: np.ndarray, t: float) -> None:
        level = float(np.sqrt(np.mean(frame * frame)))
        if self.floor is None:  # a leg may open mid-word: never start the floor above speech
            self.floor = min(level, self.opts.min_level)
        elif level < self.floor:  # the floor follows quiet down quickly …
            self.floor = 0.8 * self.floor + 0.2 * level
        else:  # … and loud up slowly (about 30 % a second), so speech does not become the floor
            self.floor = min(level, self.floor * 1.005 + 1e-6)
        speech = level > max(self.opts.min_level, self.opts.floor_ratio * self.floor)
        if self.utterance is None:
            self._quiet(frame, t, speech)
        else:
            self._speaking(frame, t, speech)

    def _quiet(self, frame: np.ndarray, t: float, speech: bool) -> None:
        self.recent.append(frame)
        keep = int((PRE_ROLL_S + SPEECH_START_S) / FRAME_S) + 1
        del self.recent[:-keep]
        self.speech_run = self.speech_run + FRAME_S if speech else 0.0
        if self.speech_run >= SPEECH_START_S - 1e-9:
            self.utterance = list(self.recent)
            self.utt_start = max(0.0, t + FRAME_S - len(self.recent) * FRAME_S)
            self.recent = []
            self.silence_run = 0.0
            self.last_speech_end = t + FRAME_S
            self.next_partial = self.utt_start + self.opts.partial_every
            self.hypotheses, self.committed = [], ""

    def _speaking(self, frame: np.ndarray, t: float, speech: bool) -> None:
        assert self.utterance is not None
        self.utterance.append(frame)
        end = t + FRAME_S
        if speech:
            self.silence_run = 0.0
            self.last_speech_end = end
            with self.lock:
                self.final = None  # the speaker went on: an early final is void
        else:
            self.silence_run += FRAME_S
        if self.silence_run >= self.opts.endpoint_silence - 1e-9 or end - self.utt_start >= self.opts.max_utterance:
            self._close(end)
        elif not speech and self.final is None and self.silence_run >= self.opts.speculate_after - 1e-9:
            self._start_final()
        elif end >= self.next_partial and self.silence_run == 0.0:
            self.next_partial = end + self.opts.partial_every
            self.decoder.submit(self._job("partial", end))

    def _start_final(self) -> None:
        self.attempts += 1
        job = self._job("final", self.last_speech_end + 0.2)
        job.attempt = self.attempts
        with self.lock:
            self.final = _Final(job)
        self.decoder.submit(job)

    def _close(self, end: float) -> None:
        """End the utterance: confirm its early final (started now if it was not)."""
        if self.final is None or self.final.job.end > min(end, self.last_speech_end + 0.2) + 1e-6:
            self._start_final()
        assert self.final is not None
        with self.lock:  # emitted under the lock: ``pending_finals`` never reads "none" before it is sent
            final, self.final = self.final, None
            final.confirmed = True
            if final.text is None:
                self.closed.append(final)
            else:
                self.decoder.emit_final(final)
        self.utterance = None
        self.utt_index += 1
        self.speech_run = 0.0

    def decoded_final(self, job: _Job, text: str) -> None:
        """The decoder finished an early final: send it now if its endpoint is confirmed."""
        with self.lock:
            ready = next((f for f in self.closed if f.job is job), None)
            if ready is not None:
                ready.text = text
                self.decoder.emit_final(ready)
                self.closed.remove(ready)
            elif self.final is not None and self.final.job is job:
                self.final.text = text  # kept until the endpoint is confirmed

    def pending_finals(self) -> bool:
        """Whether an ended utterance's final is still to be sent (or the open one's)."""
        with self.lock:
            return bool(self.closed) or self.final is not None

    def flush(self) -> None:
        """The leg ended: an utterance still open is decoded as final."""
        if self.utterance is not None:
            self._close(self.last_speech_end + 0.2)

    def _job(self, kind: Literal["partial", "final"], end: float) -> _Job:
        assert self.utterance is not None
        audio = np.concatenate(self.utterance)[: max(1, int((end - self.utt_start) * self.rate))]
        if self.rate != WHISPER_RATE:
            audio = resample_poly(audio, WHISPER_RATE, self.rate).astype(np.float32)
        return _Job(kind, self, self.utt_index, round(self.utt_start, 2), round(end, 2), audio)

    def stabilize(self, hypothesis: str) -> tuple[str, str]:
        """(stable, text) for a new partial hypothesis: the prefix the last two agree on is committed."""
        self.hypotheses = [*self.hypotheses[-1:], hypothesis]
        if len(self.hypotheses) == 2:
            agreed = _common_prefix(*self.hypotheses)
            if len(agreed) > len(self.committed) and agreed.startswith(self.committed):
                self.committed = agreed
        rest = hypothesis[len(self.committed):] if hypothesis.startswith(self.committed) else \
            hypothesis[len(_common_prefix(self.committed, hypothesis)):]
        return self.committed, self.committed + rest


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


DecodeBatch = Callable[[list[np.ndarray]], list[str]]


class LiveDecoder:
    """One thread decoding batches of waiting utterances, finals first (see the module docstring)."""

    def __init__(self, decode_batch: DecodeBatch, emit: Emit, *, corrector: Corrector | None = None,
                 batch: int = 8, threads: int = 1, decode_finals: DecodeBatch | None = None) -> None:
        self.decode_batch = decode_batch
        self.decode_finals = decode_finals or decode_batch  # e.g. a wider beam: finals are what staff keep
        self.emit = emit
        self.corrector = corrector
        self.batch = batch
        self._finals: list[_Job] = []
        self._partials: dict[tuple[str, str], _Job] = {}  # newest per leg
        self._cond = threading.Condition()
        self._stop = False
        # with several threads the first takes finals only: a final never waits behind a long partial
        self._threads = [threading.Thread(target=self._run, args=(i == 0 and threads > 1,),
                                          name=f"live-decoder-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()
        self.decoded = 0
        self.busy = 0

    def submit(self, job: _Job) -> None:
        key = (job.leg.call_id, job.leg.role)
        with self._cond:
            if job.kind == "final":
                self._finals.append(job)
                self._partials.pop(key, None)  # the final supersedes any partial of the same leg
            else:
                self._partials[key] = job
            self._cond.notify_all()

    def _take(self, finals_only: bool) -> list[_Job]:
        with self._cond:
            while not self._stop and not self._finals and (finals_only or not self._partials):
                self._cond.wait()
            jobs = self._finals[: self.batch]
            del self._finals[: self.batch]
            if not jobs and not finals_only:  # partials only when no final is waiting
                for key in list(self._partials)[: self.batch]:
                    jobs.append(self._partials.pop(key))
            self.busy += bool(jobs)
            return jobs

    def _run(self, finals_only: bool) -> None:
        while True:
            jobs = self._take(finals_only)
            if not jobs:
                return
            try:
                decode = self.decode_finals if jobs[0].kind == "final" else self.decode_batch
                texts = decode([j.audio for j in jobs])
                self.decoded += len(jobs)
                for job, raw in zip(jobs, texts, strict=True):
                    self._deliver(job, raw)
            except Exception:
                log.exception("live decode failed for %d utterance(s)", len(jobs))
            finally:
                with self._cond:
                    self.busy -= 1

    def _deliver(self, job: _Job, raw: str) -> None:
        text = mandarin.clean(raw)
        if text and self.corrector:
            text, _ = self.corrector.correct(text)
        leg = job.leg
        if job.kind == "final":
            leg.decoded_final(job, text)
            return
        if job.utterance != leg.utt_index or leg.utterance is None:
            return  # that utterance has ended meanwhile: its final is on its way
        stable, shown = leg.stabilize(text)
        if shown:
            self.emit(LiveText("partial", leg.call_id, leg.role, job.utterance, job.start, job.end, shown, stable))

    def emit_final(self, final: _Final) -> None:
        job = final.job
        if final.text:
            leg = job.leg
            self.emit(LiveText("final", leg.call_id, leg.role, job.utterance, job.start, job.end, final.text))

    def close(self) -> None:
        """Finish what is queued, then stop the threads."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=60)

    def idle(self) -> bool:
        with self._cond:
            return not self._finals and not self._partials and not self.busy
