"""Case (工单) and transcript exports, opened with real readers: pypdf and poppler (pdftotext, pdffonts, pdftoppm)
read the PDFs, python-docx the DOCX files; SRT is parsed and its times checked against the segments. Numbers a
role may not see are masked in every file; a role that may not read is refused; every export is audited.

A page of a case PDF is rendered to PNG for a person to look at: into $HOTLINE_EXPORT_SCREENSHOTS when set,
else the test's tmp folder (the path is printed)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import docx
import pytest
import sqlalchemy as sa
from docx.oxml.ns import qn
from fastapi.testclient import TestClient
from pypdf import PdfReader

from app.audit.models import AuditEvent
from app.auth.permissions import UNMASKED, Masking
from app.cases.models import Case
from app.db import Database
from app.exports import service as exports
from app.recordings.models import Recording
from app.transcripts.models import Transcript
from app.users.models import Role, User
from tests.conftest import add_user, login
from tests.helpers import file_transcript

PHONE, ID_NUMBER = "13812345678", "370202199001011234"
PHONE_MASKED, ID_MASKED = "138****5678", "370***********1234"
TURNS = [
    ("caller", f"你好，我在青岛恒泰建筑工程有限公司干钢筋工，公司拖欠我们23个人的工资，一共十八万六千块钱。"
               f"我电话{PHONE}，身份证号{ID_NUMBER}。"),
    ("agent", "好的，公司在哪个区？"),
    ("caller", "在李沧区。我想要回工资。"),
]
CORRECTED = "好的，请问公司在哪个区？"
ROLE_SEES = {  # role: (sees the phone number, sees the ID number), as app/auth/permissions.py MATRIX says
    Role.agent: (True, False), Role.mediator: (True, True), Role.manager: (False, False), Role.admin: (True, True),
}
POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdffonts", "pdftoppm"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils is not installed (make setup installs it)")


@pytest.fixture
def case_id(database: Database) -> int:
    """A 欠薪 case whose caller said a phone number and an ID number; the caller's number on the case too."""
    cid = file_transcript(database, TURNS, name="export", timed=True)
    with database.session() as db:
        case = db.get(Case, cid)
        assert case is not None
        case.caller_phone = PHONE
    return cid


def _transcript_id(database: Database, case_id: int) -> int:
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None and case.transcript_id is not None
        return case.transcript_id


def _user(client: TestClient, database: Database, role: Role, name: str | None = None) -> dict[str, str]:
    name = name or f"u_{role.value}"
    add_user(database, name, role)
    return login(client, name)


def _get(client: TestClient, headers: dict[str, str], path: str, fmt: str) -> Any:
    r = client.get(path, params={"format": fmt}, headers=headers)
    assert r.status_code == 200, r.text
    return r


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        rows = list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.seq)).scalars())
        db.expunge_all()
        return rows


# --- readers -----------------------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    """The PDF's text by pypdf, and by pdftotext where poppler is installed (both must get the Chinese)."""
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    if POPPLER:
        poppler = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True,
                                 check=True).stdout.decode()
        assert "12351 职工服务热线" in poppler
        text += "\n" + poppler
    return text


def pdf_fonts(data: bytes, tmp_path: Path) -> list[dict[str, str]]:
    """pdffonts' table: one dict per font (name, type, emb, sub, uni)."""
    path = tmp_path / "fonts-check.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "type"], out
    rows = []
    for line in lines[2:]:
        # name, type (may be two words: "CID TrueType"), encoding, emb, sub, uni, object ID
        m = re.match(r"(\S+)\s+(.+?)\s+(\S+)\s+(yes|no)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+$", line)
        assert m, line
        rows.append(dict(zip(("name", "type", "encoding", "emb", "sub", "uni"), m.groups(), strict=True)))
    return rows


def docx_text(data: bytes) -> str:
    """All text python-docx finds: paragraphs, tables (cell by cell) and footers."""
    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts += [cell.text for cell in row.cells]
    for section in doc.sections:
        parts += [p.text for p in section.footer.paragraphs]
    return "\n".join(parts)


def docx_runs_without_east_asian_font(data: bytes) -> list[str]:
    """Runs (body, tables, footers) whose rFonts lack w:eastAsia, and styles still on theme fonts."""
    doc = docx.Document(io.BytesIO(data))
    roots = [doc.element.body, *(s.footer._element for s in doc.sections)]
    bad = []
    for root in roots:
        for run in root.iter(qn("w:r")):
            fonts = run.find(qn("w:rPr") + "/" + qn("w:rFonts"))
            if fonts is None or not fonts.get(qn("w:eastAsia")):
                bad.append("run: " + "".join(t.text or "" for t in run.iter(qn("w:t"))))
    for style in doc.styles.element.iter(qn("w:style")):
        for fonts in style.iter(qn("w:rFonts")):  # its own and its table parts' (first row, banding…)
            if fonts.get(qn("w:eastAsiaTheme")) or not fonts.get(qn("w:eastAsia")):
                bad.append("style: " + str(style.get(qn("w:styleId"))))
    defaults = doc.styles.element.find(qn("w:docDefaults") + "/" + qn("w:rPrDefault") + "/" + qn("w:rPr"))
    assert defaults is not None
    if defaults.find(qn("w:rFonts")).get(qn("w:eastAsia")) != "仿宋":
        bad.append("document defaults")
    return bad


SRT_CUE = re.compile(r"(\d+)\r?\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\r?\n(.+?)(?:\r?\n|$)")


def srt_cues(data: bytes) -> list[tuple[int, float, float, str]]:
    """SubRip cues (number, start, end, text); every block of the file must be one."""
    text = data.decode("utf-8")
    blocks = [b for b in re.split(r"\r?\n\r?\n", text.strip()) if b]
    cues = []
    for block in blocks:
        m = SRT_CUE.fullmatch(block)
        assert m, f"not an SRT cue: {block!r}"
        g = m.groups()
        start = int(g[1]) * 3600 + int(g[2]) * 60 + int(g[3]) + int(g[4]) / 1000
        end = int(g[5]) * 3600 + int(g[6]) * 60 + int(g[7]) + int(g[8]) / 1000
        cues.append((int(g[0]), start, end, g[9]))
    return cues


def exported_text(fmt: str, data: bytes) -> str:
    if fmt == "pdf":
        return pdf_text(data)
    if fmt == "docx":
        return docx_text(data)
    return data.decode("utf-8-sig")


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HOTLINE_EXPORT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the case ----------------------------------------------------------------------------------------------


def _move_along(client: TestClient, headers: dict[str, str], case_id: int) -> None:
    r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=headers,
                    json={"to": "转办", "unit": "李沧区总工会", "assignee": "li", "note": "请核实欠薪情况"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/cases/{case_id}/feedback", headers=headers, json={"note": "已告知来电人转办情况"})
    assert r.status_code == 200, r.text


@needs_poppler
def test_a_case_pdf_has_the_case_in_chinese_with_its_font_embedded(
    client: TestClient, database: Database, case_id: int, mediator: dict[str, str], tmp_path: Path
) -> None:
    _move_along(client, mediator, case_id)
    r = _get(client, mediator, f"/api/v1/cases/{case_id}/export", "pdf")
    data = r.content
    assert r.headers["content-type"] == "application/pdf" and data.startswith(b"%PDF-")
    text = pdf_text(data)
    found = re.search(r"12351-\d{4}-\d{6}", text)
    assert found
    case_no = found.group(0)
    for expected in ("12351 职工服务热线 工单", "转办", "来电", "欠薪", "青岛恒泰建筑工程有限公司", "李沧区",
                     "23 人", "186,000 元", "钢筋工", "李沧区总工会", "受理 → 转办", "请核实欠薪情况",
                     "已告知来电人转办情况", "承办人签字", "日期", PHONE, ID_NUMBER, "第 1 段", "诉求摘要"):
        assert expected in text or expected in re.sub(r"\s+", "", text), expected  # a long line may wrap
    # times are Beijing time: the case was made a moment ago
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        assert exports.local_time(case.created_at) in text
        assert case.case_no == case_no
        recording = db.get(Recording, case.recording_id)
        assert recording is not None and recording.sha256 in text

    fonts = pdf_fonts(data, tmp_path)
    assert any("WenQuanYi" in f["name"] for f in fonts), fonts
    assert all(f["emb"] == "yes" and f["uni"] == "yes" for f in fonts), fonts  # nothing left to the reader
    assert {f["type"] for f in fonts} <= {"TrueType", "CID TrueType"}

    folder = screenshot_dir(tmp_path)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-", str(folder / "case-export")],
                   input=data, check=True)
    png = next(folder.glob("case-export*.png"))
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    print(f"case PDF page 1: {png}")  # noqa: T201

    expected_name = f"工单_{case_no}.pdf"
    disposition = r.headers["content-disposition"]
    assert disposition == f"attachment; filename=\"case-{case_no}.pdf\"; filename*=UTF-8''{quote(expected_name)}"
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == expected_name

    [event] = _events(database, "case.exported")
    assert event.actor == "user:li" and event.subject_type == "case" and event.subject_id == str(case_id)
    assert event.details["format"] == "pdf" and event.details["sha256"] == hashlib.sha256(data).hexdigest()
    assert event.details["masked"] == {"phones": False, "ids": False} and event.details["filename"] == expected_name
    timeline = client.get(f"/api/v1/cases/{case_id}/timeline", headers=mediator).json()
    assert "case.exported" in [e["action"] for e in timeline]  # on the case's own history


def test_a_case_docx_sets_the_east_asian_font_everywhere(
    client: TestClient, database: Database, case_id: int, mediator: dict[str, str]
) -> None:
    _move_along(client, mediator, case_id)
    r = _get(client, mediator, f"/api/v1/cases/{case_id}/export", "docx")
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.wordprocessingml")
    data = r.content
    doc = docx.Document(io.BytesIO(data))
    text = docx_text(data)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        case_no = case.case_no
    for expected in (case_no, "12351 职工服务热线 工单", "转办", "186,000 元", "23 人（群体性）", "李沧区",
                     "受理 → 转办", "承办人签字", PHONE, ID_NUMBER):
        assert expected in text, expected
    assert docx_runs_without_east_asian_font(data) == []
    normal = doc.styles["Normal"].element.find(qn("w:rPr") + "/" + qn("w:rFonts"))
    heading = doc.styles["Heading 1"].element.find(qn("w:rPr") + "/" + qn("w:rFonts"))
    assert normal is not None and normal.get(qn("w:eastAsia")) == "仿宋"
    assert heading is not None and heading.get(qn("w:eastAsia")) == "黑体"
    section = doc.sections[0]
    assert section.page_width is not None and section.page_height is not None
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # A4
    # the numbers are in their cells: the amount beside its label
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert cells[cells.index("涉及金额") + 1] == "186,000 元"
    assert cells[cells.index("来电号码") + 1] == PHONE
    assert r.headers["content-disposition"].endswith(quote(f"工单_{case_no}.docx"))
    [event] = _events(database, "case.exported")
    assert event.details["format"] == "docx" and event.details["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_case_pdf_function_the_benchmark_times(database: Database, case_id: int) -> None:
    with database.session() as db:
        data = exports.case_pdf(db=db, case_id=case_id, masking=Masking.for_role("manager"))
        with pytest.raises(exports.NotFound):
            exports.case_pdf(db=db, case_id=case_id + 999, masking=UNMASKED)
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    assert PHONE_MASKED in text and PHONE not in text and ID_NUMBER not in text
    assert _events(database, "case.exported") == []  # not audited: only the route's exports are


# --- the transcript ----------------------------------------------------------------------------------------


def test_a_transcript_exports_in_every_format_with_times_speakers_and_the_recordings_digest(
    client: TestClient, database: Database, case_id: int, mediator: dict[str, str]
) -> None:
    tid = _transcript_id(database, case_id)
    r = client.patch(f"/api/v1/transcripts/{tid}/segments/1", headers=mediator,
                     json={"text": CORRECTED, "version": 0})
    assert r.status_code == 200, r.text
    with database.session() as db:
        transcript = db.get(Transcript, tid)
        assert transcript is not None
        segments = [(s.start, s.end, s.speaker, s.text) for s in transcript.segments]
        recording = db.get(Recording, transcript.recording_id)
        assert recording is not None
        sha, name = recording.sha256, recording.original_name
        case_no = db.get(Case, case_id).case_no  # type: ignore[union-attr]
    assert segments[1][3] == CORRECTED

    files = {fmt: _get(client, mediator, f"/api/v1/transcripts/{tid}/export", fmt) for fmt in
             ("srt", "txt", "docx", "pdf")}

    cues = srt_cues(files["srt"].content)
    assert [c[0] for c in cues] == [1, 2, 3]
    assert [(c[1], c[2]) for c in cues] == [(round(s, 3), round(e, 3)) for s, e, _, _ in segments]
    assert [c[3] for c in cues] == [f"{lab}：{text}" for lab, (_, _, _, text) in
                                    zip(("来电人", "接线员", "来电人"), segments, strict=True)]
    assert files["srt"].headers["content-type"].startswith("application/x-subrip")

    txt = files["txt"].content
    assert txt.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Notepad on older Windows shows the Chinese
    lines = txt.decode("utf-8-sig").splitlines()
    assert f"录音 SHA-256：{sha}" in lines and f"录音文件：{name}" in lines and f"工单编号：{case_no}" in lines
    assert f"[00:00:05-00:00:09] 接线员：{CORRECTED}〔已校对〕" in lines
    assert any(line.startswith("[00:00:00-00:00:04] 来电人：你好") for line in lines)

    for fmt in ("docx", "pdf"):
        text = exported_text(fmt, files[fmt].content)
        for expected in (sha, name, case_no, "来电人", "接线员", CORRECTED, "00:00:05", "已校对", "在李沧区"):
            assert expected in text, (fmt, expected)
    assert docx_runs_without_east_asian_font(files["docx"].content) == []
    if POPPLER:  # the digest comes out of the PDF in one piece, to compare with sha256sum's
        poppler = subprocess.run(["pdftotext", "-", "-"], input=files["pdf"].content, capture_output=True,
                                 check=True).stdout.decode()
        assert sha in poppler

    for fmt, r in files.items():
        assert r.headers["content-disposition"].endswith(quote(f"转写记录_{case_no}.{fmt}"))
    events = _events(database, "transcript.exported")
    assert [e.details["format"] for e in events] == ["srt", "txt", "docx", "pdf"]
    for event in events:
        data = files[event.details["format"]].content
        assert event.details["sha256"] == hashlib.sha256(data).hexdigest() and event.subject_id == str(tid)
        assert event.details["recording_sha256"] == sha and event.details["case_id"] == case_id


# --- masking and refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_numbers_are_masked_in_every_exported_file_for_roles_that_may_not_see_them(
    client: TestClient, database: Database, case_id: int, role: Role
) -> None:
    headers = _user(client, database, role)
    sees_phone, sees_id = ROLE_SEES[role]
    tid = _transcript_id(database, case_id)
    files = {f"case.{fmt}": _get(client, headers, f"/api/v1/cases/{case_id}/export", fmt).content
             for fmt in ("pdf", "docx")}
    files |= {f"transcript.{fmt}": _get(client, headers, f"/api/v1/transcripts/{tid}/export", fmt).content
              for fmt in ("pdf", "docx", "srt", "txt")}
    for what, data in files.items():
        text = exported_text(what.split(".")[1], data)
        assert (PHONE in text) == sees_phone, (role, what)
        assert (ID_NUMBER in text) == sees_id, (role, what)
        assert sees_phone or PHONE_MASKED in text, (role, what)
        assert sees_id or ID_MASKED in text, (role, what)
    events = _events(database, "case.exported") + _events(database, "transcript.exported")
    assert len(events) == 6
    assert all(e.details["masked"] == {"phones": not sees_phone, "ids": not sees_id} for e in events)


def test_exports_are_refused_to_a_role_that_may_not_read_and_missing_ones_are_404(
    client: TestClient, database: Database, case_id: int
) -> None:
    tid = _transcript_id(database, case_id)
    add_user(database, "guest", Role.agent)
    headers = login(client, "guest")
    with database.session() as db:  # a role the matrix does not know (left over, or typed by hand): no rights
        db.execute(sa.update(User).where(User.username == "guest").values(role="visitor"))
    for path in (f"/api/v1/cases/{case_id}/export", f"/api/v1/transcripts/{tid}/export"):
        r = client.get(path, params={"format": "pdf"}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
        assert client.get(path).status_code == 401
    denied = _events(database, "auth.denied")
    assert [e.details["permission"] for e in denied] == ["case:read", "transcript:read"]
    assert _events(database, "case.exported") == _events(database, "transcript.exported") == []

    agent = _user(client, database, Role.agent)
    assert client.get(f"/api/v1/cases/{case_id + 999}/export", headers=agent).json()["code"] == "not_found"
    r = client.get(f"/api/v1/transcripts/{tid + 999}/export", params={"format": "srt"}, headers=agent)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = client.get(f"/api/v1/cases/{case_id}/export", params={"format": "xlsx"}, headers=agent)
    assert r.status_code == 422
    r = client.get(f"/api/v1/cases/{case_id}/export", headers=agent)  # PDF unless asked otherwise
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
