"""Cases: filed from a transcript, numbered per year, listed and read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases import caller, workflow
from app.cases.models import Case, CaseStatus, Counter
from app.cases.suggest import FIELDS as SUGGESTED_FIELDS
from app.cases.suggest import Suggestion, suggest
from app.cases.summary import Summary, summarize
from app.cases.verify import UNVERIFIED, NameResolver, Scorer
from app.config import Settings
from app.db import as_utc, utcnow
from app.recordings.models import Recording
from app.search import service as search
from app.taxonomy import service as taxonomy
from app.taxonomy.models import LexiconTerm
from app.transcripts import service as transcripts
from app.transcripts.models import Segment as TranscriptSegment
from app.transcripts.models import Transcript
from asr import words as asr_words
from asr.lexicon import default_corrector
from asr.types import Segment as AsrSegment

CASE_PREFIX = "12351"


def next_number(*, db: Session, name: str) -> int:
    """Atomically take the next value of a named counter (row lock on PostgreSQL; SQLite holds the
    database write lock for the whole transaction)."""
    bump = sa.update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
    value = db.execute(bump).scalar_one_or_none()
    if value is not None:
        return int(value)
    try:
        with db.begin_nested():
            db.add(Counter(name=name, value=1))
        return 1
    except IntegrityError:  # another transaction created it first
        return int(db.execute(bump).scalar_one())


def _summary(found: Suggestion) -> Summary | None:
    """诉求摘要 written from the suggestions (app/cases/summary.py); None for a call where nothing was said."""
    return summarize(category=found.category, fields=found.fields, said=found.said) if found.said else None


def file_case(*, db: Session, recording: Recording, transcript: Transcript, actor: str,
              settings: Settings | None = None, scorer: Scorer | None = None,
              resolver: NameResolver | None = None) -> Case:
    """Create the case for a freshly transcribed recording: number, status 受理 with its clocks started, and
    the machine's suggestions (category, enterprise, district and the other dimensions), each value kept in
    ``extracted`` with the segment and second where it was said, and in ``suggested`` as first proposed.
    ``scorer``: the recording's audio, to check facts against; ``resolver``: the enterprise registry. A fact
    too unsure to fill in stays in ``extracted`` marked 待核实 for the agent."""
    settings = settings or Settings()
    segments = [AsrSegment(s.start, s.end, s.speaker, s.text) for s in transcript.segments]
    found = suggest(segments, taxonomy=taxonomy.rules(db=db), known_enterprises=taxonomy.known_enterprises(db=db),
                    lexicon=taxonomy.asr_terms(db=db), group_case_workers=settings.group_case_workers,
                    scorer=scorer, resolver=resolver)
    _correct_transcript(db=db, transcript=transcript, texts=found.corrected_texts(), actor=actor)
    cat = found.category
    values = {name: found.value(name) for name in SUGGESTED_FIELDS}
    extracted, suggested = found.extracted(), found.suggested()
    number = caller.signalled(db=db, recording_id=recording.id)  # a call's number beats one read out in it
    if number:
        caller.take_signalled(number, values=values, extracted=extracted, suggested=suggested)
    written = _summary(found)
    if written is not None:
        extracted["summary"] = written.as_json()  # each phrase → where it was said
    now = utcnow()
    year = now.year
    case = Case(
        case_no=f"{CASE_PREFIX}-{year}-{next_number(db=db, name=f'case:{year}'):06d}",
        status=CaseStatus.accepted.value, channel=recording.channel, recording_id=recording.id,
        transcript_id=transcript.id, category=cat.category, category_confidence=cat.confidence,
        category_evidence=cat.evidence, summary=written.text if written else "", created_by=actor,
        **values, group_case=found.group_case, extracted=extracted, suggested=suggested,
        accepted_at=now,
    )
    workflow.start_clocks(case, workflow.SlaPolicy.from_settings(settings))  # feedback in 24 h, due by difficulty
    db.add(case)
    db.flush()
    audit.record(db=db, actor=actor, action="case.created", subject_type="case", subject_id=case.id, details={
        "case_no": case.case_no, "status": case.status, "channel": case.channel, "recording_id": recording.id,
        "transcript_id": transcript.id, "category": cat.category, "confidence": cat.confidence,
        "suggested": {**{name: {"value": ev.value, "at": ev.start, "segment": ev.segment}
                         for name, ev in found.fields.items()},
                      **({"caller_phone": {"value": number, "source": caller.SIGNALLING}} if number else {})},
        "group_case": found.group_case,
    })
    return case


def _correct_transcript(*, db: Session, transcript: Transcript, texts: dict[int, str], actor: str) -> None:
    """Segments whose places or enterprise names the audio confirmed (app/cases/verify.py: 李汤区 → 李沧区)
    take the corrected text, words re-timed from the old ones; audited with before and after."""
    for idx, text in sorted(texts.items()):
        seg = transcript.segments[idx]
        if not text or text == seg.text:
            continue
        before = seg.text
        seg.words = transcripts.word_rows(asr_words.timed_words(transcripts.timed(seg.words), text, seg.start,
                                                                seg.end))
        seg.text = text
        audit.record(db=db, actor=actor, action="transcript.verified", subject_type="transcript",
                     subject_id=transcript.id, details={"segment": idx, "before": before, "after": text})
    db.flush()


def get(*, db: Session, case_id: int) -> Case | None:
    return db.get(Case, case_id)


def ids_since(*, db: Session, since: date | None = None) -> list[int]:
    """Ids of the cases created on or after the Beijing day ``since`` (all without it), oldest first."""
    stmt = sa.select(Case.id).order_by(Case.id)
    if since is not None:
        stmt = stmt.where(Case.created_at >= _day_start(since))
    return list(db.execute(stmt).scalars())


def for_transcript(*, db: Session, transcript_id: int) -> Case | None:
    return db.execute(sa.select(Case).where(Case.transcript_id == transcript_id)).scalar_one_or_none()


LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # dates people type (date_from/date_to) are local calendar days


@dataclass(frozen=True)
class CaseFilter:
    """GET /api/v1/cases filters; each one left None does not filter."""

    status: str | None = None
    category: str | None = None
    district: str | None = None
    enterprise: str | None = None  # substring of the enterprise name
    created_by: str | None = None  # a username (matches user:NAME) or an actor as stored
    assignee: str | None = None
    date_from: date | None = None  # created on or after this day (Asia/Shanghai)
    date_to: date | None = None  # created on or before this day (Asia/Shanghai)
    overdue: bool | None = None  # past the completion deadline (open, or closed late)
    group_case: bool | None = None
    escalated: bool | None = None
    recording_id: int | None = None  # the case of one recording (a call's, once it is filed)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(as_utc(utcnow()).tzinfo)


def _overdue(now: datetime) -> sa.ColumnElement[bool]:
    """SQL twin of workflow.sla_state(...).overdue, on the stored due_at."""
    return sa.and_(Case.due_at.is_not(None), sa.or_(
        sa.and_(Case.closed_at.is_(None), Case.due_at < now),
        sa.and_(Case.closed_at.is_not(None), Case.due_at < Case.closed_at)))


def _where(f: CaseFilter, now: datetime) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = []
    for column, value in ((Case.status, f.status), (Case.category, f.category), (Case.district, f.district),
                          (Case.assignee, f.assignee)):
        if value:
            conds.append(column == value)
    if f.enterprise:
        conds.append(Case.enterprise.contains(f.enterprise, autoescape=True))
    if f.created_by:
        conds.append(Case.created_by.in_([f.created_by, f"user:{f.created_by}"]))
    if f.date_from:
        conds.append(Case.created_at >= _day_start(f.date_from))
    if f.date_to:
        conds.append(Case.created_at < _day_start(f.date_to + timedelta(days=1)))
    if f.overdue is not None:
        conds.append(_overdue(now) if f.overdue else sa.not_(_overdue(now)))
    if f.group_case is not None:
        conds.append(Case.group_case.is_(f.group_case))
    if f.escalated is not None:
        conds.append(Case.escalated.is_(f.escalated))
    if f.recording_id is not None:
        conds.append(Case.recording_id == f.recording_id)
    return conds


def list_cases(*, db: Session, limit: int, offset: int, status: str | None = None,
               category: str | None = None, filters: CaseFilter | None = None,
               now: datetime | None = None) -> tuple[int, list[Case]]:
    """Cases matching the filters, newest first, and how many match in all."""
    f = filters or CaseFilter()
    if status or category:
        f = CaseFilter(**{**f.__dict__, "status": status or f.status, "category": category or f.category})
    stmt = sa.select(Case).where(*_where(f, now or utcnow()))
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit).offset(offset)).scalars()
    return total, list(rows)


# --- staff edits -------------------------------------------------------------------------------------------

GENDERS = ("男", "女")
ENTERPRISE_TYPES = ("国有", "集体", "民营", "外资", "个体", "机关事业", "其他")
# Free-text fields staff may change, with the column's length and the name people know them by.
_TEXT_FIELDS: dict[str, tuple[int, str]] = {
    "enterprise": (128, "企业名称"), "district": (16, "区（市）"), "occupation": (32, "职业"),
    "age_bracket": (16, "年龄段"), "arrears_type": (16, "欠薪类别"), "summary": (5000, "诉求摘要"),
}
EDITABLE = frozenset({*_TEXT_FIELDS, "category", "gender", "enterprise_type", "workers", "amount", "difficulty"})


def _one_of(value: Any, options: list[str] | tuple[str, ...], what: str) -> str | None:
    value = value.strip() if isinstance(value, str) else value
    if value in (None, ""):
        return None
    if value not in options:
        raise workflow.InvalidCaseInput(f"{what}只能是：{'、'.join(options)}（收到「{value}」）")
    return str(value)


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise workflow.InvalidCaseInput(f"{what}须为整数")
    if value < 0:
        raise workflow.InvalidCaseInput(f"{what}不能为负数")
    return value


def _validated(db: Session, name: str, value: Any) -> Any:
    if name == "category":
        category = _one_of(value, taxonomy.category_names(db=db), "类别")
        if category is None:
            raise workflow.InvalidCaseInput("类别不能为空")
        return category
    if name == "gender":
        return _one_of(value, GENDERS, "性别")
    if name == "enterprise_type":
        return _one_of(value, ENTERPRISE_TYPES, "企业类型")
    if name == "difficulty":
        difficulty = _one_of(value, [d.value for d in workflow.Difficulty], "难度")
        return difficulty or workflow.Difficulty.ordinary.value
    if name == "workers":
        return _count(value, "涉及人数")
    if name == "amount":
        return _count(value, "涉及金额")
    limit, what = _TEXT_FIELDS[name]
    if value is not None and not isinstance(value, str):
        raise workflow.InvalidCaseInput(f"{what}须为文字")
    text = (value or "").strip()
    if len(text) > limit:
        raise workflow.InvalidCaseInput(f"{what}不能超过{limit}个字")
    return text if name == "summary" else (text or None)


def _set(db: Session, case: Case, actor: str, name: str, after: Any, *, reason: str | None = None) -> bool:
    before = getattr(case, name)
    if before == after:
        return False
    setattr(case, name, after)
    details = {"field": name, "before": before, "after": after}
    if reason:  # a machine change (re-extraction): why it was made
        details["reason"] = reason
    audit.record(db=db, actor=actor, action="case.updated", subject_type="case", subject_id=case.id,
                 details=details)
    return True


def _lock(case: Case, names: Any) -> None:
    """Mark fields as set by a person: re-extraction leaves them alone from now on."""
    locked = sorted({*(case.locked_fields or []), *names})
    if locked != (case.locked_fields or []):
        case.locked_fields = locked


def change(*, db: Session, case: Case, actor: str, settings: Settings | None = None, **fields: Any) -> list[str]:
    """Apply staff changes to a case's fields, each audited as ``case.updated`` {field, before, after}.

    All values are checked before any is applied (InvalidCaseInput: nothing changed). Changing workers
    re-evaluates the group-case flag; changing difficulty moves the completion deadline. The case is indexed
    again for search after any change. Returns the fields that changed (derived ones included)."""
    unknown = sorted(set(fields) - EDITABLE)
    if unknown:
        raise workflow.InvalidCaseInput(f"不能修改这些字段：{'、'.join(unknown)}")
    settings = settings or Settings()
    values = {name: _validated(db, name, value) for name, value in fields.items()}
    changed = [name for name, value in values.items() if _set(db, case, actor, name, value)]
    _lock(case, changed)
    if "workers" in changed:
        threshold = int(getattr(settings, "group_case_workers", 10))
        if _set(db, case, actor, "group_case", case.workers is not None and case.workers >= threshold):
            changed.append("group_case")
    if "difficulty" in changed:
        policy = workflow.SlaPolicy.from_settings(settings)
        accepted = workflow.clocks(case, policy).accepted_at
        if _set(db, case, actor, "due_at", accepted + policy.completion_time(case.difficulty)):
            changed.append("due_at")
    if changed:
        case.updated_at = utcnow()
        db.flush()
    if changed:  # the fields entry follows (the transcript's entries stay as they are)
        search.index_case(db=db, case=case)
    return changed


def confirm(*, db: Session, case: Case, actor: str, username: str) -> None:
    """Staff confirm the case's values as they now stand (the machine's suggestions, or their changes)."""
    case.confirmed_by, case.confirmed_at = username, utcnow()
    _lock(case, EDITABLE)
    audit.record(db=db, actor=actor, action="case.confirmed", subject_type="case", subject_id=case.id, details={
        "confirmed_by": username, **{name: getattr(case, name) for name in sorted(EDITABLE - {"summary"})}})


def set_legal_hold(*, db: Session, case: Case, actor: str, username: str, hold: bool,
                   reason: str | None) -> list[str]:
    """Put the case on legal hold (保全: its recording and transcript are kept whatever the retention period) or
    take it off; a hold needs a reason. Each change audited as ``case.updated`` {field, before, after}; who and
    when are kept on the case. Returns the fields that changed."""
    text = (reason or "").strip() or None
    if hold and text is None:
        raise workflow.InvalidCaseInput("设置保全须写明原因（如：劳动争议仲裁中）")
    if text is not None and len(text) > 500:
        raise workflow.InvalidCaseInput("保全原因不能超过500个字")
    if (not hold and not case.legal_hold) or (hold and case.legal_hold and text == case.legal_hold_reason):
        return []  # as it already is
    changed = [name for name, value in (("legal_hold", hold), ("legal_hold_reason", text))
               if _set(db, case, actor, name, value)]
    case.legal_hold_by, case.legal_hold_at = username, utcnow()
    case.updated_at = utcnow()
    db.flush()
    return changed


# --- re-extraction -----------------------------------------------------------------------------------------

# What re-extraction may set: the category and the suggested dimensions (never a field in locked_fields).
REEXTRACTED = ("category", *SUGGESTED_FIELDS)


def transcript_segments(*, db: Session, case: Case) -> list[TranscriptSegment]:
    transcript = db.get(Transcript, case.transcript_id) if case.transcript_id else None
    return list(transcript.segments) if transcript else []


def correct_terms(*, db: Session, segments: Sequence[TranscriptSegment], actor: str) -> list[int]:
    """Domain-term correction (asr/lexicon.py, with the lexicon and the enterprises on file as they are now)
    run again on the segments no person edited; each change audited as ``transcript.term_corrected``.
    Returns the idx of the segments changed."""
    corrector = default_corrector(taxonomy.asr_terms(db=db))
    changed = []
    for seg in segments:
        if seg.edited_by is not None:
            continue
        text, pairs = corrector.correct(seg.text)
        if not pairs or text == seg.text:
            continue
        before = seg.text
        seg.text, seg.words = text, transcripts.word_rows(transcripts.carried_words(seg, text))
        audit.record(db=db, actor=actor, action="transcript.term_corrected", subject_type="transcript",
                     subject_id=seg.transcript_id, details={
                         "segment": seg.idx, "before": before, "after": text, "terms": [list(p) for p in pairs]})
        changed.append(seg.idx)
    if changed:
        db.flush()
    return changed


def _machine_owned(case: Case, name: str) -> bool:
    """A dimension re-extraction may change: nobody set it (not locked), and its value is the machine's own
    (empty, or what extraction last put there), not one from elsewhere (the caller ID, a person's change
    made before locked_fields existed)."""
    if name in (case.locked_fields or []):
        return False
    current = getattr(case, name)
    said = (case.extracted or {}).get(name)
    return current is None or (isinstance(said, dict) and said.get("value") == current
                               and said.get("source") != caller.SIGNALLING)  # the call's number stays


def _on_file_elsewhere(db: Session, case: Case, name: str) -> bool:
    """Whether an enterprise name is on file apart from this case (another case, the lexicon)."""
    other = db.execute(sa.select(Case.id).where(Case.enterprise == name, Case.id != case.id).limit(1)).first()
    term = db.execute(sa.select(LexiconTerm.id).where(LexiconTerm.term == name)).first()
    return other is not None or term is not None


def refresh_case(*, db: Session, case: Case, actor: str, settings: Settings | None = None,
                 segments: Sequence[TranscriptSegment] | None = None, reason: str = "refresh",
                 reindex_said: bool = False, scorer: Scorer | None = None,
                 resolver: NameResolver | None = None) -> list[str]:
    """The machine's suggestions made again from the transcript as it now stands (people's corrections, the
    lexicon, enterprises on file and the registry as they are now) and applied to the fields no person set:
    each change audited as ``case.updated`` {field, before, after, reason}; ``extracted`` follows for those
    fields. ``resolver``: the enterprise registry. ``scorer``: the recording's audio to check facts against; without
    it, a value found again as it was keeps the check it had, and one said in a segment a person corrected
    counts as heard right (not 待核实). The caller's number from signalling stays.
    The case is indexed again (``reindex_said``: its transcript entries too). Returns the fields changed."""
    settings = settings or Settings()
    rows = list(segments) if segments is not None else transcript_segments(db=db, case=case)
    said = [AsrSegment(s.start, s.end, s.speaker, s.text) for s in rows]
    known, terms = taxonomy.known_enterprises(db=db), taxonomy.asr_terms(db=db)
    own = (case.extracted or {}).get("enterprise", {}).get("value") or case.enterprise
    if own and _machine_owned(case, "enterprise") and not _on_file_elsewhere(db, case, own):
        # the machine's own earlier guess is no name on file: it must not pull a corrected name back to it
        known, terms = [k for k in known if k != own], tuple(t for t in terms if t != own)
    found = suggest(said, taxonomy=taxonomy.rules(db=db), known_enterprises=known, lexicon=terms,
                    group_case_workers=settings.group_case_workers, scorer=scorer, resolver=resolver)
    locked = set(case.locked_fields or [])
    changed: list[str] = []
    if "category" not in locked:
        cat = found.category
        if _set(db, case, actor, "category", cat.category, reason=reason):
            changed.append("category")
        case.category_confidence, case.category_evidence = cat.confidence, cat.evidence
    extracted = dict(case.extracted or {})
    found_extracted = found.extracted()
    edited = {s.idx: s.text for s in rows if s.edited_by is not None}
    for name in SUGGESTED_FIELDS:
        old = extracted.get(name) if isinstance(extracted.get(name), dict) else None
        if not _machine_owned(case, name) or (old and old.get("source") == caller.SIGNALLING):
            continue
        evidence = found.fields.get(name)
        value = found.value(name)
        if evidence is None:
            extracted.pop(name, None)
        else:
            new = found_extracted[name]
            said_by_person = edited.get(new.get("segment", -1))
            heard_right = said_by_person is not None and (  # said so in a segment a person corrected
                not isinstance(evidence.value, str) or evidence.value in said_by_person)
            still_holds = (scorer is None and old is not None and old.get("value") == new.get("value")
                           and old.get("status") != UNVERIFIED)  # checked on the audio when filed
            if new.get("status") == UNVERIFIED and (heard_right or still_holds):
                new["status"] = ""
                value = evidence.value
            extracted[name] = new
        if _set(db, case, actor, name, value, reason=reason):
            changed.append(name)
    if extracted != (case.extracted or {}):
        case.extracted = extracted
    if "workers" in changed:
        group = case.workers is not None and case.workers >= settings.group_case_workers
        if _set(db, case, actor, "group_case", group, reason=reason):
            changed.append("group_case")
    if changed:
        case.updated_at = utcnow()
    db.flush()
    if changed or reindex_said:
        search.index_case(db=db, case=case, segments=rows if reindex_said else None)
    return changed
