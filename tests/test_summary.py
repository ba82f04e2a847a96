"""诉求摘要: written from the facts the call gave (suggest → summarize), in the words of a 12351 work order,
uncertain facts marked （待核实）, nothing invented, each phrase linked to where it was said."""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.cases.extract import Evidence
from app.cases.models import Case
from app.cases.suggest import Suggestion, suggest
from app.cases.summary import Summary, summarize, uncertain
from app.db import Database
from asr.types import Segment
from tests.helpers import file_transcript


def call(*turns: tuple[str, str]) -> Suggestion:
    return suggest([Segment(5.0 * i, 5.0 * i + 4, who, text) for i, (who, text) in enumerate(turns)])


def sure(ev: Evidence) -> Evidence:
    """The fact as if checked (a registered enterprise, a place the audio confirmed)."""
    return replace(ev, confidence=max(ev.confidence, 0.85), status="")


def summary_of(found: Suggestion, *, checked: bool = True, **fields: Evidence) -> Summary:
    """The summary of the call's facts: ``checked``, each as if confirmed (exact wording, no 待核实)."""
    facts = {name: sure(ev) if checked else ev for name, ev in found.fields.items()}
    return summarize(category=found.category, fields={**facts, **fields}, said=found.said)


def assert_links_point_into_the_text(s: Summary) -> None:
    for link in s.links:
        assert s.text[link.offset:link.offset + len(link.phrase)] == link.phrase, link


WAGES = call(
    ("agent", "您好，12351职工服务热线，请讲。"),
    ("caller", "我在李沧区的青岛恒泰建筑工程有限公司干钢筋工，公司拖欠我们二十三个工人工资，一共十八万六千元。"),
    ("agent", "拖欠多长时间了？"),
    ("caller", "半年了。希望你们帮我们把工资要回来。"),
)


def test_a_wage_call_reads_like_a_work_order_and_each_phrase_links_to_where_it_was_said() -> None:
    s = summary_of(WAGES)
    assert s.text == ("来电人反映：其在青岛恒泰建筑工程有限公司（李沧区）从事钢筋工，"
                      "该公司拖欠23名工人工资共计186,000元。诉求：希望相关部门帮其把工资要回来。")
    assert_links_point_into_the_text(s)
    where = {link.phrase: (link.segment, link.start, link.speaker) for link in s.links}
    assert where["青岛恒泰建筑工程有限公司"] == where["186,000元"] == where["23名工人"] == (1, 5.0, "caller")
    assert where["希望相关部门帮其把工资要回来"] == (3, 15.0, "caller")  # the caller's own request
    assert "拖欠多长时间" not in s.text and "热线" not in s.text  # not the raw transcript


def test_without_a_request_the_category_default_is_asked_and_missing_facts_are_left_out() -> None:
    s = summary_of(call(("caller", "老板一直不发工资，拖了三个月了。"), ("agent", "希望您保留好证据。")))
    assert s.text == "来电人反映：用人单位拖欠工资。诉求：要求协助追讨欠薪。"  # the agent's 希望 is not the caller's
    for invented in ("公司", "区", "元", "名"):
        assert invented not in s.text.replace("用人单位", "")


def test_uncertain_facts_are_marked_to_be_checked() -> None:
    as_suggested = WAGES.fields["enterprise"]  # a name not in the registry is asked (app/cases/verify.py)
    assert ("青岛恒泰建筑工程有限公司（待核实）" in summary_of(WAGES, checked=False).text) == uncertain(as_suggested)
    enterprise, amount = sure(WAGES.fields["enterprise"]), sure(WAGES.fields["amount"])
    s = summary_of(WAGES, enterprise=replace(enterprise, confidence=0.45), amount=replace(amount, confidence=0.5))
    assert "其在青岛恒泰建筑工程有限公司（待核实）（李沧区）" in s.text
    assert "共计186,000元（待核实）。" in s.text
    assert "钢筋工（待核实）" not in s.text

    @dataclass(frozen=True)
    class Marked(Evidence):  # the lead's status key on Evidence: 待核实 whatever the confidence
        status: str = "待核实"

    district = sure(WAGES.fields["district"])
    marked = Marked(*(getattr(district, f) for f in ("value", "confidence", "segment", "start", "end", "speaker",
                                                     "text")))
    assert "（李沧区，待核实）" in summary_of(WAGES, district=marked).text


def test_other_categories_say_what_the_caller_said_happened() -> None:
    injury = summary_of(call(("caller", "我在城阳区的青岛宏远汽车配件有限公司上班，搬货的时候把腰扭伤了，"
                                        "公司不给申请工伤认定，我该怎么办？")))
    assert injury.text == ("来电人反映：其在青岛宏远汽车配件有限公司（城阳区）工作，其在工作中受伤，"
                           "该公司不配合申报工伤认定。诉求：咨询公司不给申请工伤认定应如何处理。")
    insurance = summary_of(call(("caller", "公司一直不给我们交社保，我们车间三十多个人，能不能帮我们问问？")))
    assert insurance.text == "来电人反映：用人单位未为其缴纳社会保险，涉及30余人。诉求：希望帮其问问。"
    rider = summary_of(call(("caller", "我是送外卖的，平台无缘无故扣钱，我要求平台把钱退给我。")))
    assert rider.text == "来电人反映：其系外卖骑手，平台扣罚其收入。诉求：要求平台把钱退给其。"
    for s in (injury, insurance, rider):
        assert_links_point_into_the_text(s)


def test_a_question_about_the_law_is_written_as_the_question() -> None:
    s = summary_of(call(("caller", "我想咨询一下，试用期可以约定六个月吗？"), ("agent", "合同三年以上的可以。")))
    assert s.text == "来电人咨询：试用期可以约定六个月吗？诉求：希望得到法律政策解答。"
    assert [(link.phrase, link.segment) for link in s.links] == [("试用期可以约定六个月吗", 0)]


def test_who_the_caller_is_comes_first_when_the_call_says_it() -> None:
    s = summary_of(call(("caller", "我今年四十五岁，我怀孕了，公司要辞退我，我想申请劳动仲裁。")))
    assert s.text.startswith("来电人（女，36-45岁）反映：")
    assert s.text.endswith("诉求：希望申请劳动仲裁。")


def test_a_call_where_nothing_was_recognised_says_so_and_is_marked() -> None:
    s = summary_of(call(("caller", "喂，你好。"), ("agent", "您好，请讲。")))
    assert s.text.endswith("（待核实）。诉求：" + s.text.split("诉求：")[1])
    assert s.links == []


def test_the_filed_case_keeps_the_summary_and_its_links(database: Database) -> None:
    case_id = file_transcript(database, [
        ("caller", "我在李沧区的青岛恒泰建筑工程有限公司干钢筋工，公司拖欠我们二十三个工人工资，一共十八万六千元。"),
        ("caller", "希望你们帮我们把工资要回来。")])
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        stored = case.extracted["summary"]
        assert stored["text"] == case.summary and case.summary.startswith("来电人反映：其在青岛恒泰建筑工程有限公司")
        assert {"phrase": "186,000元", "start": 0.0, "end": 4.0, "segment": 0, "speaker": "caller",
                "offset": case.summary.index("186,000元")} in stored["links"]
