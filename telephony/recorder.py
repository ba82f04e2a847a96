"""Recording on disk: one file per leg written as audio arrives, and the stereo mix made at call end.

Each call's folder (``<data dir>/calls/<sip|ws>/<call uuid>/``) holds ``call.json`` (who, when, which legs
start when: ``CallManifest``), ``LEG.offset`` (when each leg's first sample was heard) and one file per
party, ``caller``, ``agent`` or ``room``:

- ``LEG.sealed`` when the call has a data key (the default: ``HOTLINE_ENCRYPT_RECORDINGS``): the audio is
  encrypted as it is written (``telephony.sealed``); ``call.json`` holds the key only wrapped by the site's
  master key. The folder never holds audio in clear, in progress or after a crash (the PCM since the last
  flush, a second at most, is in clear in the recording process's memory only).
- ``LEG.wav`` when it has none (encryption off): a 16-bit PCM WAV, in clear until the call is filed.

Crash safety: every ``flush`` (the recorders call it at least once a second) appends the audio buffered
since the last one (a sealed record, or the WAV bytes and the header's sizes rewritten), so after a
``kill -9`` the leg holds everything up to the last flush; the next start of the adapter files calls that
were cut off (``app.calls.flows.recover``). ``mix`` reads the legs back and writes the call's WAV (in clear)
to whatever the caller gives it: the app streams it straight into ingest, which seals it (``app.calls.flows``).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from telephony import sealed
from telephony.sealed import SealedError, SealedWriter

LEGS = ("caller", "agent")
ALL_LEGS = ("caller", "agent", "room")
SEALED = ".sealed"


class LegWriter(Protocol):
    """What the recorders write a leg with: ``WavWriter`` (in clear) or ``sealed.SealedWriter``."""

    path: Path
    data_bytes: int

    def write(self, pcm: bytes) -> None: ...

    def pad_to(self, samples: int) -> None: ...

    @property
    def samples(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


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
    key_id: str | None = None  # the master key that wraps the call's data key (None: legs in clear)
    wrapped_key: str | None = None  # base64 of the wrapped data key; the raw key is never on disk

    def save(self, folder: Path) -> None:
        tmp = folder / "call.json.tmp"
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False))
        os.replace(tmp, folder / "call.json")

    @classmethod
    def load(cls, folder: Path) -> CallManifest:
        return cls(**json.loads((folder / "call.json").read_text()))


KeyIssuer = Callable[[CallManifest], bytes]
"""Given to the recorders by the app: called when a call starts, before its ``call.json`` is first saved; fills
in the manifest's ``key_id``/``wrapped_key`` and returns the raw 32-byte data key its legs are sealed with."""


def process_owner() -> str:
    """``host:pid`` of this process: recovery files a call only once the process recording it is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


def leg_offset(folder: Path, leg: str) -> float:
    """Seconds after the call started at which the leg's first sample was heard (``LEG.offset``)."""
    try:
        return max(0.0, float((folder / f"{leg}.offset").read_text()))
    except (OSError, ValueError):
        return 0.0


def leg_path(folder: Path, leg: str, *, sealed: bool) -> Path:
    return folder / f"{leg}{SEALED if sealed else '.wav'}"


def open_leg(folder: Path, leg: str, *, call_id: str, data_key: bytes | None, sample_rate: int = 8000) -> LegWriter:
    """A new leg file: sealed under ``data_key`` (``LEG.sealed``), or a WAV in clear when it is None."""
    if data_key is None:
        return WavWriter(leg_path(folder, leg, sealed=False), sample_rate=sample_rate)
    return SealedWriter(leg_path(folder, leg, sealed=True), data_key=data_key, call_id=call_id, leg=leg,
                        sample_rate=sample_rate)


def leg_files(folder: Path) -> list[Path]:
    """The leg files in a call's folder, sealed or not."""
    return [p for leg in ALL_LEGS for sealed_ in (True, False) if (p := leg_path(folder, leg, sealed=sealed_)).exists()]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples (int16) and rate of a leg file, tolerating a header whose sizes lag the data (crash)."""
    if not path.exists() or path.stat().st_size < 44:
        return np.zeros(0, dtype="<i2"), 8000
    raw = path.read_bytes()
    rate = struct.unpack_from("<I", raw, 24)[0]
    data = raw[44:]
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2"), rate


def read_leg(folder: Path, manifest: CallManifest, leg: str, data_key: bytes | None) -> tuple[np.ndarray, int]:
    """A leg's samples (int16) and rate (0 if unknown), up to its last flush; empty if it was never opened.

    The manifest decides the format: a call with a wrapped key has sealed legs only (``data_key`` is its
    unwrapped key), one without has WAVs only. A leg file of the other kind is refused (SealedError) rather
    than mixed in: nobody but an intruder puts one there."""
    clear, sealed_path = leg_path(folder, leg, sealed=False), leg_path(folder, leg, sealed=True)
    if manifest.wrapped_key is None:
        if sealed_path.exists():
            raise SealedError(f"通话 {manifest.call_id} 的 {sealed_path.name} 已加密，但 call.json 中没有录音密钥")
        return read_wav(clear)
    if clear.exists():
        raise SealedError(f"通话 {manifest.call_id} 应加密录音，但 {clear.name} 为明文：文件来源可疑，未予归档")
    if not sealed_path.exists():
        return np.zeros(0, dtype="<i2"), 0
    if data_key is None:
        raise SealedError(f"通话 {manifest.call_id} 的录音密钥未解开，无法读取 {sealed_path.name}")
    got = sealed.read(sealed_path, data_key=data_key, call_id=manifest.call_id, leg=leg)
    return np.frombuffer(got.pcm[: len(got.pcm) // 2 * 2], dtype="<i2"), got.sample_rate


def mix(folder: Path, manifest: CallManifest, out: Path | BinaryIO, *, data_key: bytes | None = None) -> float:
    """Write the call's file to ``out`` (a path, or a binary file left open): stereo (left = caller,
    right = agent) aligned by each leg's offset, or the single ``room`` leg as mono. Returns the duration in
    seconds. ``data_key``: the call's unwrapped data key when its legs are sealed (see ``read_leg``).

    The mix is in clear wherever ``out`` is; the legs are read whole into memory."""
    rate = manifest.sample_rate
    if manifest.layout == "mono":
        samples, leg_rate = read_leg(folder, manifest, "room", data_key)
        rate = leg_rate or rate
        channels = [samples]
    else:
        channels = []
        for leg in LEGS:
            samples, _ = read_leg(folder, manifest, leg, data_key)
            lead = round(leg_offset(folder, leg) * rate)
            channels.append(np.concatenate([np.zeros(max(0, lead), dtype="<i2"), samples]))
    length = max(len(c) for c in channels)
    stacked = np.zeros((length, len(channels)), dtype="<i2")
    for i, c in enumerate(channels):
        stacked[: len(c), i] = c
    del channels
    with wave.open(out if not isinstance(out, Path) else str(out), "wb") as w:
        w.setnchannels(stacked.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stacked.reshape(-1).view(np.uint8).data)  # the samples themselves, not a copy
    return length / rate
