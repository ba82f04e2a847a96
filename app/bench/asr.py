"""`hotline bench asr`: character error rate, speed and memory on a corpus in the ../shared/corpus format."""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.cases.suggest import suggest
from app.config import Settings
from app.enterprises.resolve import Resolver
from app.transcripts.flows import asr_options
from asr.audio import decode
from asr.metrics import char_errors
from asr.models import ModelError
from asr.score import AudioScorer
from asr.types import AsrOptions, Layout, Segment
from asr.worker import audio_scorer, load_engine, transcribe_channels, warm_up


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


def run(corpus: Path, *, as_json: bool, verbose: bool, compare_openai: bool = True,
        baseline: bool = False) -> dict[str, Any]:
    settings = Settings()
    settings.ensure_dirs()
    started = time.perf_counter()
    options = asr_options(settings, "caller-left")
    engine = warm_up(options, settings.models_dir)  # as a worker does before its first job
    load_s = time.perf_counter() - started
    items = _transcribe_corpus(corpus, settings, options, registry(corpus))
    report = _summary(items, load_s)
    report["engine"] = engine.name
    if compare_openai and options.engine != "openai-whisper":
        report["openai_whisper"] = _compare_openai(corpus, settings, options, items)
    if baseline:
        report["baseline"] = _baseline(corpus, settings, options, items)
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


def _baseline(corpus: Path, settings: Settings, options: AsrOptions, ours: list[Item]) -> dict[str, Any]:
    """Plain faster-whisper on the same audio and weights, as a newcomer would run it: ``WhisperModel.transcribe``
    on each channel (each party's channel of a call, the one microphone of a session) with beam 5, its own VAD
    filter, no prompt, no clean-up or correction. Scored exactly like the product's output."""
    from faster_whisper import WhisperModel

    from asr.audio import SAMPLE_RATE
    from asr.models import resolve_model_dir

    model = WhisperModel(str(resolve_model_dir(options.model_dir, settings.models_dir)), device="cpu",
                         compute_type=options.compute_type, cpu_threads=2)
    by_id = {i.id: i for i in ours}
    files: dict[str, dict[str, Any]] = {}
    errors = chars = 0
    for truth_path in sorted(corpus.glob("*.json")):
        truth = json.loads(truth_path.read_text())
        if truth.get("kind") != "call":
            continue
        channels = decode(truth_path.with_suffix(".wav"))
        left = truth.get("channels", {}).get("left", "caller")
        roles = ["caller", "agent"] if left == "caller" else ["agent", "caller"]
        segments = []
        for role, audio in zip(roles, channels[:2], strict=True):
            pieces, _info = model.transcribe(audio, language=options.language, beam_size=5, vad_filter=True)
            segments += [Segment(p.start, p.end, role, p.text) for p in pieces]
        e, n, pairs = _score_call(truth, segments)
        errors, chars = errors + e, chars + n
        item_id = truth.get("id", truth_path.stem)
        files[item_id] = {"cer": e / n if n else 0.0, "texts": pairs,
                          "ours": by_id[item_id].cer if item_id in by_id else None,
                          "audio_s": len(channels[0]) / SAMPLE_RATE}
    ours_calls = [i for i in ours if i.kind == "call"]
    our_cer = sum(i.errors for i in ours_calls) / max(1, sum(i.ref_chars for i in ours_calls))
    cer = errors / chars if chars else 0.0
    return {"cer": cer, "ours_cer": our_cer, "relative_reduction": (cer - our_cer) / cer if cer else 0.0,
            "files": files}


def _checked_facts(segments: list[Segment], scorer: AudioScorer, resolver: Resolver) -> list[Segment]:
    """The transcript as the product files it: places and registered names the audio confirmed corrected
    where they were said (app/cases/verify.py), as the worker does when it files the case."""
    texts = suggest(segments, scorer=scorer, resolver=resolver).corrected_texts()
    return [dataclasses.replace(seg, text=texts.get(k, seg.text)) for k, seg in enumerate(segments)]


def registry(corpus: Path, size: int = 20_000, seed: int = 12351) -> Resolver:
    """The registry `hotline bench cases` seeds (the corpus's registry_seed.csv among generated names)."""
    from app.bench.cases import SEED_FILE, seed_rows
    from app.enterprises.service import read_rows

    rows, _errors = read_rows(seed_rows(corpus / SEED_FILE, size, seed))
    return Resolver((k, row.name, row.aliases) for k, row in enumerate(rows))


def _transcribe_corpus(corpus: Path, settings: Settings, options: AsrOptions,
                       resolver: Resolver | None = None) -> list[Item]:
    """``resolver``: check the calls' facts against the audio and correct the transcript with them, as the
    worker does (None: the transcript as decoded)."""
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
        segments = result.segments
        scorer = audio_scorer(engine, channels, layout) if is_call and resolver is not None else None
        if scorer is not None and resolver is not None:
            segments = _checked_facts(segments, scorer, resolver)
        elapsed = time.perf_counter() - t0
        errors, chars, pairs = (_score_call if is_call else _score_session)(truth, segments)
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
    base = report.get("baseline")
    if base:
        print("plain faster-whisper (same weights, beam 5, its own VAD, no prompt, no clean-up), calls:")
        for name, f in base["files"].items():
            ours = f"{f['ours']:7.1%}" if f["ours"] is not None else "      -"
            print(f"  {name:8} plain {f['cer']:7.1%}   ours {ours}")
            if verbose:
                for p in f["texts"]:
                    print(f"    {p['role']:6} PLAIN {p['hyp']}")
        print(f"calls     CER plain {base['cer']:.1%}  ours {base['ours_cer']:.1%}  "
              f"→ {base['relative_reduction']:+.1%} relative reduction (target ≥ 15%)")
    ow = report.get("openai_whisper")
    if ow and "skipped" in ow:
        print(f"openai-whisper: skipped ({ow['skipped']})")
    elif ow:
        print(f"openai-whisper, same weights and audio: CER {ow['cer']:.1%}  RTF {ow['rtf']:.3f}  "
              f"→ {report['engine']} is {ow['speed_ratio']:.1f}× faster")


# ---- `hotline bench asr --from-corrections`: the site's own corrected transcripts --------------------------


def from_corrections(database: Any, *, as_json: bool, latency_rounds: int = 20) -> dict[str, Any]:
    """CER of what the machine heard (``segments.machine_text``) against what people corrected it to, from
    this site's database: overall and per speaker role, with how many segments and cases were corrected; and
    how long a correction takes to be searchable and re-extracted (timed on a scratch SQLite database)."""
    import sqlalchemy as sa

    from app.cases.models import Case
    from app.transcripts.models import Segment

    with database.session() as db:
        total = db.execute(sa.select(sa.func.count()).select_from(Segment)).scalar_one()
        rows = db.execute(
            sa.select(Segment.machine_text, Segment.text, Segment.speaker, Segment.transcript_id, Case.id)
            .outerjoin(Case, Case.transcript_id == Segment.transcript_id)
            .where(Segment.machine_text.is_not(None))).all()
    roles: dict[str, list[int]] = {}
    errors = chars = 0
    for machine, corrected, speaker, _tid, _case in rows:
        e, n = char_errors(corrected, machine)
        errors, chars = errors + e, chars + n
        got = roles.setdefault(speaker, [0, 0, 0])
        got[0], got[1], got[2] = got[0] + e, got[1] + n, got[2] + 1
    report: dict[str, Any] = {
        "segments": total, "corrected_segments": len(rows),
        "corrected_cases": len({c for *_, c in rows if c is not None}),
        "corrected_transcripts": len({t for *_, t, _c in rows}),
        "cer": errors / chars if chars else None, "errors": errors, "ref_chars": chars,
        "by_role": {r: {"segments": s, "cer": e / n if n else None, "errors": e, "ref_chars": n}
                    for r, (e, n, s) in sorted(roles.items())},
        "correction_latency_ms": correction_latency(latency_rounds) if latency_rounds else None,
    }
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return report
    print(f"corrected segments {report['corrected_segments']} of {total}, in {report['corrected_cases']} cases")
    if chars:
        print(f"CER of the machine's text against the corrections: {errors / chars:.1%} ({errors}/{chars} characters)")
        for role, r in report["by_role"].items():
            cer = f"{r['cer']:.1%}" if r["cer"] is not None else "-"
            print(f"  {role:8} {r['segments']:5} segments  CER {cer}")
    else:
        print("no corrections yet: nothing to score")
    if lat := report["correction_latency_ms"]:
        print(f"a correction searchable and re-extracted in p50 {lat['p50']:.0f} ms, max {lat['max']:.0f} ms "
              f"({lat['rounds']} corrections, scratch SQLite database; word alignment not included)")
    return report


def correction_latency(rounds: int) -> dict[str, float]:
    """Time ``rounds`` corrections of a hand-made case's segment on a scratch SQLite database: from the
    request to the correction committed, searchable and the case re-extracted (milliseconds)."""
    import hashlib
    import statistics
    import tempfile

    from app.cases import service as cases
    from app.db import Database
    from app.recordings.models import Recording
    from app.search import service as search
    from app.transcripts import flows
    from app.transcripts import service as transcripts
    from asr import types as asr_types

    turns = [("agent", "您好，一二三五一热线，请问有什么可以帮您？"),
             ("caller", "我在黄岛的青岛连川电子有限公司上班，老板拖欠我们三个月工资了，一共五个人。"),
             ("agent", "好的，我们会转给黄岛区劳动监察大队处理。")]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None, redis_url=None)
        settings.ensure_dirs()
        database = Database(settings.sqlalchemy_url)
        try:
            database.upgrade()
            segments = [asr_types.Segment(5.0 * i, 5.0 * i + 4, who, text) for i, (who, text) in enumerate(turns)]
            result = asr_types.Transcript(duration=15.0, language="zh", engine="bench", model="-",
                                          processing_s=0.0, segments=segments)
            with database.session() as db:
                rec = Recording(sha256=hashlib.sha256(b"bench").hexdigest(), path="bench.wav",
                                original_name="bench.wav", size_bytes=1, format="wav", codec="pcm_mulaw",
                                sample_rate=8000, channels=2, duration=15.0, layout="caller-left", channel="来电",
                                status="done", uploaded_by="bench")
                db.add(rec)
                db.flush()
                transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
                case = cases.file_case(db=db, recording=rec, transcript=transcript, actor="bench", settings=settings)
                search.index_case(db=db, case=case, segments=transcript.segments)
                tid = transcript.id
            texts = [turns[1][1].replace("连川", "联创"), turns[1][1].replace("五个人", "十二个人")]
            took = []
            for k in range(rounds):
                done = flows.correct_segment(database=database, settings=settings, transcript_id=tid, idx=1,
                                             text=texts[k % 2], version=k, username="bench", role="admin")
                took.append(done.applied_ms)
        finally:
            database.dispose()
    return {"rounds": rounds, "p50": statistics.median(took), "max": max(took), "mean": statistics.fmean(took)}
