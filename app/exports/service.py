"""Case and transcript exports: files people file, print, sign and hand to a mediator or a court.

Each export is made in two steps: a *sheet* (what the file says, read from the database with the requester's
``Masking`` applied — the JSON masking middleware never sees files) and a *renderer* that lays the sheet out
as PDF (app/documents/pdf.py), DOCX (app/documents/docx.py), SRT or plain text. ``export_case`` and
``export_transcript`` do both, in short transactions of their own (the rendering holds no database lock), and
put the export on the audit trail (``case.exported`` / ``transcript.exported``: format, the file's sha256,
its size, name and what was masked).

- A case: header, number, status, channel, times in Beijing time, caller (masked per role), category,
  enterprise, district, workers, amount, the other dimensions, the summary, the facts with where in the call
  each was said, the workflow history from the audit trail, and a signature block (承办人签字 / 日期).
- A transcript: every segment with its times and speaker (来电人 / 接线员, or S1, S2… for diarized sessions),
  the corrected text where staff corrected it (marked 已校对), and the recording's file name and sha256, so a
  court can check the audio file it is given against the transcript.

``case_pdf(db=…, case_id=…, masking=…)`` is what ``hotline bench reports`` times (a case PDF ≤ 0.5 s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from docx.shared import Pt
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.auth.permissions import Masking
from app.cases.models import Case
from app.db import Database, as_utc, utcnow
from app.documents import docx as wd
from app.documents import pdf
from app.documents.fonts import DOCX_HEADING
from app.enterprises.models import Enterprise
from app.recordings.models import Recording
from app.transcripts.models import Transcript

TZ = ZoneInfo("Asia/Shanghai")
HOTLINE = "12351 职工服务热线"
NONE = "—"
SHA_LABEL = "录音 SHA-256"


class CaseFormat(StrEnum):
    pdf = "pdf"
    docx = "docx"


class TranscriptFormat(StrEnum):
    docx = "docx"
    pdf = "pdf"
    srt = "srt"
    txt = "txt"


MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "srt": "application/x-subrip; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}


class NotFound(LookupError):
    """No such case or transcript."""


@dataclass(frozen=True)
class Exported:
    """One exported file: its bytes, names (Chinese, and an ASCII one for old clients), type and sha256."""

    content: bytes
    filename: str
    ascii_filename: str
    media_type: str
    sha256: str


# --- formatting ----------------------------------------------------------------------------------------------


def local_time(at: datetime | None, *, seconds: bool = False) -> str:
    """A stored (UTC) time as Beijing time, 2026-11-24 09:30; ``—`` for none."""
    if at is None:
        return NONE
    return as_utc(at).astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def clock(seconds: float, *, millis: bool = False, sep: str = ".") -> str:
    """Seconds into the recording as 00:01:05 (``millis``: 00:01:05.250, or with ``sep`` "," for SRT)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}" if millis else f"{h:02d}:{m:02d}:{s:02d}"


def duration_text(seconds: float) -> str:
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    return f"{minutes} 分 {secs} 秒（{seconds:.1f} 秒）" if minutes else f"{seconds:.1f} 秒"


def _amount(value: int | None) -> str:
    return NONE if value is None else f"{value:,} 元"


def _who(actor: str) -> str:
    return actor.removeprefix("user:") if actor.startswith("user:") else "系统"


SPEAKERS = {"caller": "来电人", "agent": "接线员"}


def speaker_label(speaker: str) -> str:
    """来电人 / 接线员 for call legs; diarized speakers keep their names (S1, S2…)."""
    return SPEAKERS.get(speaker, speaker)


FIELD_LABELS = {
    "category": "诉求类别", "enterprise": "涉及企业", "district": "所属区市", "occupation": "职业", "gender": "性别",
    "age_bracket": "年龄段", "enterprise_type": "企业类型", "arrears_type": "欠薪类别", "workers": "涉及人数",
    "amount": "涉及金额", "caller_phone": "来电号码", "callback_phone": "回拨号码", "summary": "诉求摘要",
    "difficulty": "难度", "group_case": "群体性", "due_at": "办结时限", "unit": "承办单位", "assignee": "承办人",
}
PHONE_FIELDS = frozenset({"caller_phone", "callback_phone"})


# --- the case --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """A value the machine took from the call, and where it was said."""

    label: str
    value: str
    where: str  # 第 3 段 · 来电人 00:00:12, or 来电信令（主叫号码）
    status: str  # 待核实 / 已确认 / 已修改为… / 机器提取（置信度 0.82）


@dataclass(frozen=True)
class Quote:
    """A segment a fact was taken from, quoted once however many facts it gave."""

    where: str  # 第 3 段 · 来电人 00:00:12
    text: str


@dataclass(frozen=True)
class Step:
    """One entry of the workflow history."""

    at: str
    who: str
    what: str


@dataclass(frozen=True)
class CaseSheet:
    """What a case export says, masked for its reader."""

    case_no: str
    fields: list[tuple[str, str]]  # short values: two pairs a line in the PDF
    wide_fields: list[tuple[str, str]]  # long values (names, the recording's digest): a line each
    summary: str
    facts: list[Fact]
    quotes: list[Quote]  # what was said where the facts came from, in the order of the call
    history: list[Step]
    exported: str  # 导出人 zhang，2026-11-24 10:00（北京时间）


def _case(db: Session, case_id: int) -> Case:
    case = db.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id}")
    return case


def _facts(case: Case, masking: Masking) -> tuple[list[Fact], list[Quote]]:
    out = []
    quotes: dict[tuple[int, float], Quote] = {}
    locked = set(case.locked_fields or [])
    for name, found in (case.extracted or {}).items():
        if name == "summary" or not isinstance(found, dict) or found.get("value") in (None, ""):
            continue
        label = FIELD_LABELS.get(name, name)
        raw = found["value"]
        value = masking.phone(str(raw)) if name in PHONE_FIELDS else masking.text(_show(name, raw))
        if found.get("source") == "signalling":
            where = "来电信令（主叫号码）"
        elif "start" in found:
            segment = found.get("segment")
            where = f"{speaker_label(str(found.get('speaker', '')))} {clock(float(found['start']))}"
            if isinstance(segment, int):
                where = f"第 {segment + 1} 段 · {where}"
            key = (segment if isinstance(segment, int) else -1, float(found["start"]))
            if found.get("text") and key not in quotes:
                quotes[key] = Quote(where, masking.text(str(found["text"])))
        else:
            where = NONE
        current = getattr(case, name, None) if hasattr(Case, name) else None
        if found.get("status"):
            status = str(found["status"])
        elif name in locked and current is not None and current != raw:
            shown = masking.phone(str(current)) if name in PHONE_FIELDS else masking.text(_show(name, current))
            status = f"已修改为：{shown}"
        elif name in locked or case.confirmed_by:
            status = "已确认"
        else:
            status = f"机器提取（置信度 {float(found.get('confidence') or 0):.2f}）"
        out.append(Fact(label, value, where, status))
    return out, [quotes[k] for k in sorted(quotes)]


def _show(name: str, value: Any) -> str:
    if name == "amount" and isinstance(value, int | float):
        return _amount(int(value))
    if name == "workers" and isinstance(value, int | float):
        return f"{int(value)} 人"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


HISTORY_ACTIONS = ("case.created", "case.transition", "case.feedback", "case.escalated", "case.updated",
                   "case.confirmed", "case.enterprise_linked", "transcript.corrected")


def _describe(event: AuditEvent, masking: Masking) -> str | None:
    d: dict[str, Any] = event.details or {}
    action = event.action
    if action == "case.created":
        text = (f"建单（{d.get('status') or '受理'}），渠道：{d.get('channel') or NONE}，"
                f"诉求类别：{d.get('category') or NONE}")
    elif action == "case.transition":
        text = f"{d.get('from')} → {d.get('to')}"
        if d.get("unit"):
            text += f"，承办单位：{d['unit']}"
        if d.get("assignee"):
            text += f"，承办人：{d['assignee']}"
        if d.get("note"):
            text += f"。意见：{d['note']}"
    elif action == "case.feedback":
        text = f"{'首次' if d.get('first') else ''}反馈来电人：{d.get('note') or ''}"
    elif action == "case.escalated":
        text = f"{'再次' if d.get('again') else ''}督办：{d.get('note') or ''}"
    elif action == "case.updated":
        name = str(d.get("field") or "")
        label = FIELD_LABELS.get(name, name)
        if name == "summary":
            text = "修改诉求摘要"
        else:
            before, after = (_history_value(name, d.get(k), masking) for k in ("before", "after"))
            text = f"修改{label}：{before} → {after}"
        if d.get("reason"):
            text += "（系统按校对重新提取）"
    elif action == "case.confirmed":
        text = f"确认工单信息（{d.get('confirmed_by') or _who(event.actor)}）"
    elif action == "case.enterprise_linked":
        text = "关联企业库" if d.get("after") else "取消关联企业库"
    elif action == "transcript.corrected":
        segment = d.get("segment")
        text = f"校对转写第 {int(segment) + 1} 段" if isinstance(segment, int) else "校对转写"
    else:
        return None
    return masking.text(text)


def _history_value(name: str, value: Any, masking: Masking) -> str:
    if value is None or value == "":
        return "（空）"
    if name in PHONE_FIELDS:
        return masking.phone(str(value))
    if name == "due_at" and isinstance(value, str):
        try:
            return local_time(datetime.fromisoformat(value))
        except ValueError:
            return value
    return _show(name, value)


def _history(db: Session, case: Case, masking: Masking) -> list[Step]:
    steps: list[Step] = []
    offset, page = 0, 500
    while True:
        total, events = audit.case_timeline(db=db, case_id=case.id, recording_id=case.recording_id,
                                            transcript_id=case.transcript_id, limit=page, offset=offset)
        for event in events:
            if event.action in HISTORY_ACTIONS and (what := _describe(event, masking)) is not None:
                steps.append(Step(local_time(event.at), _who(event.actor), what))
        offset += page
        if offset >= total or not events:
            return steps


def _recording(db: Session, recording_id: int) -> Recording:
    recording = db.get(Recording, recording_id)
    assert recording is not None  # a foreign key
    return recording


def case_sheet(*, db: Session, case_id: int, masking: Masking, exported_by: str = "",
               now: datetime | None = None) -> CaseSheet:
    """The case as its export shows it to a reader with ``masking`` (NotFound: no such case)."""
    case = _case(db, case_id)
    recording = _recording(db, case.recording_id)
    callback = (case.extracted or {}).get("callback_phone") or {}
    status = case.status + ("（督办）" if case.escalated else "")
    fields = [
        ("工单编号", case.case_no), ("状态", status),
        ("来源渠道", case.channel), ("来电号码", masking.phone(case.caller_phone) if case.caller_phone else NONE),
        ("建单时间", local_time(case.created_at)), ("受理时间", local_time(case.accepted_at)),
        ("反馈时限", local_time(case.feedback_due_at)), ("首次反馈", local_time(case.first_feedback_at)),
        ("办结时限", local_time(case.due_at)), ("办结时间", local_time(case.closed_at)),
        ("诉求类别", case.category), ("所属区市", case.district or NONE),
        ("涉及人数", f"{case.workers} 人{'（群体性）' if case.group_case else ''}" if case.workers is not None
         else NONE),
        ("涉及金额", _amount(case.amount)),
        ("职业", case.occupation or NONE), ("欠薪类别", case.arrears_type or NONE),
        ("性别", case.gender or NONE), ("年龄段", case.age_bracket or NONE),
        ("难度", case.difficulty), ("承办单位", case.unit or NONE),
        ("承办人", case.assignee or NONE), ("建单人", _who(f"user:{case.created_by}")),
    ]
    if isinstance(callback, dict) and callback.get("value"):
        fields.insert(4, ("回拨号码", masking.phone(str(callback["value"]))))
    enterprise = case.enterprise or NONE
    if case.enterprise_type:
        enterprise += f"（{case.enterprise_type}）"
    wide = [("涉及企业", enterprise)]
    registered = db.get(Enterprise, case.enterprise_id) if case.enterprise_id else None
    if registered is not None and registered.credit_code:
        wide.append(("统一社会信用代码", registered.credit_code))
    if case.confirmed_by:
        wide.append(("确认", f"{case.confirmed_by}，{local_time(case.confirmed_at)}"))
    wide += [("录音文件", masking.text(recording.original_name)), (SHA_LABEL, recording.sha256)]
    exported = f"导出人：{exported_by or NONE}，导出时间：{local_time(now or utcnow())}（北京时间）"
    facts, quotes = _facts(case, masking)
    return CaseSheet(case_no=case.case_no, fields=[(k, masking.text(v)) for k, v in fields],
                     wide_fields=[(k, v if k in (SHA_LABEL, "统一社会信用代码") else masking.text(v))
                                  for k, v in wide],
                     summary=masking.text(case.summary or ""), facts=facts, quotes=quotes,
                     history=_history(db, case, masking), exported=exported)


CASE_TITLE = f"{HOTLINE} 工单"
SIGNATURES = ("承办人签字：", "日期：")


def render_case_pdf(sheet: CaseSheet) -> bytes:
    st = pdf.styles()
    story: list[pdf.Flowable] = [*pdf.title(CASE_TITLE, sheet.case_no)]
    story.append(pdf.key_value_table(sheet.fields, key_width=22 * pdf.mm, columns=2))
    story.append(pdf.key_value_table(
        [(k, pdf.paragraph(v, st.mono) if k == SHA_LABEL else v) for k, v in sheet.wide_fields],
        key_width=26 * pdf.mm))
    story += [pdf.heading("诉求摘要"), pdf.paragraph(sheet.summary or "（无）")]
    story.append(pdf.heading("通话中提取的信息及出处"))
    if sheet.facts:
        story.append(pdf.table(["项目", "内容", "出处", "状态"],
                               [[f.label, f.value, f.where, f.status] for f in sheet.facts],
                               widths=[20 * pdf.mm, None, 40 * pdf.mm, 40 * pdf.mm], font_size=9))
        story += [pdf.paragraph(f"{q.where}：“{q.text}”", st.small) for q in sheet.quotes]
    else:
        story.append(pdf.paragraph("（无）"))
    story.append(pdf.heading("办理过程"))
    if sheet.history:
        story.append(pdf.table(["时间（北京时间）", "操作人", "内容"],
                               [[s.at, s.who, s.what] for s in sheet.history],
                               widths=[32 * pdf.mm, 22 * pdf.mm, None], font_size=9))
    else:
        story.append(pdf.paragraph("（无）"))
    story += [pdf.spacer(), pdf.paragraph(sheet.exported, st.small), pdf.signature_block(SIGNATURES)]
    return pdf.build(story, title=f"工单 {sheet.case_no}", subject=CASE_TITLE,
                     footer=f"{HOTLINE} · 工单 {sheet.case_no}")


def render_case_docx(sheet: CaseSheet) -> bytes:
    doc = wd.new_document(title=f"工单 {sheet.case_no}", subject=CASE_TITLE)
    wd.add_title(doc, CASE_TITLE, subtitle=sheet.case_no)
    wd.add_key_value_table(doc, sheet.fields, key_cm=2.4, columns=2)
    wd.add_key_value_table(doc, sheet.wide_fields, key_cm=2.6, mono_keys=(SHA_LABEL,))
    wd.add_heading(doc, "诉求摘要")
    wd.add_paragraph(doc, sheet.summary or "（无）", first_line_indent=True)
    wd.add_heading(doc, "通话中提取的信息及出处")
    if sheet.facts:
        wd.add_table(doc, ["项目", "内容", "出处", "状态"],
                     [[f.label, f.value, f.where, f.status] for f in sheet.facts], widths_cm=[2.0, None, 4.0, 4.0],
                     size=9)
        for q in sheet.quotes:
            wd.add_paragraph(doc, f"{q.where}：“{q.text}”", size=9)
    else:
        wd.add_paragraph(doc, "（无）")
    wd.add_heading(doc, "办理过程")
    if sheet.history:
        wd.add_table(doc, ["时间（北京时间）", "操作人", "内容"], [[s.at, s.who, s.what] for s in sheet.history],
                     widths_cm=[3.2, 2.2, None], size=9)
    else:
        wd.add_paragraph(doc, "（无）")
    wd.add_paragraph(doc, "")
    wd.add_paragraph(doc, sheet.exported, size=9)
    wd.add_signature_block(doc, SIGNATURES)
    wd.set_footer(doc, f"{HOTLINE} · 工单 {sheet.case_no}")
    return wd.to_bytes(doc)


def case_pdf(*, db: Session, case_id: int, masking: Masking, exported_by: str = "") -> bytes:
    """The case as a PDF for a reader with ``masking`` (not audited: ``export_case`` is the audited way)."""
    return render_case_pdf(case_sheet(db=db, case_id=case_id, masking=masking, exported_by=exported_by))


def case_docx(*, db: Session, case_id: int, masking: Masking, exported_by: str = "") -> bytes:
    """The case as a DOCX for a reader with ``masking`` (not audited)."""
    return render_case_docx(case_sheet(db=db, case_id=case_id, masking=masking, exported_by=exported_by))


CASE_RENDERERS: dict[CaseFormat, Callable[[CaseSheet], bytes]] = {
    CaseFormat.pdf: render_case_pdf, CaseFormat.docx: render_case_docx}


# --- the transcript ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One segment as exported: times in the recording, speaker label, (corrected) text."""

    index: int
    start: float
    end: float
    speaker: str
    text: str
    corrected: bool


@dataclass(frozen=True)
class TranscriptSheet:
    """What a transcript export says, masked for its reader."""

    transcript_id: int
    case_id: int | None
    case_no: str | None
    recording_name: str
    recording_sha256: str
    fields: list[tuple[str, str]]
    lines: list[Line]
    exported: str
    notes: list[str] = field(default_factory=list)


TRANSCRIPT_TITLE = f"{HOTLINE} 通话转写记录"


def transcript_sheet(*, db: Session, transcript_id: int, masking: Masking, exported_by: str = "",
                     now: datetime | None = None) -> TranscriptSheet:
    """The transcript as its export shows it to a reader with ``masking`` (NotFound: no such transcript)."""
    transcript = db.get(Transcript, transcript_id)
    if transcript is None:
        raise NotFound(f"transcript {transcript_id}")
    recording = _recording(db, transcript.recording_id)
    case = db.execute(sa.select(Case).where(sa.or_(Case.transcript_id == transcript.id,
                                                   Case.recording_id == recording.id))
                      .order_by(Case.id).limit(1)).scalar_one_or_none()
    from app.calls.models import Call  # a leaf module

    call = db.execute(sa.select(Call).where(Call.recording_id == recording.id).order_by(Call.id).limit(1)
                      ).scalar_one_or_none()
    lines = [Line(s.idx, s.start, s.end, speaker_label(s.speaker), masking.text(s.text), s.machine_text is not None)
             for s in transcript.segments]
    name = masking.text(recording.original_name)
    fields = [
        ("工单编号", case.case_no if case else NONE),
        ("录音文件", name),
        (SHA_LABEL, recording.sha256),
        ("录音时长", duration_text(recording.duration)),
        ("通话开始", local_time(call.started_at, seconds=True) if call else NONE),
        ("录音入库", local_time(recording.created_at, seconds=True)),
        ("来源渠道", recording.channel),
        ("转写", f"{transcript.engine} {transcript.model}，{local_time(transcript.created_at)}；"
               f"共 {len(lines)} 段，其中人工校对 {sum(li.corrected for li in lines)} 段"),
    ]
    notes = ["时间为录音内的时刻（时:分:秒）。标有「已校对」的段落为工作人员校对后的文字，机器识别原文保留在系统中。",
             "核对录音：对所收到的录音文件计算 SHA-256（如 sha256sum 文件名），应与上列值完全一致。"]
    if masking.active:
        notes.append("按导出人的权限，部分电话号码或身份证号已作遮盖处理。")
    exported = f"导出人：{exported_by or NONE}，导出时间：{local_time(now or utcnow())}（北京时间）"
    return TranscriptSheet(transcript_id=transcript.id, case_id=case.id if case else None,
                           case_no=case.case_no if case else None, recording_name=name,
                           recording_sha256=recording.sha256, fields=fields, lines=lines, exported=exported,
                           notes=notes)


def _footer(sheet: TranscriptSheet) -> str:
    return f"{HOTLINE} · 转写记录 {sheet.case_no or sheet.transcript_id} · 录音 SHA-256 {sheet.recording_sha256[:16]}…"


def render_transcript_pdf(sheet: TranscriptSheet) -> bytes:
    st = pdf.styles()
    story: list[pdf.Flowable] = [*pdf.title(TRANSCRIPT_TITLE, sheet.case_no)]
    story.append(pdf.key_value_table(
        [(k, pdf.paragraph(v, st.mono) if k == SHA_LABEL else v) for k, v in sheet.fields], key_width=26 * pdf.mm))
    story += [pdf.spacer(2 * pdf.mm), *(pdf.paragraph(note, st.small) for note in sheet.notes)]
    story.append(pdf.heading("转写内容"))
    line_style = pdf.ParagraphStyle("line", parent=st.body, leftIndent=0, spaceAfter=4)
    for line in sheet.lines:
        marker = "〔已校对〕" if line.corrected else ""
        markup = (f'<font name="{pdf.MONO}" size="9" color="#555555">[{clock(line.start)}–{clock(line.end)}]</font> '
                  f"{pdf.escape(line.speaker)}：{pdf.escape(line.text)}"
                  f'<font size="8" color="#555555">{marker}</font>')
        story.append(pdf.Paragraph(markup, line_style))
    if not sheet.lines:
        story.append(pdf.paragraph("（无）"))
    story += [pdf.spacer(), pdf.paragraph(sheet.exported, st.small), pdf.signature_block(("核对人签字：", "日期："))]
    return pdf.build(story, title=f"转写记录 {sheet.case_no or sheet.transcript_id}", subject=TRANSCRIPT_TITLE,
                     footer=_footer(sheet))


def render_transcript_docx(sheet: TranscriptSheet) -> bytes:
    doc = wd.new_document(title=f"转写记录 {sheet.case_no or sheet.transcript_id}", subject=TRANSCRIPT_TITLE)
    wd.add_title(doc, TRANSCRIPT_TITLE, subtitle=sheet.case_no)
    wd.add_key_value_table(doc, sheet.fields, key_cm=2.4, mono_keys=(SHA_LABEL,))
    for note in sheet.notes:
        wd.add_paragraph(doc, note, size=9)
    wd.add_heading(doc, "转写内容")
    for line in sheet.lines:
        paragraph = doc.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(4)
        wd.add_run(paragraph, f"[{clock(line.start)}–{clock(line.end)}] ", latin=wd.MONO, size=9)
        wd.add_run(paragraph, f"{line.speaker}：", font=DOCX_HEADING)
        wd.add_run(paragraph, line.text)
        if line.corrected:
            wd.add_run(paragraph, "〔已校对〕", size=8)
    if not sheet.lines:
        wd.add_paragraph(doc, "（无）")
    wd.add_paragraph(doc, "")
    wd.add_paragraph(doc, sheet.exported, size=9)
    wd.add_signature_block(doc, ("核对人签字：", "日期："))
    wd.set_footer(doc, _footer(sheet))
    return wd.to_bytes(doc)


def render_transcript_srt(sheet: TranscriptSheet) -> bytes:
    """SubRip: one cue per segment, ``来电人：text``; CRLF line ends (what Windows players expect)."""
    cues = [f"{n}\r\n{clock(line.start, millis=True, sep=',')} --> {clock(line.end, millis=True, sep=',')}\r\n"
            f"{line.speaker}：{line.text}\r\n" for n, line in enumerate(sheet.lines, start=1)]
    return "\r\n".join(cues).encode()


def render_transcript_txt(sheet: TranscriptSheet) -> bytes:
    """Plain text (UTF-8 with a BOM and CRLF, so Notepad on older Windows shows the Chinese): the header with
    the recording's name and sha256, then ``[00:00:05-00:00:09] 来电人：text`` a line."""
    out = [TRANSCRIPT_TITLE, ""]
    out += [f"{k}：{v}" for k, v in sheet.fields]
    out += ["", *sheet.notes, sheet.exported, "", "—— 转写内容 ——", ""]
    out += [f"[{clock(line.start)}-{clock(line.end)}] {line.speaker}：{line.text}"
            f"{'〔已校对〕' if line.corrected else ''}" for line in sheet.lines]
    return ("\ufeff" + "\r\n".join(out) + "\r\n").encode()


TRANSCRIPT_RENDERERS: dict[TranscriptFormat, Callable[[TranscriptSheet], bytes]] = {
    TranscriptFormat.docx: render_transcript_docx, TranscriptFormat.pdf: render_transcript_pdf,
    TranscriptFormat.srt: render_transcript_srt, TranscriptFormat.txt: render_transcript_txt,
}


# --- audited exports -------------------------------------------------------------------------------------------


def _exported(content: bytes, stem: str, ascii_stem: str, fmt: str) -> Exported:
    return Exported(content=content, filename=f"{stem}.{fmt}", ascii_filename=f"{ascii_stem}.{fmt}",
                    media_type=MEDIA_TYPES[fmt], sha256=hashlib.sha256(content).hexdigest())


def _masked(masking: Masking) -> dict[str, bool]:
    return {"phones": masking.phones, "ids": masking.ids}


def export_case(*, database: Database, case_id: int, fmt: CaseFormat, masking: Masking, username: str) -> Exported:
    """The case rendered as ``fmt`` for ``username`` and audited as ``case.exported`` {format, sha256, bytes,
    filename, masked}. Reading and auditing are short transactions of their own; rendering holds none."""
    with database.session() as db:
        sheet = case_sheet(db=db, case_id=case_id, masking=masking, exported_by=username)
    out = _exported(CASE_RENDERERS[fmt](sheet), f"工单_{sheet.case_no}", f"case-{sheet.case_no}", fmt.value)
    with database.session() as db:
        audit.record(db=db, actor=f"user:{username}", action="case.exported", subject_type="case",
                     subject_id=case_id, details={"format": fmt.value, "sha256": out.sha256,
                                                  "bytes": len(out.content), "filename": out.filename,
                                                  "masked": _masked(masking)})
    return out


def export_transcript(*, database: Database, transcript_id: int, fmt: TranscriptFormat, masking: Masking,
                      username: str) -> Exported:
    """The transcript rendered as ``fmt`` for ``username`` and audited as ``transcript.exported`` {format,
    sha256, bytes, filename, masked, case_id, recording_sha256}."""
    with database.session() as db:
        sheet = transcript_sheet(db=db, transcript_id=transcript_id, masking=masking, exported_by=username)
    name = sheet.case_no or f"T{sheet.transcript_id}"
    out = _exported(TRANSCRIPT_RENDERERS[fmt](sheet), f"转写记录_{name}", f"transcript-{name}", fmt.value)
    with database.session() as db:
        audit.record(db=db, actor=f"user:{username}", action="transcript.exported", subject_type="transcript",
                     subject_id=transcript_id, details={
                         "format": fmt.value, "sha256": out.sha256, "bytes": len(out.content),
                         "filename": out.filename, "masked": _masked(masking), "case_id": sheet.case_id,
                         "recording_sha256": sheet.recording_sha256})
    return out
