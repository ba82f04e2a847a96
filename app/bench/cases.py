"""`hotline bench cases`: what a new case suggests, against the truth, on real transcription.

Each call of the corpus goes into a fresh embedded instance (a temporary data dir, SQLite, nothing on file:
as a new user would start), is imported like `hotline import` does and transcribed by the real worker step,
and the case it becomes is compared with the call's truth (NAME.json: category, district, enterprise,
workers, amount, occupation). Enterprise matches within two characters (ASR drops and mishears some);
a truth of None matches only when nothing was suggested (the "no damage" check).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.recordings import service as recordings
from app.recordings.models import CaseChannel
from app.transcripts.flows import transcribe_recording
from asr.metrics import edit_distance
from asr.models import resolve_model_dir

# (label, truth key, case attribute)
FIELDS = (("category", "category", "category"), ("district", "district", "district"),
          ("enterprise", "enterprise", "enterprise"), ("amount", "amount", "amount"),
          ("headcount", "workers", "workers"), ("occupation", "occupation", "occupation"))
SCORED = ("category", "district", "enterprise", "amount", "headcount")  # the "done when"
ENTERPRISE_SLACK = 2  # characters


def matches(label: str, truth: Any, got: Any) -> bool:
    if truth is None or got is None:
        return truth is None and got is None
    if label == "enterprise":
        return edit_distance(str(truth), str(got)) <= ENTERPRISE_SLACK
    return bool(truth == got)


@dataclass
class Result:
    name: str
    values: dict[str, tuple[Any, Any, bool]]  # label → (truth, suggested, match)
    confidence: float
    seconds: float


def _file_call(wav: Path, base: Settings, model_dir: Path) -> Case:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-cases-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None, redis_url=None, asr_model_dir=model_dir,
                            group_case_workers=base.group_case_workers)
        settings.ensure_dirs()
        database = Database(settings.sqlalchemy_url)
        try:
            database.upgrade()
            with wav.open("rb") as f, recordings.staged(settings, f) as staged:
                rec = recordings.ingest(database=database, settings=settings, staged_file=staged,
                                        original_name=wav.name, layout="caller-left", channel=CaseChannel.call,
                                        actor="bench").recording
            outcome = transcribe_recording(database=database, settings=settings, recording_id=rec.id)
            if outcome.case_id is None:
                raise SystemExit(f"{wav.name}: no case was filed ({outcome.skipped})")
            with database.session() as db:
                case = db.get(Case, outcome.case_id)
                assert case is not None
                db.expunge(case)
            return case
        finally:
            database.dispose()


def run(corpus: Path, *, as_json: bool = False) -> list[Result]:
    base = Settings()
    base.ensure_dirs()
    model_dir = resolve_model_dir(base.asr_model_dir, base.models_dir)  # shared, so it is assembled once
    calls = []
    for truth_path in sorted(corpus.glob("*.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        if truth.get("kind", "call") == "call" and "category" in truth and truth_path.with_suffix(".wav").exists():
            calls.append((truth_path.with_suffix(".wav"), truth))
    if not calls:
        raise SystemExit(f"no calls with truth (NAME.wav + NAME.json with a category) in {corpus}")
    results = []
    for wav, truth in calls:
        started = time.perf_counter()
        case = _file_call(wav, base, model_dir)
        values = {}
        for label, key, attr in FIELDS:
            got = getattr(case, attr)
            values[label] = (truth.get(key), got, matches(label, truth.get(key), got))
        results.append(Result(wav.stem, values, case.category_confidence, time.perf_counter() - started))
        if not as_json:
            _print_call(results[-1], case)
    if as_json:
        print(json.dumps([{"call": r.name, "confidence": r.confidence, "seconds": round(r.seconds, 1),
                           **{k: {"truth": t, "suggested": g, "match": m} for k, (t, g, m) in r.values.items()}}
                          for r in results], ensure_ascii=False, indent=1))
    else:
        print(totals(results))
    return results


def _print_call(r: Result, case: Case) -> None:
    print(f"{r.name}  ({r.seconds:.1f} s, category confidence {r.confidence:.2f})")
    for label, (truth, got, ok) in r.values.items():
        where = case.extracted.get("workers" if label == "headcount" else label) or {}
        at = f"  @ {where['start']:.1f} s {where['speaker']}: {where['text']}" if where else ""
        print(f"  {'✓' if ok else '✗'} {label:<10} truth {truth!s:<16} suggested {got!s:<16}{at}")


def totals(results: list[Result]) -> str:
    parts = []
    for label, _key, _attr in FIELDS:
        hits = sum(r.values[label][2] for r in results)
        parts.append(f"{label} {hits}/{len(results)}" + ("" if label in SCORED else " (not scored)"))
    return ", ".join(parts)
