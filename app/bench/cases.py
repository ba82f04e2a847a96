"""`hotline bench cases`: what a new case suggests, against the truth, on real transcription.

Each call of the corpus goes into a fresh embedded instance (a temporary data dir, SQLite, no case on file:
as a new user would start) whose enterprise registry holds the corpus's ``registry_seed.csv`` (when there is
one) among ``--registry-size`` generated Qingdao enterprise names, is imported like `hotline import` does and
transcribed by the real worker step, and the case it becomes is compared with the call's truth (NAME.json:
category, district, enterprise, workers, amount, occupation).

A suggestion is *right*, *待核实* (too unsure to fill in: the agent is asked; right or not, it is never a
silent wrong value), *wrong* (a confident wrong value: the failure that matters), or *missing*. Enterprise
names are also scored by character accuracy (1 − edit distance / length of the true name) and by whether
the case resolved to the right registry entry when the enterprise is registered. A truth of None matches
only when nothing was suggested (the "no damage" check).
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cases.extract import DISTRICT_ALIASES
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.enterprises import service as enterprises
from app.enterprises.models import Enterprise
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
SEED_FILE = "registry_seed.csv"
DEFAULT_REGISTRY_SIZE = 20_000


def _district(value: Any) -> Any:
    return DISTRICT_ALIASES.get(value, value) if isinstance(value, str) else value


def char_accuracy(truth: str, got: str | None) -> float:
    return max(0.0, 1 - edit_distance(truth, got or "") / len(truth)) if truth else float(not got)


@dataclass
class Field:
    truth: Any
    value: Any  # what the machine proposed (filled in, or marked 待核实)
    status: str  # right | 待核实 | wrong | missing | none (nothing said, nothing proposed)

    @property
    def ok(self) -> bool:
        return self.status in ("right", "none")


def judge(label: str, truth: Any, case: Case) -> Field:
    attr = {"headcount": "workers"}.get(label, label)
    filled = getattr(case, attr)
    found = (case.extracted or {}).get("workers" if label == "headcount" else label) or {}
    unsure = found.get("status") == "待核实"
    value = filled if filled is not None else (found.get("value") if unsure else None)
    if label == "district":
        truth, value = _district(truth), _district(value)
    if truth is None:
        return Field(truth, value, "none" if value is None else ("待核实" if unsure else "wrong"))
    if value is None:
        return Field(truth, value, "missing")
    right = char_accuracy(truth, value) >= 0.95 if label == "enterprise" else truth == value
    if unsure and filled is None:
        return Field(truth, value, "待核实")
    return Field(truth, value, "right" if right else "wrong")


@dataclass
class Result:
    name: str
    fields: dict[str, Field]
    enterprise_accuracy: float | None  # character accuracy, where the truth names one
    linked: bool | None  # resolved to the right registry entry, where the truth's enterprise is registered
    confidence: float
    seconds: float


def seed_rows(seed_path: Path, size: int, seed: int) -> bytes:
    """The registry file: the corpus's seed rows among ``size`` generated names (none sharing a seed name's
    brand), as a UTF-8 CSV the importer reads."""
    from app.bench.enterprises import Registry

    rows = list(csv.DictReader(seed_path.open(encoding="utf-8-sig"))) if seed_path.exists() else []
    seeded = {r["企业名称"] for r in rows}
    reg = Registry(random.Random(seed))
    names: set[str] = set()
    rng = random.Random(seed + 1)
    districts = ["市南区", "市北区", "李沧区", "崂山区", "黄岛区", "城阳区", "即墨区", "胶州市", "平度市", "莱西市"]
    while len(names) < size:
        name = reg.make()
        if name.full not in seeded and not any(name.brand in s for s in seeded):
            names.add(name.full)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["企业名称", "统一社会信用代码", "区市", "地址", "行业", "企业类型"])
    for r in rows:
        writer.writerow([r["企业名称"], r.get("统一社会信用代码", ""), r.get("区市", ""), r.get("地址", ""),
                         r.get("行业", ""), r.get("企业类型", "")])
    for full in sorted(names):
        writer.writerow([full, "", rng.choice(districts), "", "", ""])
    return out.getvalue().encode("utf-8")


def _template(base: Settings, model_dir: Path, registry: bytes, into: Path) -> Settings:
    """A data dir with the schema and the registry imported, copied for each call."""
    settings = Settings(data_dir=into, database_url=None, redis_url=None, asr_model_dir=model_dir,
                        group_case_workers=base.group_case_workers)
    settings.ensure_dirs()
    database = Database(settings.sqlalchemy_url)
    try:
        database.upgrade()
        with database.session() as db:
            enterprises.import_file(db=db, path_or_bytes=registry, actor="bench", filename="registry.csv")
    finally:
        database.dispose()
    return settings


def _file_call(wav: Path, template: Settings, enterprise: str | None) -> tuple[Case, int | None]:
    """The case filed from ``wav``, and the registry id of the truth's ``enterprise`` (None: not registered)."""
    with tempfile.TemporaryDirectory(prefix="hotline-bench-cases-") as tmp:
        data = Path(tmp) / "var"
        shutil.copytree(template.data_dir, data)
        settings = template.model_copy(update={"data_dir": data})
        database = Database(settings.sqlalchemy_url)
        try:
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
                registered = (db.query(Enterprise.id).filter(Enterprise.name == enterprise).scalar()
                              if enterprise else None)
            return case, registered
        finally:
            database.dispose()


def run(corpus: Path, *, as_json: bool = False, registry_size: int = DEFAULT_REGISTRY_SIZE,
        seed: int = 12351, seed_file: Path | None = None) -> list[Result]:
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
    with tempfile.TemporaryDirectory(prefix="hotline-bench-registry-") as tmp:
        started = time.perf_counter()
        seed_path = seed_file or corpus / SEED_FILE
        template = _template(base, model_dir, seed_rows(seed_path, registry_size, seed), Path(tmp) / "var")
        if not as_json:
            print(f"registry: {registry_size} generated names" + (f" + {seed_path}" if seed_path.exists() else "")
                  + f", imported in {time.perf_counter() - started:.1f} s")
        for wav, truth in calls:
            started = time.perf_counter()
            case, registered = _file_call(wav, template, truth.get("enterprise"))
            fields = {label: judge(label, truth.get(key), case) for label, key, _attr in FIELDS}
            name = truth.get("enterprise")
            accuracy = char_accuracy(name, fields["enterprise"].value) if name else None
            linked = None
            if registered is not None and truth.get("registered", True):
                linked = (case.extracted or {}).get("enterprise", {}).get("enterprise_id") == registered
            results.append(Result(wav.stem, fields, accuracy, linked, case.category_confidence,
                                  time.perf_counter() - started))
            if not as_json:
                _print_call(results[-1], case)
    if as_json:
        print(json.dumps([{"call": r.name, "confidence": r.confidence, "seconds": round(r.seconds, 1),
                           "enterprise_accuracy": r.enterprise_accuracy, "linked": r.linked,
                           **{k: {"truth": f.truth, "suggested": f.value, "status": f.status}
                              for k, f in r.fields.items()}}
                          for r in results], ensure_ascii=False, indent=1))
    else:
        print(totals(results))
    return results


_MARK = {"right": "✓", "none": "✓", "待核实": "?", "wrong": "✗", "missing": "✗"}


def _print_call(r: Result, case: Case) -> None:
    print(f"{r.name}  ({r.seconds:.1f} s, category confidence {r.confidence:.2f})")
    for label, f in r.fields.items():
        where = case.extracted.get("workers" if label == "headcount" else label) or {}
        at = (f"  @ {where['start']:.1f} s {where['speaker']} ({where.get('confidence', 0):.2f}): {where['text']}"
              if where else "")
        extra = f" [{f.status}]" if f.status not in ("right", "none") else ""
        print(f"  {_MARK[f.status]} {label:<10} truth {f.truth!s:<16} suggested {f.value!s:<16}{extra}{at}")
    if r.enterprise_accuracy is not None:
        link = "" if r.linked is None else ("  registry: linked right" if r.linked else "  registry: NOT linked")
        print(f"    enterprise character accuracy {r.enterprise_accuracy:.2f}{link}")


def totals(results: list[Result]) -> str:
    lines = []
    for label, _key, _attr in FIELDS:
        said = [r for r in results if r.fields[label].truth is not None]
        by = {k: sum(r.fields[label].status == k for r in results) for k in ("right", "待核实", "wrong", "missing")}
        none_ok = sum(r.fields[label].status == "none" for r in results)
        lines.append(f"{label:<11} right {by['right']}/{len(said)} of calls that name one"
                     f" ({by['right'] / max(1, len(said)):.0%}), 待核实 {by['待核实']}, confident wrong {by['wrong']},"
                     f" missing {by['missing']}, nothing said and nothing proposed {none_ok}"
                     + ("" if label in SCORED else "  (not scored)"))
    accs = [r.enterprise_accuracy for r in results if r.enterprise_accuracy is not None]
    links = [r.linked for r in results if r.linked is not None]
    if accs:
        lines.append(f"enterprise character accuracy {sum(accs) / len(accs):.3f} over {len(accs)} calls naming one; "
                     f"registered ones linked to the right entry {sum(links)}/{len(links)}")
    return "\n".join(lines)
