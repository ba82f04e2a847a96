"""Probe and decode audio with PyAV (FFmpeg inside the wheel; no system packages)."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

from asr.types import AudioInfo

SAMPLE_RATE = 16_000


class AudioError(Exception):
    """The file is not usable audio; ``code`` is stable for APIs (empty, not_audio, corrupt, truncated)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _check_wav_header(path: Path) -> None:
    """A RIFF/WAVE file whose data chunk claims more bytes than the file holds was cut short."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise AudioError("truncated", "WAV 文件不完整：找不到音频数据块")
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                if clen != 0xFFFFFFFF and f.tell() + clen > size:
                    missing = f.tell() + clen - size
                    raise AudioError("truncated", f"WAV 文件不完整：音频数据缺少 {missing} 字节（上传或复制被中断？）")
                return
            f.seek(clen + (clen & 1), 1)


def probe(path: Path) -> AudioInfo:
    """Format, codec, rate, channels and the duration actually decodable; AudioError if unusable."""
    if path.stat().st_size == 0:
        raise AudioError("empty", "文件为空")
    _check_wav_header(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError("not_audio", "文件中没有音频流")
            stream = container.streams.audio[0]
            samples = 0
            for frame in container.decode(stream):
                samples += frame.samples
            rate = stream.codec_context.sample_rate or stream.rate
            info = AudioInfo(
                format=container.format.name.split(",")[0],
                codec=stream.codec_context.name,
                sample_rate=int(rate),
                channels=stream.codec_context.channels,
                duration=round(samples / rate, 3) if rate else 0.0,
            )
    except AudioError:
        raise
    except av.FFmpegError as e:
        raise AudioError("not_audio", f"无法识别为音频文件（{e.strerror or type(e).__name__}）") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise AudioError("not_audio", "无法识别为音频文件") from e
    if info.duration <= 0:
        raise AudioError("corrupt", "音频无法解码或时长为 0")
    return info


def decode(path: Path, sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Each channel as float32 mono at ``sample_rate``, in channel order (left first)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        layout = "stereo" if channels >= 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        chunks: list[np.ndarray] = []
        for frame in container.decode(stream):
            frame.pts = None
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    if not chunks:
        raise AudioError("corrupt", "音频无法解码")
    planar = np.concatenate(chunks, axis=1).astype(np.float32)
    return [np.ascontiguousarray(planar[i]) for i in range(planar.shape[0])]
