"""Recording on disk: one WAV per leg written as audio arrives, and the stereo file made at call end.

Crash safety: every ``flush`` (the adapter calls it at least once a second) writes the buffered audio and
rewrites the WAV header's sizes, so after a ``kill -9`` the leg file is a valid WAV holding everything up
to the last flush. The call's folder also holds ``call.json`` (who, when, which legs start when), so the
next start of the adapter files calls that were cut off (``telephony.filing.recover``).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGS = ("caller", "agent")


class WavWriter:
    """16-bit PCM WAV that is valid on disk after every ``flush``."""

    def __init__(self, path: Path, *, sample_rate: int = 8000, channels: int = 1) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.data_bytes = 0
        self._f: BinaryIO = path.open("wb")
        self._f.write(self._header())
        self._f.flush()

    def _header(self) -> bytes:
        block = 2 * self.channels
        return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + self.data_bytes, b"WAVE", b"fmt ", 16, 1,
                           self.channels, self.sample_rate, self.sample_rate * block, block, 16, b"data",
                           self.data_bytes)

    def write(self, pcm: bytes) -> None:
        if pcm:
            self._f.write(pcm)
            self.data_bytes += len(pcm)

    def pad_to(self, samples: int) -> None:
        """Silence up to ``samples`` per channel (an agent leg that said nothing after its greeting)."""
        missing = samples * 2 * self.channels - self.data_bytes
        if missing > 0:
            self.write(bytes(missing))

    @property
    def samples(self) -> int:
        return self.data_bytes // (2 * self.channels)

    def flush(self) -> None:
        self._f.seek(0)
        self._f.write(self._header())
        self._f.seek(0, os.SEEK_END)
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()


@dataclass
class CallManifest:
    """``call.json`` in the call's folder: enough to file the call even if the adapter died mid-call."""

    call_id: str  # ours (a uuid); the folder name
    source: str  # sip | siprec | twilio | fork | browser
    external_id: str = ""  # SIP Call-ID, Twilio callSid/streamSid, …
    caller: str = ""
    called: str = ""
    channel: str = "来电"  # CaseChannel value
    started_at: float = 0.0  # unix time
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    layout: str = "caller-left"  # caller-left (stereo) or mono (one microphone)
    sample_rate: int = 8000
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # hold/resume and the like
    actor: str = "telephony"
    owner: str = ""  # host:pid of the process recording it; recovery files only calls whose owner died

    def save(self, folder: Path) -> None:
        tmp = folder / "call.json.tmp"
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False))
        os.replace(tmp, folder / "call.json")

    @classmethod
    def load(cls, folder: Path) -> CallManifest:
        return cls(**json.loads((folder / "call.json").read_text()))


def process_owner() -> str:
    """``host:pid`` of this process: recovery files a call only once the process recording it is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


def leg_offset(folder: Path, leg: str) -> float:
    """Seconds after the call started at which the leg's first sample was heard (``LEG.offset``)."""
    try:
        return max(0.0, float((folder / f"{leg}.offset").read_text()))
    except (OSError, ValueError):
        return 0.0


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples (int16) and rate of a leg file, tolerating a header whose sizes lag the data (crash)."""
    if not path.exists() or path.stat().st_size < 44:
        return np.zeros(0, dtype="<i2"), 8000
    raw = path.read_bytes()
    rate = struct.unpack_from("<I", raw, 24)[0]
    data = raw[44:]
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2"), rate


def mix(folder: Path, manifest: CallManifest, out: Path) -> float:
    """Write the call's file: stereo (left = caller, right = agent) aligned by each leg's offset, or the
    single ``room`` leg as mono. Returns the duration in seconds."""
    rate = manifest.sample_rate
    if manifest.layout == "mono":
        samples, rate = read_wav(folder / "room.wav")
        channels = [samples]
    else:
        channels = []
        for leg in LEGS:
            samples, _ = read_wav(folder / f"{leg}.wav")
            lead = round(leg_offset(folder, leg) * rate)
            channels.append(np.concatenate([np.zeros(max(0, lead), dtype="<i2"), samples]))
    length = max(len(c) for c in channels)
    stacked = np.zeros((length, len(channels)), dtype="<i2")
    for i, c in enumerate(channels):
        stacked[: len(c), i] = c
    with wave.open(str(out), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stacked.tobytes())
    return length / rate
