"""`hotline bench asr`: character error rate, speed and memory on a corpus in the ../shared/corpus format."""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.config import Settings
from app.transcripts.flows import asr_options
from asr.audio import decode
from asr.metrics import char_errors
from asr.models import ModelError
from asr.types import AsrOptions, Layout
from asr.worker import load_engine, transcribe_channels, warm_up


@dataclass
class Item:
    id: str
    kind: str
    duration: float
    processing_s: float
    errors: int
    ref_chars: int
    texts: list[dict[str, str]] = field(default_factory=list)  # reference and hypothesis per role
    der: float | None = None  # sessions: diarization error rate of the speaker turns

    @property
    def cer(self) -> float:
        return self.errors / self.ref_chars if self.ref_chars else 0.0


def _score_call(truth: dict[str, Any], segments: list[Any]) -> tuple[int, int, list[dict[str, str]]]:
    """Errors per speaker role: what the caller said against the caller's channel, the same for the agent."""
    errors = chars = 0
    pairs = []
    for role in ("caller", "agent"):
        ref = "".join(t["text"] for t in truth["turns"] if t.get("role") == role)
        hyp = "".join(s.text for s in segments if s.speaker == role)
        e, n = char_errors(ref, hyp)
        errors, chars = errors + e, chars + n
        pairs.append({"role": role, "ref": ref, "hyp": hyp})
    return errors, chars, pairs


def _score_session(truth: dict[str, Any], segments: list[Any]) -> tuple[int, int, list[dict[str, str]]]:
    ref = "".join(t["text"] for t in sorted(truth["turns"], key=lambda t: t["start"]))
    hyp = "".join(s.text for s in segments)
    e, n = char_errors(ref, hyp)
    return e, n, [{"role": "all", "ref": ref, "hyp": hyp}]


def run(corpus: Path, *, as_json: bool, verbose: bool, compare_openai: bool = True) -> dict[str, Any]:
    settings = Settings()
    settings.ensure_dirs()
    started = time.perf_counter()
    options = asr_options(settings, "caller-left")
    engine = warm_up(options, settings.models_dir)  # as a worker does before its first job
    load_s = time.perf_counter() - started
    items = _transcribe_corpus(corpus, settings, options)
    report = _summary(items, load_s)
    report["engine"] = engine.name
    if compare_openai and options.engine != "openai-whisper":
        report["openai_whisper"] = _compare_openai(corpus, settings, options, items)
    if as_json:
        print(json.dumps({**report, "items": [{**asdict(i), "cer": i.cer} for i in items]}, ensure_ascii=False,
                         indent=1))
    else:
        _print(report, items, verbose)
    return report


def _compare_openai(corpus: Path, settings: Settings, options: AsrOptions, fast: list[Item]) -> dict[str, Any]:
    """The same audio, utterances and weights through openai-whisper: its CER and how much slower it is."""
    slow_options = dataclasses.replace(options, engine="openai-whisper")
    try:
        load_engine(slow_options, settings.models_dir)
    except ModelError as e:
        return {"skipped": str(e)}
    slow = _transcribe_corpus(corpus, settings, slow_options)
    errors, chars = sum(i.errors for i in slow), sum(i.ref_chars for i in slow)
    audio = sum(i.duration for i in slow)
    fast_s, slow_s = sum(i.processing_s for i in fast), sum(i.processing_s for i in slow)
    return {"cer": errors / chars if chars else 0.0, "rtf": slow_s / audio if audio else 0.0,
            "processing_s": slow_s, "speed_ratio": slow_s / fast_s if fast_s else 0.0}


def _transcribe_corpus(corpus: Path, settings: Settings, options: AsrOptions) -> list[Item]:
    engine = load_engine(options, settings.models_dir)
    items: list[Item] = []
    for truth_path in sorted(corpus.glob("*.json")):
        truth = json.loads(truth_path.read_text())
        audio = truth_path.with_suffix(".wav")
        is_call = truth.get("kind") == "call"
        t0 = time.perf_counter()
        channels = decode(audio)
        layout: Layout = "mono"
        if is_call:
            layout = "caller-left" if truth.get("channels", {}).get("left", "caller") == "caller" else "agent-left"
        result = transcribe_channels(channels, dataclasses.replace(options, layout=layout), engine)
        elapsed = time.perf_counter() - t0
        errors, chars, pairs = (_score_call if is_call else _score_session)(truth, result.segments)
        der = None if is_call else _der(truth, result.segments)
        items.append(Item(truth.get("id", truth_path.stem), "call" if is_call else "session", result.duration,
                          elapsed, errors, chars, pairs, der))
    return items


def _der(truth: dict[str, Any], segments: list[Any]) -> float:
    """Diarization error rate (pyannote.metrics, 0.25 s collar) of the transcript's speaker turns."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for t in truth["turns"]:
        ref[Segment(t["start"], t["end"])] = t.get("speaker", t.get("role"))
    for s in segments:
        hyp[Segment(s.start, s.end)] = s.speaker
    uem = Timeline([Segment(0, max(truth.get("duration", 0), *(t["end"] for t in truth["turns"])))])
    return float(DiarizationErrorRate(collar=0.25)(ref, hyp, uem=uem))


def _summary(items: list[Item], load_s: float) -> dict[str, Any]:
    def group(kind: str) -> dict[str, Any]:
        chosen = [i for i in items if i.kind == kind]
        errors, chars = sum(i.errors for i in chosen), sum(i.ref_chars for i in chosen)
        audio, work = sum(i.duration for i in chosen), sum(i.processing_s for i in chosen)
        ders = [i.der for i in chosen if i.der is not None]
        return {"files": len(chosen), "cer": errors / chars if chars else 0.0, "audio_s": audio,
                "processing_s": work, "rtf": work / audio if audio else 0.0,
                "der": sum(ders) / len(ders) if ders else None}

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"calls": group("call"), "sessions": group("session"), "model_load_s": load_s, "peak_rss_mib": peak_mib}


def _print(report: dict[str, Any], items: list[Item], verbose: bool) -> None:
    print(f"{'id':8} {'kind':8} {'audio s':>8} {'proc s':>7} {'RTF':>6} {'CER':>7} {'DER':>6}")
    for i in items:
        der = f"{i.der:6.1%}" if i.der is not None else "     -"
        print(f"{i.id:8} {i.kind:8} {i.duration:8.1f} {i.processing_s:7.2f} {i.processing_s / i.duration:6.3f} "
              f"{i.cer:7.1%} {der}")
        if verbose:
            for p in i.texts:
                print(f"    {p['role']:6} REF {p['ref']}\n           HYP {p['hyp']}")
    for kind in ("calls", "sessions"):
        g = report[kind]
        if g["files"]:
            der = f"  DER {g['der']:.1%}" if g["der"] is not None else ""
            files = f"({g['files']} files, {g['audio_s']:.0f} s audio)"
            print(f"{kind:9} CER {g['cer']:.1%}  RTF {g['rtf']:.3f}{der}  {files}")
    print(f"model load and warm-up {report['model_load_s']:.2f} s   "
          f"peak RSS {report['peak_rss_mib']:.0f} MiB (whole run)")
    ow = report.get("openai_whisper")
    if ow and "skipped" in ow:
        print(f"openai-whisper: skipped ({ow['skipped']})")
    elif ow:
        print(f"openai-whisper, same weights and audio: CER {ow['cer']:.1%}  RTF {ow['rtf']:.3f}  "
              f"→ {report['engine']} is {ow['speed_ratio']:.1f}× faster")
