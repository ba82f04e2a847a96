"""The enterprise registry: credit codes, imports (CSV UTF-8/GBK, XLSX; all or nothing), resolving heard
names, the API and linking cases (with aliases and audit) — on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import Workbook

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.db import Database
from app.enterprises import service
from app.enterprises.models import Enterprise, EnterpriseAlias
from app.enterprises.resolve import Resolver, heard_parts, parts
from app.users.models import Role
from tests.conftest import add_user, login
from tests.helpers import file_transcript

# Published 统一社会信用代码 of well-known companies (华为技术, 腾讯科技（深圳）, 阿里巴巴（中国）).
REAL_CODES = ("914403001922038216", "91440300708461136T", "91330100716105852F")


def code(n: int, region: str = "370202") -> str:
    """A valid credit code: 9 (工商) 1 (企业), a Qingdao district's division code, a 9-character org code."""
    body = f"91{region}{n:08d}{'MA3CDEFGH'[n % 9]}"
    return body + service.credit_check_char(body)


HEADER = "企业名称,统一社会信用代码,所属区市,地址,行业,企业类型,别名\n"
ROWS = (
    f"青岛海丰水产有限公司,{code(1)},崂山区,青岛市崂山区海尔路1号,水产,民营,海丰水产；海丰公司\n"
    f"青岛恒达机械有限公司,{code(2)},城阳,城阳区正阳路8号,机械,有限责任公司（自然人投资或控股）,\n"
    f"青岛宏远建材有限公司,,西海岸新区,,建材,国有,宏远建材\n"
)


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)).scalars())


def _enterprises(database: Database) -> dict[str, Enterprise]:
    with database.session() as db:
        return {e.name: e for e in db.execute(sa.select(Enterprise)).scalars()}


def _import(database: Database, data: bytes) -> service.ImportResult:
    with database.session() as db:
        return service.import_file(db=db, path_or_bytes=data, actor="test")


# --- credit codes ---------------------------------------------------------------------------------------


def test_real_credit_codes_pass_and_corrupted_ones_fail() -> None:
    for real in REAL_CODES:
        assert service.credit_code_problem(real) is None, real
        assert service.credit_check_char(real[:17]) == real[17]
        # Any one character changed (to another allowed one) breaks the check character.
        for i in (0, 5, 10, 16, 17):
            other = next(c for c in service.CREDIT_CHARSET if c != real[i])
            bad = real[:i] + other + real[i + 1:]
            assert service.credit_code_problem(bad) is not None, bad
        # Two neighbours swapped: caught as well (weights differ).
        swapped = real[:3] + real[4] + real[3] + real[5:]
        if swapped != real:
            assert "校验位" in (service.credit_code_problem(swapped) or "")
    assert "18 位" in (service.credit_code_problem(REAL_CODES[0][:17]) or "")
    assert "非法字符" in (service.credit_code_problem("91370200MA3CIO0000") or "")
    assert service.valid_credit_code(" " + REAL_CODES[1].lower() + " ")  # typed in lower case, with spaces
    assert service.credit_check_char("91370202" + "0" * 9) in service.CREDIT_CHARSET
    assert all(service.credit_code_problem(code(n)) is None for n in range(50))


# --- import ---------------------------------------------------------------------------------------------


def test_import_utf8_csv_with_bom(database: Database) -> None:
    result = _import(database, ("\ufeff" + HEADER + ROWS).encode("utf-8"))
    assert (result.rows, result.created, result.updated, result.aliases) == (3, 3, 0, 3)
    got = _enterprises(database)
    hf = got["青岛海丰水产有限公司"]
    assert (hf.credit_code, hf.district, hf.industry, hf.enterprise_type) == (code(1), "崂山区", "水产", "民营")
    assert got["青岛恒达机械有限公司"].district == "城阳区"
    assert got["青岛恒达机械有限公司"].enterprise_type == "民营"  # 自然人投资或控股 is private
    assert got["青岛宏远建材有限公司"].district == "黄岛区" and got["青岛宏远建材有限公司"].credit_code is None
    with database.session() as db:
        aliases = {a.alias: a.source for a in db.execute(sa.select(EnterpriseAlias)).scalars()}
    assert aliases == {"海丰水产": "import", "海丰公司": "import", "宏远建材": "import"}
    (event,) = _events(database, "enterprises.imported")  # one audit event for the whole import
    assert event.details["created"] == 3 and event.actor == "test"


def test_import_gbk_csv_from_excel(database: Database) -> None:
    result = _import(database, (HEADER + ROWS).replace("\n", "\r\n").encode("gbk"))
    assert result.created == 3
    assert _enterprises(database)["青岛海丰水产有限公司"].address == "青岛市崂山区海尔路1号"


def test_import_xlsx_with_english_headers(database: Database) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Credit Code", "District", "Address", "Industry", "Type", "Aliases"])
    sheet.append(["青岛海丰水产有限公司", code(1), "青岛市崂山区", "海尔路1号", "水产", "民营", "海丰；海丰水产"])
    sheet.append(["青岛恒达机械有限公司", code(2), "即墨区", None, "机械", "外商独资", None])
    buf = io.BytesIO()
    book.save(buf)
    result = _import(database, buf.getvalue())
    assert (result.rows, result.created, result.aliases) == (2, 2, 2)
    got = _enterprises(database)
    assert got["青岛恒达机械有限公司"].enterprise_type == "外资" and got["青岛恒达机械有限公司"].district == "即墨区"


def test_bad_rows_are_all_reported_and_nothing_is_imported(database: Database) -> None:
    bad_code = code(3)[:17] + ("0" if code(3)[17] != "0" else "1")
    data = (HEADER
            + f"青岛海丰水产有限公司,{code(1)},崂山区,,水产,民营,\n"  # row 2: fine
            + f"青岛恒达机械有限公司,{bad_code},城阳区,,机械,民营,\n"  # row 3: bad check character
            + f"青岛海丰水产有限公司,{code(4)},崂山区,,水产,民营,\n"  # row 4: name repeats row 2
            + f"青岛宏远建材有限公司,{code(1)},北京区,,建材,民营,\n"  # row 5: code repeats row 2, unknown district
            + ",,,,,,\n"  # blank line: skipped
            + f",{code(5)},市南区,,,民营,\n")  # row 7: no name
    with pytest.raises(service.ImportFailed) as failed:
        _import(database, data.encode("utf-8"))
    errors = [(e.row, e.column) for e in failed.value.errors]
    assert errors == [(3, "统一社会信用代码"), (4, "企业名称"), (5, "统一社会信用代码"), (5, "区市"), (7, "企业名称")]
    messages = {(e.row, e.column): e.message for e in failed.value.errors}
    assert "校验位" in messages[(3, "统一社会信用代码")] and "第 2 行" in messages[(4, "企业名称")]
    assert "北京区" in messages[(5, "区市")] and "为空" in messages[(7, "企业名称")]
    assert _enterprises(database) == {} and _events(database, "enterprises.imported") == []


def test_undecodable_lines_and_missing_header_are_reported(database: Database) -> None:
    data = (HEADER + ROWS).encode("utf-8") + "青岛坏编码有限公司,,,,,,\n".encode("gbk") + b"\n"
    with pytest.raises(service.ImportFailed) as failed:
        _import(database, data)
    assert [e.row for e in failed.value.errors] == [5] and "编码" in failed.value.errors[0].message
    with pytest.raises(service.ImportFailed) as failed:
        _import(database, "名字,代码\n青岛海丰水产有限公司,\n".encode())
    assert failed.value.errors[0].row == 1 and "企业名称" in failed.value.errors[0].message
    assert _enterprises(database) == {}


def test_reimport_updates_by_credit_code_then_by_name(database: Database) -> None:
    _import(database, (HEADER + ROWS).encode())
    before = _enterprises(database)
    data = (HEADER
            + f"青岛海丰水产集团有限公司,{code(1)},崂山区,新地址,水产,民营,\n"  # renamed: same code
            + f"青岛宏远建材有限公司,{code(6)},黄岛区,,建材,国有,\n"  # gets its code: matched by name
            + f"青岛恒达机械有限公司,{code(2)},城阳区,城阳区正阳路8号,机械,民营,\n"  # unchanged
            + f"青岛新来物流有限公司,{code(7)},李沧区,,物流,民营,\n")  # new
    result = _import(database, data.encode())
    assert (result.created, result.updated, result.unchanged) == (1, 2, 1)
    after = _enterprises(database)
    assert "青岛海丰水产有限公司" not in after
    renamed = after["青岛海丰水产集团有限公司"]
    assert renamed.id == before["青岛海丰水产有限公司"].id and renamed.address == "新地址"
    assert after["青岛宏远建材有限公司"].credit_code == code(6)
    assert after["青岛宏远建材有限公司"].id == before["青岛宏远建材有限公司"].id
    assert len(after) == 4 and len(_events(database, "enterprises.imported")) == 2
    # A name already held by another enterprise (with another code) is refused.
    with pytest.raises(service.ImportFailed) as failed:
        _import(database, (HEADER + f"青岛恒达机械有限公司,{code(8)},城阳区,,机械,民营,\n").encode())
    assert failed.value.errors[0].row == 2 and "信用代码不同" in failed.value.errors[0].message


# --- resolving heard names ------------------------------------------------------------------------------

REGISTRY = [
    (1, "青岛恒达机械有限公司", ()),
    (2, "青岛恒大建材有限公司", ()),
    (3, "青岛海丰水产有限公司", ("海丰水产",)),
    (4, "青岛城阳宏远物流有限责任公司", ()),
    (5, "瑞德（青岛）电子科技有限公司", ()),
    (6, "青岛崂山金海人力资源有限公司", ()),
    (7, "青岛市北华泰餐饮管理有限公司", ()),
    (8, "青岛鑫达机械制造有限公司", ()),
]


def test_names_are_cut_into_place_core_and_suffix() -> None:
    p = parts("青岛城阳宏远物流有限责任公司")
    assert (p.place, p.core, p.suffix, p.brand) == ("青岛城阳", "宏远物流", "有限责任公司", "宏远")
    assert parts("瑞德（青岛）电子科技有限公司").core == "瑞德电子科技"
    assert parts("青岛市北华泰餐饮管理有限公司").brand == "华泰"
    assert parts("青岛鑫达机械制造有限公司").brand == "鑫达"
    heard = heard_parts("京岛城阳宏远物流有线公司")
    assert heard.variants[0] == "宏远物流" and heard.district == "城阳区"


@pytest.mark.parametrize(("heard", "expected"), [
    ("青岛恒达机械有限公司", 1),  # as registered
    ("京岛恒达机械有线公司", 1),  # 青岛 → 京岛, 有限 → 有线
    ("恒达机械", 1),  # the core alone
    ("青岛痕达机械有限工资", 1),  # near-homophone (heng/hen) and 有限工资
    ("青岛海风水产有限公司", 3),  # 丰 → 风
    ("海丰水产", 3),
    ("宏源物流", 4),  # 远 → 源
    ("瑞得电子科技有限公司", 5),  # without （青岛）, 德 → 得
    ("劳山金海人力资源", 6),  # 崂山 → 劳山
    ("华太餐饮管理公司", 7),
    ("鑫达机械", 8),  # 机械制造 said as 机械
    ("新达机械制造公司", 8),
])
def test_resolver_finds_garbled_mentions(heard: str, expected: int) -> None:
    found = Resolver(REGISTRY).resolve(heard)
    assert found, heard
    assert found[0].enterprise_id == expected, found
    assert 0.0 <= found[0].score <= 1.0


@pytest.mark.parametrize("heard", [
    "青岛恒达物流有限公司",  # a registered trade name in another trade
    "青岛宏达机械有限公司",  # shares 青岛, 达, 机械 and 有限公司 with 恒达机械: not the same company
    "青岛海洋水产有限公司",
    "青岛明月电子科技有限公司",
    "青岛有限公司",
    "我们公司",
    "青岛",
])
def test_resolver_says_no_match_for_unregistered_names(heard: str) -> None:
    assert Resolver(REGISTRY).resolve(heard) is None


def test_resolver_prefers_exact_characters_among_homophones() -> None:
    r = Resolver([(1, "青岛恒达机械有限公司", ()), (2, "青岛恒大机械有限公司", ())])
    assert [m.enterprise_id for m in r.resolve("恒大机械") or []] == [2, 1]
    assert [m.enterprise_id for m in r.resolve("恒达机械") or []] == [1, 2]


def test_resolver_is_cached_until_the_registry_changes(database: Database) -> None:
    _import(database, (HEADER + ROWS).encode())
    with database.session() as db:
        first = service.resolver(db=db)
        assert service.resolver(db=db) is first
        assert (first.best("海风水产") or pytest.fail()).name == "青岛海丰水产有限公司"
    _import(database, (HEADER + f"青岛新来物流有限公司,{code(7)},李沧区,,物流,民营,\n").encode())
    with database.session() as db:
        second = service.resolver(db=db)
        assert second is not first and second.best("新来物流") is not None


# --- API ------------------------------------------------------------------------------------------------


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


def _upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "企业库.csv") -> object:
    return client.post("/api/v1/enterprises/import", files={"file": (name, data, "text/csv")}, headers=headers)


def test_api_import_admin_only_with_row_errors(client: TestClient, database: Database, agent: dict,
                                               admin: dict) -> None:
    data = (HEADER + ROWS).encode("gbk")
    r = _upload(client, agent, data)
    assert r.status_code == 403  # type: ignore[attr-defined]
    bad = (HEADER + "青岛恒达机械有限公司,91370200XXXXXXXXXX,城阳区,,,,\n").encode()
    r = _upload(client, admin, bad)
    assert r.status_code == 422  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["code"] == "import_failed" and body["errors"][0]["row"] == 2
    assert body["errors"][0]["column"] == "统一社会信用代码"
    r = _upload(client, admin, data)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    assert r.json()["created"] == 3  # type: ignore[attr-defined]
    (event,) = _events(database, "enterprises.imported")
    assert event.actor == "user:root" and event.details["file"] == "企业库.csv"

    r = client.get("/api/v1/enterprises", params={"q": "海丰"}, headers=agent)
    assert r.status_code == 200 and r.json()["total"] == 1
    hf = r.json()["items"][0]
    assert hf["credit_code"] == code(1) and hf["cases"] == 0
    assert client.get("/api/v1/enterprises", params={"q": code(2)}, headers=agent).json()["total"] == 1
    assert client.get("/api/v1/enterprises", params={"district": "黄岛区"}, headers=agent).json()["total"] == 1
    assert client.get("/api/v1/enterprises", params={"limit": 2}, headers=agent).json()["total"] == 3
    r = client.get("/api/v1/enterprises/resolve", params={"name": "京岛海风水产有线公司"}, headers=agent)
    assert r.status_code == 200
    assert r.json()["candidates"][0]["enterprise_id"] == hf["id"] and r.json()["candidates"][0]["district"] == "崂山区"
    r = client.get("/api/v1/enterprises/resolve", params={"name": "青岛明月电子科技有限公司"}, headers=agent)
    assert r.json()["candidates"] == []
    assert client.get("/api/v1/enterprises/999999", headers=agent).status_code == 404


def test_link_case_sets_the_name_adds_an_alias_and_audits(client: TestClient, database: Database, agent: dict,
                                                          admin: dict) -> None:
    _import(database, (HEADER + ROWS).encode())
    case_id = file_transcript(database, [("caller", "我在青岛海风水产有线公司上班，公司拖欠我三个月工资一共九千元。"),
                                         ("agent", "好的，我记录一下。")])
    hf = _enterprises(database)["青岛海丰水产有限公司"]
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        service.link_case(db=db, case=case, enterprise_id=hf.id, actor="user:zhang", heard_name="海风水产有线公司")
        assert case.enterprise == "青岛海丰水产有限公司" and case.enterprise_id == hf.id
    with database.session() as db:
        alias = db.execute(sa.select(EnterpriseAlias).where(EnterpriseAlias.alias == "海风水产有线公司")).scalar_one()
        assert (alias.enterprise_id, alias.source, alias.created_by) == (hf.id, "confirmed", "user:zhang")
    (event,) = _events(database, "case.enterprise_linked")
    assert event.subject_id == str(case_id) and event.details["after"]["enterprise_id"] == hf.id
    assert event.details["alias_added"] == "海风水产有线公司"
    # The alias now resolves straight to it; the same spelling again adds nothing.
    with database.session() as db:
        assert (service.resolver(db=db).best("海风水产有线公司") or pytest.fail()).enterprise_id == hf.id
        case = db.get(Case, case_id)
        assert case is not None
        service.link_case(db=db, case=case, enterprise_id=hf.id, actor="user:zhang", heard_name="海风水产有线公司")
    assert len(_events(database, "case.enterprise_linked")) == 1

    # Over the API: the case shows its enterprise, the enterprise its case with the figures.
    r = client.get(f"/api/v1/cases/{case_id}", headers=agent)
    assert r.status_code == 200 and r.json()["enterprise_id"] == hf.id
    r = client.get(f"/api/v1/enterprises/{hf.id}", headers=agent)
    assert r.status_code == 200
    body = r.json()
    assert body["stats"]["cases"] == 1 and body["recent_cases"][0]["id"] == case_id
    assert len(body["stats"]["by_month"]) == 1 and body["stats"]["categories"][0]["cases"] == 1
    assert {a["alias"] for a in body["aliases"]} == {"海丰水产", "海丰公司", "海风水产有线公司"}
    # Unlink through the API (case:update), audited.
    r = client.put(f"/api/v1/cases/{case_id}/enterprise", json={"enterprise_id": None}, headers=agent)
    assert r.status_code == 200 and r.json()["enterprise_id"] is None
    r = client.put(f"/api/v1/cases/{case_id}/enterprise", json={"enterprise_id": 999999}, headers=agent)
    assert r.status_code == 404
    assert len(_events(database, "case.enterprise_linked")) == 2
