"""The enterprise registry: import (CSV/XLSX, all or nothing), search, detail with its cases, resolution of
heard names, and linking cases to enterprises — every change audited."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.extract import DISTRICT_ALIASES, DISTRICTS
from app.cases.models import Case, CaseStatus
from app.cases.service import ENTERPRISE_TYPES
from app.db import utcnow
from app.enterprises.models import (
    AliasSource,
    CategoryCount,
    Enterprise,
    EnterpriseAlias,
    EnterpriseStats,
    ImportResult,
    ImportRowError,
    MonthCount,
)
from app.enterprises.resolve import Resolver

Progress = Callable[[str, int, int], None]  # (stage, done, total)
CHUNK = 5000


@dataclass
class EnterpriseError(Exception):
    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class ImportFailed(Exception):
    """The file was refused as a whole: every bad row, nothing imported."""

    errors: list[ImportRowError]
    rows: int = 0

    def __str__(self) -> str:
        return f"导入失败：{len(self.errors)} 处错误，未导入任何企业"


# --- 统一社会信用代码 (GB 32100-2015) ---------------------------------------------------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CHARSET)}
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_check_char(first17: str) -> str:
    """The 18th character of a credit code whose first 17 are ``first17`` (31 - Σ value·weight mod 31)."""
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 统一社会信用代码, in Chinese; None when it is."""
    if len(code) != 18:
        return f"统一社会信用代码应为 18 位，实为 {len(code)} 位"
    bad = sorted({c for c in code if c not in _CREDIT_VALUE})
    if bad:
        return f"统一社会信用代码含非法字符：{'、'.join(bad)}（不使用 I、O、Z、S、V）"
    if not code[2:8].isdigit():
        return "统一社会信用代码第 3–8 位应为行政区划代码（数字）"
    expected = credit_check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码校验位错误（应为 {expected}）"
    return None


def normalize_credit_code(raw: str) -> str:
    return raw.strip().upper().replace(" ", "").replace("\u3000", "")


def valid_credit_code(code: str) -> bool:
    return credit_code_problem(normalize_credit_code(code)) is None


# --- import ---------------------------------------------------------------------------------------------

FIELDS = ("name", "credit_code", "district", "address", "industry", "enterprise_type", "aliases")
FIELD_LABELS = {"name": "企业名称", "credit_code": "统一社会信用代码", "district": "区市", "address": "地址",
                "industry": "行业", "enterprise_type": "企业类型", "aliases": "别名"}
_HEADERS = {
    "name": ("企业名称", "名称", "单位名称", "企业", "公司名称", "name", "enterprise", "enterprisename", "company",
             "companyname"),
    "credit_code": ("统一社会信用代码", "社会信用代码", "信用代码", "creditcode", "uscc", "unifiedsocialcreditcode",
                    "code"),
    "district": ("区市", "所属区市", "区（市）", "所属区（市）", "区(市)", "所属区(市)", "区县", "所属区县", "区域",
                 "所属区域", "district", "area"),
    "address": ("地址", "注册地址", "住所", "经营地址", "企业地址", "address"),
    "industry": ("行业", "所属行业", "行业类别", "行业门类", "industry"),
    "enterprise_type": ("企业类型", "类型", "单位性质", "经济类型", "企业性质", "enterprisetype", "type"),
    "aliases": ("别名", "曾用名", "简称", "别称", "aliases", "alias", "othernames"),
}
_HEADER_OF = {re.sub(r"[\s_\-]", "", h).lower(): f for f, hs in _HEADERS.items() for h in hs}
_ALIAS_SPLIT = re.compile(r"[；;、|/\n]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPE_HINTS = (("国有", "国有"), ("国营", "国有"), ("集体", "集体"), ("外商", "外资"), ("外资", "外资"),
               ("中外", "外资"), ("港澳台", "外资"), ("台港澳", "外资"), ("个体", "个体"), ("机关", "机关事业"),
               ("事业", "机关事业"), ("私营", "民营"), ("民营", "民营"), ("自然人", "民营"))
MAX_LEN = {"name": 128, "address": 256, "industry": 64}


@dataclass
class Row:
    line: int  # spreadsheet row number
    name: str
    credit_code: str | None
    district: str | None
    address: str
    industry: str
    enterprise_type: str | None
    aliases: list[str] = field(default_factory=list)
    present: frozenset[str] = frozenset()  # the columns the file has


def district_of(raw: str) -> str | None:
    """A Qingdao district as written in a registry (青岛市崂山区, 崂山, 西海岸新区); None if not one."""
    text = raw.strip().replace(" ", "")
    for city in ("山东省", "青岛市", "青岛"):
        if text.startswith(city) and len(text) > len(city):
            text = text[len(city):]
    if text in DISTRICTS:
        return text
    return DISTRICT_ALIASES.get(text)


def enterprise_type_of(raw: str) -> str:
    text = raw.strip()
    if text in ENTERPRISE_TYPES:
        return text
    for hint, value in _TYPE_HINTS:
        if hint in text:
            return value
    return "其他"


def _decode(data: bytes) -> tuple[str, list[ImportRowError]]:
    """UTF-8 (with or without BOM), else GB18030 (Excel on Chinese Windows writes GBK); lines neither
    reads are reported by their line number."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    utf8_bad, utf8_good = [], 0
    for n, line in enumerate(lines, 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8-sig" if n == 1 else "utf-8")
            utf8_good += 1
        except UnicodeDecodeError:
            utf8_bad.append(n)
    if utf8_good > len(utf8_bad):  # a UTF-8 file with a few lines in another encoding
        return "", [ImportRowError(row=n, message="该行编码不是 UTF-8（文件其余部分为 UTF-8），请统一另存为 UTF-8")
                    for n in utf8_bad]
    try:
        return data.decode("gb18030"), []
    except UnicodeDecodeError:
        pass
    errors = []
    for n, line in enumerate(lines, 1):
        try:
            line.decode("gb18030")
        except UnicodeDecodeError:
            errors.append(ImportRowError(row=n, message="无法识别该行的文字编码（应为 UTF-8 或 GBK/GB18030）"))
    return "", errors or [ImportRowError(row=0, message="无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(data: bytes) -> tuple[Iterator[list[str]], list[ImportRowError]]:
    """The rows of a CSV or XLSX file as lists of strings (the header first)."""
    if data[:4] == b"PK\x03\x04":
        try:
            from openpyxl import load_workbook

            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            return iter(()), [ImportRowError(row=0, message=f"无法读取 Excel 文件：{e}")]
        sheet = book.worksheets[0]
        return ([_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)), []
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return iter(()), [ImportRowError(row=0, message="不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV")]
    text, errors = _decode(data)
    if errors:
        return iter(()), errors
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    return (list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), []


def read_rows(data: bytes) -> tuple[list[Row], list[ImportRowError]]:
    """Parse and check every row (row numbers as the spreadsheet shows them: the header is row 1)."""
    table, errors = _table(data)
    if errors:
        return [], errors
    header = next(table, None)
    if header is None:
        return [], [ImportRowError(row=0, message="文件为空")]
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        key = _HEADER_OF.get(re.sub(r"[\s_\-]", "", h.lstrip("\ufeff")).lower())
        if key and key not in columns:
            columns[key] = i
    if "name" not in columns:
        return [], [ImportRowError(row=1, column="企业名称", message=(
            "缺少“企业名称”列（表头应为 企业名称、统一社会信用代码、区市、地址、行业、企业类型、别名）"))]
    present = frozenset(columns)
    rows: list[Row] = []
    by_code: dict[str, int] = {}
    by_name: dict[str, int] = {}
    for line, raw in enumerate(table, 2):
        if not any(c.strip() for c in raw):
            continue
        values = {f: (raw[i].strip() if i < len(raw) else "") for f, i in columns.items()}
        problems: list[tuple[str, str]] = []
        name = re.sub(r"\s+", "", values.get("name", ""))
        if not name:
            problems.append(("name", "企业名称为空"))
        elif len(name) > MAX_LEN["name"] or _CONTROL.search(name):
            problems.append(("name", "企业名称过长或含控制字符"))
        elif name in by_name:
            problems.append(("name", f"企业名称与第 {by_name[name]} 行重复"))
        code = normalize_credit_code(values.get("credit_code", "")) or None
        if code:
            problem = credit_code_problem(code)
            if problem:
                problems.append(("credit_code", f"{problem}：{code}"))
            elif code in by_code:
                problems.append(("credit_code", f"统一社会信用代码与第 {by_code[code]} 行重复：{code}"))
        district = None
        if values.get("district"):
            district = district_of(values["district"])
            if district is None:
                problems.append(("district", f"未知的区市：{values['district']}（应为青岛市十个区市之一）"))
        for f in ("address", "industry"):
            if len(values.get(f, "")) > MAX_LEN[f]:
                problems.append((f, f"{FIELD_LABELS[f]}过长（最多 {MAX_LEN[f]} 字）"))
        split = _ALIAS_SPLIT.split(values.get("aliases", ""))
        aliases = [a for a in dict.fromkeys(re.sub(r"\s+", "", x) for x in split) if a and a != name]
        if any(len(a) > MAX_LEN["name"] for a in aliases):
            problems.append(("aliases", "别名过长"))
        for f, message in problems:
            errors.append(ImportRowError(row=line, column=FIELD_LABELS[f], message=message))
        if problems:
            continue
        by_name[name] = line
        if code:
            by_code[code] = line
        rows.append(Row(line=line, name=name, credit_code=code, district=district,
                        address=values.get("address", ""), industry=values.get("industry", ""),
                        enterprise_type=enterprise_type_of(values["enterprise_type"])
                        if values.get("enterprise_type") else None,
                        aliases=aliases, present=present))
    if not rows and not errors:
        errors.append(ImportRowError(row=0, message="文件中没有企业数据"))
    return rows, errors


def _read_bytes(path_or_bytes: Path | str | bytes) -> bytes:
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes
    return Path(path_or_bytes).read_bytes()


def import_file(*, db: Session, path_or_bytes: Path | str | bytes, actor: str, progress: Progress | None = None,
                filename: str | None = None) -> ImportResult:
    """Import a registry file (CSV or XLSX) in the caller's transaction: all rows or none.

    Existing enterprises are updated by 统一社会信用代码, else by exact name; empty cells keep what is on
    file. Raises ImportFailed with every bad row (row numbers as the spreadsheet shows them)."""
    data = _read_bytes(path_or_bytes)
    if filename is None and not isinstance(path_or_bytes, bytes):
        filename = Path(path_or_bytes).name
    rows, errors = read_rows(data)
    total = len(rows)
    if progress:
        progress("检查", total, total)
    existing = db.execute(sa.select(Enterprise.id, Enterprise.name, Enterprise.credit_code)).all()
    id_by_code = {r.credit_code: r.id for r in existing if r.credit_code}
    id_by_name = {r.name: r.id for r in existing}
    code_of = {r.id: r.credit_code for r in existing}
    alias_owner = {str(a): int(e)
                   for a, e in db.execute(sa.select(EnterpriseAlias.alias, EnterpriseAlias.enterprise_id))}
    targets: list[int | None] = []
    for row in rows:
        target = id_by_code.get(row.credit_code) if row.credit_code else None
        if target is None:
            by_name = id_by_name.get(row.name)
            if by_name is not None and row.credit_code and code_of.get(by_name) not in (None, row.credit_code):
                errors.append(ImportRowError(row=row.line, column="统一社会信用代码", message=(
                    f"企业名称已登记，但统一社会信用代码不同（库中为 {code_of[by_name]}）")))
                targets.append(None)
                continue
            target = by_name
        holder = id_by_name.get(row.name)
        if target is not None and holder is not None and holder != target:
            errors.append(ImportRowError(row=row.line, column="企业名称",
                                         message="企业名称已被另一家已登记企业使用"))
        targets.append(target)
    # Aliases: each names one enterprise, and is no other enterprise's name.
    alias_rows: dict[str, int] = {}
    for row in rows:
        for a in row.aliases:
            if a in alias_rows and alias_rows[a] != row.line:
                errors.append(ImportRowError(row=row.line, column="别名",
                                             message=f"别名“{a}”与第 {alias_rows[a]} 行的别名重复"))
            alias_rows.setdefault(a, row.line)
    file_names = {row.name: row.line for row in rows}
    for row, target in zip(rows, targets, strict=True):
        for a in row.aliases:
            if a in file_names:
                errors.append(ImportRowError(row=row.line, column="别名",
                                             message=f"别名“{a}”是第 {file_names[a]} 行的企业名称"))
            elif a in id_by_name and id_by_name[a] != target:
                errors.append(ImportRowError(row=row.line, column="别名", message=f"别名“{a}”是另一家已登记企业的名称"))
            elif a in alias_owner and alias_owner[a] != target:
                errors.append(ImportRowError(row=row.line, column="别名", message=f"别名“{a}”已属于另一家企业"))
    if errors:
        errors.sort(key=lambda e: e.row)
        raise ImportFailed(errors, total)
    now = utcnow()
    new_rows = [r for r, t in zip(rows, targets, strict=True) if t is None]
    updates: list[dict[str, Any]] = []
    unchanged = 0
    if any(t is not None for t in targets):
        current: dict[int, Enterprise] = {}
        wanted = [t for t in targets if t is not None]
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            current.update({e.id: e for e in db.execute(sa.select(Enterprise).where(Enterprise.id.in_(chunk)))
                            .scalars()})
        for row, target in zip(rows, targets, strict=True):
            if target is None:
                continue
            e = current[target]
            values = _values(row)
            diff = {k: v for k, v in values.items() if getattr(e, k) != v}
            if diff:
                updates.append({"id": target, **diff, "updated_at": now})
            elif not [a for a in row.aliases if a not in alias_owner]:
                unchanged += 1
    done = 0
    for start in range(0, len(new_rows), CHUNK):
        batch = new_rows[start:start + CHUNK]
        db.execute(sa.insert(Enterprise), [{"name": r.name, "credit_code": r.credit_code, "district": r.district,
                                            "address": r.address, "industry": r.industry,
                                            "enterprise_type": r.enterprise_type, "created_at": now,
                                            "updated_at": now} for r in batch])
        done += len(batch)
        if progress:
            progress("写入", done, total)
    if updates:
        db.expire_all()
        for start in range(0, len(updates), CHUNK):
            db.execute(sa.update(Enterprise), updates[start:start + CHUNK])
            done += len(updates[start:start + CHUNK])
            if progress:
                progress("写入", done, total)
    alias_values: list[dict[str, Any]] = []
    if any(r.aliases for r in rows):
        ids = _ids_by_name(db, [r.name for r in rows if r.aliases])
        for row in rows:
            for a in row.aliases:
                if a not in alias_owner:
                    alias_values.append({"enterprise_id": ids[row.name], "alias": a,
                                         "source": AliasSource.imported.value, "created_by": actor,
                                         "created_at": now})
        for start in range(0, len(alias_values), CHUNK):
            db.execute(sa.insert(EnterpriseAlias), alias_values[start:start + CHUNK])
    if progress:
        progress("写入", total, total)
    result = ImportResult(rows=total, created=len(new_rows), updated=len(updates), unchanged=unchanged,
                          aliases=len(alias_values))
    audit.record(db=db, actor=actor, action="enterprises.imported", subject_type="enterprise", subject_id="-",
                 details={**result.model_dump(), "file": filename})
    db.flush()
    _forget_resolver(db)
    return result


def _values(row: Row) -> dict[str, Any]:
    """The values a row sets on an existing enterprise: its name, and each other cell it fills."""
    values: dict[str, Any] = {"name": row.name}
    if row.credit_code:
        values["credit_code"] = row.credit_code
    for f in ("district", "enterprise_type"):
        if getattr(row, f):
            values[f] = getattr(row, f)
    for f in ("address", "industry"):
        if getattr(row, f):
            values[f] = getattr(row, f)
    return values


def _ids_by_name(db: Session, names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        out.update({str(n): int(i) for n, i in db.execute(
            sa.select(Enterprise.name, Enterprise.id).where(Enterprise.name.in_(chunk)))})
    return out


# --- reading --------------------------------------------------------------------------------------------


def get(*, db: Session, enterprise_id: int) -> Enterprise | None:
    return db.get(Enterprise, enterprise_id)


def search(*, db: Session, q: str | None = None, district: str | None = None, limit: int = 50,
           offset: int = 0) -> tuple[int, list[tuple[Enterprise, int]]]:
    """Enterprises whose name, alias or credit code contains ``q``, with how many cases are linked."""
    stmt = sa.select(Enterprise)
    if q:
        q = q.strip()
        alias_hit = sa.select(EnterpriseAlias.enterprise_id).where(EnterpriseAlias.alias.contains(q, autoescape=True))
        stmt = stmt.where(sa.or_(Enterprise.name.contains(q, autoescape=True),
                                 Enterprise.credit_code == q.upper(), Enterprise.id.in_(alias_hit)))
    if district:
        stmt = stmt.where(Enterprise.district == district)
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(db.execute(stmt.order_by(Enterprise.name).limit(limit).offset(offset)).scalars())
    counts: dict[int, int] = {}
    if rows:
        counts = {int(eid): int(n) for eid, n in db.execute(
            sa.select(Case.enterprise_id, sa.func.count()).where(Case.enterprise_id.in_([r.id for r in rows]))
            .group_by(Case.enterprise_id)) if eid is not None}
    return int(total), [(r, counts.get(r.id, 0)) for r in rows]


def aliases(*, db: Session, enterprise_id: int) -> list[EnterpriseAlias]:
    return list(db.execute(sa.select(EnterpriseAlias).where(EnterpriseAlias.enterprise_id == enterprise_id)
                           .order_by(EnterpriseAlias.created_at, EnterpriseAlias.id)).scalars())


def cases_of(*, db: Session, enterprise_id: int, limit: int = 200) -> list[Case]:
    return list(db.execute(sa.select(Case).where(Case.enterprise_id == enterprise_id)
                           .order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)).scalars())


def stats(*, db: Session, enterprise_id: int) -> EnterpriseStats:
    """Its cases over time (by month), by category, and the amounts and workers involved."""
    rows = db.execute(sa.select(Case.created_at, Case.category, Case.amount, Case.workers, Case.status,
                                Case.group_case).where(Case.enterprise_id == enterprise_id)).all()
    months: dict[str, list[int]] = {}
    categories: dict[str, int] = {}
    for r in rows:
        m = months.setdefault(r.created_at.strftime("%Y-%m"), [0, 0, 0])
        m[0] += 1
        m[1] += r.amount or 0
        m[2] += r.workers or 0
        categories[r.category] = categories.get(r.category, 0) + 1
    return EnterpriseStats(
        cases=len(rows), open_cases=sum(r.status != CaseStatus.closed for r in rows),
        amount=sum(r.amount or 0 for r in rows), workers=sum(r.workers or 0 for r in rows),
        group_cases=sum(bool(r.group_case) for r in rows),
        by_month=[MonthCount(month=k, cases=v[0], amount=v[1], workers=v[2]) for k, v in sorted(months.items())],
        categories=[CategoryCount(category=k, cases=v) for k, v in sorted(categories.items(), key=lambda kv: -kv[1])],
    )


# --- resolution -----------------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[str, tuple[tuple[Any, ...], Resolver, float]] = {}
RECHECK_S = 5.0  # how often a cached resolver checks the registry for changes made by other processes


def _forget_resolver(db: Session) -> None:
    """This process changed the registry: the next resolver() call rebuilds."""
    with _cache_lock:
        _cache.pop(str(db.get_bind().engine.url), None)


def registry_version(*, db: Session) -> tuple[Any, ...]:
    """Changes whenever an enterprise or alias is added, changed or removed."""
    e = db.execute(sa.select(sa.func.count(Enterprise.id), sa.func.max(Enterprise.updated_at),
                             sa.func.max(Enterprise.id))).one()
    a = db.execute(sa.select(sa.func.count(EnterpriseAlias.id), sa.func.max(EnterpriseAlias.id))).one()
    return (*e, *a)


def _entries(db: Session) -> Iterable[tuple[int, str, list[str]]]:
    by_id: dict[int, list[str]] = {}
    for eid, alias in db.execute(sa.select(EnterpriseAlias.enterprise_id, EnterpriseAlias.alias)):
        by_id.setdefault(eid, []).append(alias)
    for eid, name in db.execute(sa.select(Enterprise.id, Enterprise.name).order_by(Enterprise.id)):
        yield eid, name, by_id.get(eid, [])


def resolver(*, db: Session) -> Resolver:
    """The Resolver over the registry, rebuilt only when the registry changed (cached per database; changes
    by other processes are seen within RECHECK_S seconds)."""
    key = str(db.get_bind().engine.url)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[2] < RECHECK_S:
            return hit[1]
        version = registry_version(db=db)
        if hit is not None and hit[0] == version:
            _cache[key] = (version, hit[1], now)
            return hit[1]
        built = Resolver(_entries(db))
        _cache[key] = (version, built, now)
        return built


# --- linking cases --------------------------------------------------------------------------------------


def add_alias(*, db: Session, enterprise: Enterprise, alias: str, source: AliasSource, actor: str) -> bool:
    """Record ``alias`` for ``enterprise`` unless it is its name or already anyone's alias/name."""
    alias = re.sub(r"\s+", "", alias)
    if not alias or alias == enterprise.name or len(alias) > MAX_LEN["name"] or _CONTROL.search(alias):
        return False
    if db.execute(sa.select(EnterpriseAlias.id).where(EnterpriseAlias.alias == alias)).first():
        return False
    if db.execute(sa.select(Enterprise.id).where(Enterprise.name == alias)).first():
        return False
    db.add(EnterpriseAlias(enterprise_id=enterprise.id, alias=alias, source=source.value, created_by=actor))
    db.flush()
    _forget_resolver(db)
    return True


def link_case(*, db: Session, case: Case, enterprise_id: int | None, actor: str,
              heard_name: str | None = None) -> Case:
    """Link ``case`` to a registered enterprise (its canonical name goes into ``case.enterprise``), or unlink
    it (None). The heard or typed name, when it differs, becomes an alias (source confirmed). Audited."""
    before = {"enterprise_id": case.enterprise_id, "enterprise": case.enterprise}
    heard = heard_name
    if enterprise_id is None:
        case.enterprise_id = None
        alias_added = False
    else:
        enterprise = db.get(Enterprise, enterprise_id)
        if enterprise is None:
            raise EnterpriseError(404, "not_found", "企业不存在")
        heard = heard_name if heard_name is not None else case.enterprise
        case.enterprise_id = enterprise.id
        case.enterprise = enterprise.name
        if not case.enterprise_type and enterprise.enterprise_type:
            case.enterprise_type = enterprise.enterprise_type
        alias_added = bool(heard) and add_alias(db=db, enterprise=enterprise, alias=heard or "",
                                                source=AliasSource.confirmed, actor=actor)
    after = {"enterprise_id": case.enterprise_id, "enterprise": case.enterprise}
    if before != after or alias_added:
        audit.record(db=db, actor=actor, action="case.enterprise_linked", subject_type="case", subject_id=case.id,
                     details={"before": before, "after": after, "heard": heard,
                              "alias_added": heard if alias_added else None})
    db.flush()
    return case
