"""诉求摘要: a short summary of the call in the words of a 12351 work order, written from the facts the call
gave, each phrase linked to where it was said.

    来电人反映：其在青岛恒泰建筑工程有限公司（李沧区）从事钢筋工，该公司拖欠23名工人工资共计186,000元。
    诉求：要求协助追讨欠薪。

Templates, not generation: who (来电人, gender and age when said), where (enterprise, district, occupation),
what (per category, from words the caller said: 拖欠…, 未缴纳社会保险, 在工作中受伤…), how much and how many,
and what is asked (诉求: the caller's own 要求/希望/想…/能不能…/…怎么办 clause, in the third person; else the
category's usual request). A fact whose evidence is uncertain (confidence under 0.6, or marked 待核实) is
followed by （待核实）. Nothing is written that the call did not give: a missing fact is left out, never
guessed, and the only fixed wording is the category's (the call was categorized so) and its default request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from app.cases import dimensions, numbers_zh
from app.cases.categorize import Categorization
from app.cases.extract import Evidence, Said, by_caller_first

UNCERTAIN = "待核实"
UNCERTAIN_BELOW = 0.6  # evidence less sure than this is written with （待核实）
MAX_ASK = 40  # characters of the caller's own request kept

Source = Evidence | Said | None


@dataclass(frozen=True)
class Link:
    """A phrase of the summary and where it was said: seconds, segment index, speaker; ``offset`` is where
    the phrase starts in the summary text."""

    phrase: str
    start: float
    end: float
    segment: int
    speaker: str
    offset: int


@dataclass(frozen=True)
class Summary:
    text: str
    links: list[Link] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Case.extracted["summary"]: {text, links: [{phrase, start, end, segment, speaker, offset}]}."""
        return {"text": self.text, "links": [asdict(link) for link in self.links]}


# A piece of the text and what it came from; a summary is a list of them, joined.
Piece = tuple[str, Source]
Pieces = list[Piece]


def _t(text: str) -> Pieces:
    return [(text, None)] if text else []


def _join(parts: Sequence[Pieces], sep: str) -> Pieces:
    out: Pieces = []
    for part in (p for p in parts if p):
        if out:
            out += _t(sep)
        out += part
    return out


def uncertain(ev: Evidence | None) -> bool:
    """The evidence is not sure enough to state the fact plainly."""
    if ev is None:
        return False
    return getattr(ev, "status", None) == UNCERTAIN or float(ev.confidence) < UNCERTAIN_BELOW


def _fact(ev: Evidence, text: str, *, mark: bool = True) -> Pieces:
    """``text`` linked to ``ev``, with （待核实） after it when the evidence is uncertain."""
    return [(text, ev)] + (_t(f"（{UNCERTAIN}）") if mark and uncertain(ev) else [])


def _caller(said: Sequence[Said]) -> list[Said]:
    return [s for s in said if s.seg.speaker != "agent"]


# --- who ------------------------------------------------------------------------------------------------


def _age(label: str) -> str:
    if label.endswith("+"):
        return f"{label[:-1]}岁以上"
    return label if label.endswith(("岁", "以下", "以上")) else f"{label}岁"


def _who(fields: dict[str, Evidence]) -> Pieces:
    """来电人, with gender and age bracket when the call gave them: 来电人（女，26-35岁）."""
    traits = [(ev, str(ev.value) if name == "gender" else _age(str(ev.value)))
              for name in ("gender", "age_bracket") if (ev := fields.get(name)) is not None and ev.value]
    if not traits:
        return _t("来电人")
    if not any(uncertain(ev) for ev, _ in traits):
        return _t("来电人（") + _join([[(text, ev)] for ev, text in traits], "，") + _t("）")
    return _t("来电人，") + _join([_fact(ev, text) for ev, text in traits], "，") + _t("，")


# --- where ----------------------------------------------------------------------------------------------


def _where(fields: dict[str, Evidence]) -> Pieces:
    """其在{enterprise}（{district}）从事{occupation}; what of it the call gave."""
    ent, dist, occ = fields.get("enterprise"), fields.get("district"), fields.get("occupation")
    out: Pieces = []
    if ent is not None:
        out = _t("其在") + _fact(ent, str(ent.value))
        if dist is not None:
            out += _t("（") + [(str(dist.value), dist)] + _t(f"，{UNCERTAIN}）" if uncertain(dist) else "）")
    elif dist is not None:
        out = _t("其在") + _fact(dist, str(dist.value))
    if occ is not None:
        verb = "从事" if out else "其系"
        return out + _t(verb) + _fact(occ, str(occ.value))
    return out + _t("工作") if out else out


def _employer(fields: dict[str, Evidence]) -> str:
    ent = fields.get("enterprise")
    if ent is None:
        return "用人单位"
    return "该公司" if str(ent.value).endswith(("公司", "集团")) else "该单位"


# --- what -----------------------------------------------------------------------------------------------

# Per category: what the caller's words say happened, as a work order writes it ({employer}: 该公司/该单位/
# 用人单位). Each rule needs its words in what the caller said; the first two that match are written.
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "工伤": (
        (r"职业病", "其患有职业病"),
        (r"受伤|伤了|扭伤|骨折|砸伤|摔伤|烫伤|割伤|压伤|轧伤|工伤", "其在工作中受伤"),
        (r"(?:不给|不予|不让|不帮|拒绝|不同意)[^，。？！]{0,6}(?:认定|申报|报工伤|申请工伤|工伤)",
         "{employer}不配合申报工伤认定"),
        (r"(?:医药费|医疗费|治疗费)[^，。？！]{0,6}(?:不给|不管|不报|不出|不承担)|(?:不给|不管|不报|不出)[^，。？！]{0,4}"
         r"(?:医药费|医疗费|治疗费)", "{employer}不承担医疗费用"),
    ),
    "社会保险": (
        (r"(?:没|没有|不|未)(?:给|帮)?(?:我们?|咱们|工人)?(?:交|缴|上|买|办)(?:纳)?(?:社保|社会保险|保险|五险)",
         "{employer}未为其缴纳社会保险"),
        (r"断缴|停缴|断交|停交", "其社会保险断缴"),
        (r"少交|少缴|基数|按最低", "{employer}未足额缴纳社会保险"),
        (r"补缴|补交", "涉及社会保险补缴"),
    ),
    "劳动合同": (
        (r"(?:没|没有|不|未)(?:跟我|和我|与我|给我)?们?(?:签|签订|签过)(?:劳动)?合同",
         "{employer}未与其签订书面劳动合同"),
        (r"辞退|开除|解除|裁员|被裁|不要我|让我走|炒了|劝退", "{employer}与其解除劳动关系"),
        (r"经济补偿|补偿金|赔偿金|N\+1|补偿", "涉及经济补偿"),
        (r"试用期", "涉及试用期问题"),
    ),
    "工时休假": (
        (r"(?:不给|没有|没|不让)(?:调休|休息|休假|双休|休年假)", "{employer}未安排其休息休假"),
        (r"加班", "{employer}安排加班"),
        (r"年假|年休假", "涉及年休假"),
        (r"病假", "涉及病假待遇"),
    ),
    "劳务派遣": (
        (r"退回|被退", "其被用工单位退回"),
        (r"同工同酬|待遇不一样|待遇不同|比正式工", "派遣员工与正式员工待遇不同"),
    ),
    "女职工权益": (
        (r"(?:怀孕|孕期|孕妇|产假|哺乳)[^。？！]{0,12}(?:辞退|开除|解除|不要我|劝退)|(?:辞退|开除|解除|劝退)"
         r"[^。？！]{0,12}(?:怀孕|孕期|孕妇|产假|哺乳)", "其在孕期、产期或哺乳期被解除劳动关系"),
        (r"(?:怀孕|孕期|孕妇)[^。？！]{0,12}(?:调岗|降薪|扣工资|扣钱)", "其孕期被调岗或降薪"),
        (r"产假", "涉及产假待遇"),
        (r"哺乳", "涉及哺乳期权益"),
        (r"怀孕|孕期|孕妇|产检", "涉及孕期权益"),
    ),
    "新就业形态": (
        (r"扣钱|罚款|扣款|罚了|扣了|罚钱", "平台扣罚其收入"),
        (r"封号|停号|封了|拉黑", "其账号被封停"),
        (r"受伤|撞了|被撞|摔了|摔伤", "其在工作中受伤"),
        (r"(?:没|没有|不给|不)(?:交|缴|买|上)(?:社保|保险)", "平台未为其缴纳保险"),
    ),
}
_DEFAULT_WHAT = {"劳务派遣": "劳务派遣用工方面的问题", "新就业形态": "新就业形态劳动者权益方面的问题",
                 "其他": "劳动权益方面的问题"}
_OWED = re.compile(r"欠|拖|没发|不发|没给|不给|克扣|扣|没结|不结|讨|要不到|拿不到|没拿到")
_PEOPLE_WORDS = (("工人", "名工人"), ("工友", "名工人"), ("农民工", "名工人"), ("职工", "名职工"), ("员工", "名员工"))


def _approximate(ev: Evidence, said: Sequence[Said], *, money: bool) -> bool:
    """The value was said as 三十多人 / 3万多元 (extraction took its floor): found again in its segment."""
    text = _text_of(ev, said).replace(",", "")
    for m in (dimensions._MONEY if money else dimensions._COUNT).finditer(text):
        if money:
            approx = m.group(2) or m.group(4) or ""
            multiplier = m.group(3) or ("万" if m.group(0).endswith("万元") else "")
        else:
            approx, multiplier = m.group(2) or "", ""
        n = numbers_zh.parse(m.group(1), multiplier, approx=approx)
        if n is not None and n.value == ev.value and n.approximate:
            return True
    return False


def _text_of(ev: Evidence, said: Sequence[Said]) -> str:
    """The segment's text as extraction read it (corrected), else as transcribed."""
    if 0 <= ev.segment < len(said) and said[ev.segment].index == ev.segment:
        return said[ev.segment].text
    return next((s.text for s in said if s.index == ev.segment), ev.text)


def _workers(ev: Evidence, said: Sequence[Said]) -> Pieces:
    """23名工人 / 15人 / 30余名工人, as the caller counted them."""
    text = _text_of(ev, said)
    noun = next((label for word, label in _PEOPLE_WORDS if word in text), "人")
    more = "余" if _approximate(ev, said, money=False) else ""
    if noun == "人":
        return _fact(ev, f"{ev.value}{more}人")
    return _fact(ev, f"{ev.value}{more}{noun}")


def _amount(ev: Evidence, said: Sequence[Said]) -> Pieces:
    more = "余" if _approximate(ev, said, money=True) else ""
    return _fact(ev, f"{int(ev.value):,}{more}元")


def _wages(fields: dict[str, Evidence], said: Sequence[Said]) -> Pieces:
    """{employer}拖欠{whom}{what}共计{amount}: 该公司拖欠23名工人工资共计186,000元."""
    kind_ev = fields.get("arrears_type")
    kind = str(kind_ev.value) if kind_ev is not None else "工资"
    if kind == "其他" or (kind == "工程款" and kind_ev is not None and
                          not re.search(r"工程款|劳务费", _text_of(kind_ev, said))):
        kind = "工资"  # 工地/包工头 make it construction arrears; the workers still speak of their wages
    owed = kind_ev if kind_ev is not None and kind_ev.value != "其他" else next(
        (s for s in _caller(said) if _OWED.search(s.text)), None)
    workers = fields.get("workers")
    whom: Pieces = []
    if workers is not None and int(workers.value) > 1:
        whom = _workers(workers, said)
    elif workers is not None:
        whom = [("其", workers)]
    out = _t(f"{_employer(fields)}拖欠") + whom + [(kind, owed)]
    amount = fields.get("amount")
    if amount is not None:
        out += _t("共计") + _amount(amount, said)
    return out


def _what(category: str, fields: dict[str, Evidence], said: Sequence[Said], category_uncertain: bool) -> Pieces:
    if category == "欠薪":
        return _wages(fields, said)
    written: list[Pieces] = []
    taken: set[str] = set()
    for pattern, phrase in _RULES.get(category, ()):
        hit = next((s for s in by_caller_first(_caller(said)) if re.search(pattern, s.text)), None)
        text = phrase.format(employer=_employer(fields))
        if hit is not None and text not in taken:
            written.append([(text, hit)])
            taken.add(text)
        if len(written) == 2:
            break
    owed = fields.get("arrears_type")
    if owed is not None and owed.value != "其他" and not uncertain(owed):  # wages owed, whatever the category
        return _join([*written, _wages(fields, said)], "，")
    if not written:  # only the category says what it is about
        default = _DEFAULT_WHAT.get(category, f"{category}方面的问题")
        written.append(_t("涉及" + default + (f"（{UNCERTAIN}）" if category_uncertain else "")))
    workers, amount = fields.get("workers"), fields.get("amount")
    if workers is not None and int(workers.value) > 1:
        written.append(_t("涉及") + _workers(workers, said))
    if amount is not None:
        written.append(_t("涉及金额") + _amount(amount, said))
    return _join(written, "，")


# --- what is asked --------------------------------------------------------------------------------------

DEFAULT_ASK = {
    "欠薪": "要求协助追讨欠薪", "工伤": "要求协助申请工伤认定、落实工伤待遇",
    "社会保险": "要求督促用人单位依法缴纳社会保险", "劳动合同": "要求依法维护其劳动合同权益",
    "工时休假": "要求依法落实工时和休息休假规定", "劳务派遣": "要求依法维护其被派遣劳动者权益",
    "女职工权益": "要求依法维护其女职工特殊权益", "新就业形态": "要求依法维护其劳动权益",
    "法律咨询": "希望得到法律政策解答", "其他": "希望得到帮助",
}
# Clause openings that state a request, strongest first; 想 only as 想要/想让/想请/想申请… (我想问 is a question).
_ASKS = (r"要求", r"希望", r"想(?:要|让|请|申请|讨|把|找|拿|维权|起诉|仲裁|投诉|举报)",
         r"(?:能不能|能否|可不可以|可以不可以|能帮)")
_SOLVE = re.compile(r"^(.*?)(?:该|应该|要)?(?:怎么办|咋办|怎么处理|如何处理)[吗呢啊呀吧]*$")
_LEAD = re.compile(r"^(?:嗯|啊|呃|哦|喂|那个|这个|就是|所以|然后|那|现在|我们|咱们|俺们|我|俺|你们|您|你|就|"
                   r"主要是|主要|也|[，、\s])+")
_PARTICLES = re.compile(r"[吗呢吧啊呀啦嘛哈]+$")
_SENTENCES = re.compile(r"[^。！？!?；;]+")


def third_person(text: str) -> str:
    """The caller's words as a work order writes them: 我/我们 → 其, 你们 → 相关部门."""
    text = re.sub(r"我们|咱们|俺们|我|俺", "其", text)
    text = re.sub(r"你们|您们|您|你", "相关部门", text)
    return text.replace("其其", "其")


def _clauses(s: Said) -> list[list[str]]:
    return [[c.strip() for c in re.split(r"[，,、]", sentence) if c.strip()] for sentence in _SENTENCES.findall(s.text)]


def _ask(said: Sequence[Said]) -> tuple[str, Said] | None:
    """The caller's request, from the clause that opens with one (to the end of its sentence)."""
    found: list[tuple[int, float, str, Said]] = []
    for s in _caller(said):
        for sentence in _clauses(s):
            for k, clause in enumerate(sentence):
                bare = _LEAD.sub("", clause)
                rest = "，".join([bare, *sentence[k + 1:]])
                for rank, pattern in enumerate(_ASKS):
                    if re.match(pattern, bare) and len(bare) > 3:
                        found.append((rank, s.seg.start, rest, s))
                        break
                else:
                    m = _SOLVE.match(bare)
                    if m and k + 1 == len(sentence):  # 公司不给交社保，我该怎么办 → 咨询公司不给交社保应如何处理
                        before = _LEAD.sub("", m.group(1) or (sentence[k - 1] if k else ""))
                        found.append((len(_ASKS), s.seg.start, f"咨询{before}应如何处理" if before else
                                      "咨询应如何处理", s))
    if not found:
        return None
    _rank, _at, text, s = min(found, key=lambda f: (f[0], f[1]))
    text = _PARTICLES.sub("", third_person(text)).strip("，")
    text = re.sub(r"^(?:能不能|能否|可不可以|可以不可以)", "希望", text)
    text = re.sub(r"^想要(?!回)|^想(?:让|请)|^想", "希望", text)
    return _short(text), s


def _short(text: str) -> str:
    """At most MAX_ASK characters, cut after a whole clause where one fits."""
    if len(text) <= MAX_ASK:
        return text
    cut = text.rfind("，", 0, MAX_ASK + 1)
    return text[:cut] if cut > 0 else text[:MAX_ASK]


_QUESTION = re.compile(r"吗$|[？?]|怎么|多少|多久|几天|几个|是否|能不能|可不可以|可以吗|合法|算不算|有没有")


def _question(said: Sequence[Said]) -> tuple[str, Said] | None:
    """The caller's first question (法律咨询), in the third person."""
    for s in _caller(said):
        for sentence in _SENTENCES.finditer(s.text):
            end = sentence.end()
            text = sentence.group(0) + (s.text[end] if end < len(s.text) else "")
            if _QUESTION.search(text):
                bare = _LEAD.sub("", sentence.group(0).strip())
                bare = re.sub(r"^(?:想问一下|想问问|想咨询一下|想咨询|请问一下|请问|咨询一下|问一下)[，,\s]*", "", bare)
                if len(bare) > 3:
                    return _short(re.sub(r"[？?，,\s]+$", "", third_person(bare))), s
    return None


# --- the summary ----------------------------------------------------------------------------------------


def summarize(*, category: str | Categorization, fields: dict[str, Evidence], said: Sequence[Said]) -> Summary:
    """The case's 诉求摘要 from its category, its extracted fields and the segments as extraction read them
    (``Suggestion.category``/``fields``/``said``)."""
    name = category.category if isinstance(category, Categorization) else category
    consult = name == "法律咨询"
    who = _who(fields)
    where = _where(fields)
    if consult:  # 来电人咨询：试用期可以约定六个月吗？
        question = _question(said)
        asked: Pieces = [(question[0], question[1])] + _t("？") if question else _t("劳动法律政策问题。")
        head = who + _t("咨询：") + _join([where, asked], "，")
    else:
        unsure = isinstance(category, Categorization) and category.confidence < UNCERTAIN_BELOW
        head = who + _t("反映：") + _join([where, _what(name, fields, said, unsure)], "，") + _t("。")
    ask = _ask(said)
    request: Pieces = [(ask[0], ask[1])] if ask else _t(DEFAULT_ASK.get(name, DEFAULT_ASK["其他"]))
    pieces = head + _t("诉求：") + request + _t("。")
    return _assemble(pieces)


def _assemble(pieces: Pieces) -> Summary:
    text, links, offset = [], [], 0
    for phrase, source in pieces:
        if source is not None and phrase:
            links.append(_link(phrase, source, offset))
        text.append(phrase)
        offset += len(phrase)
    return Summary("".join(text), links)


def _link(phrase: str, source: Evidence | Said, offset: int) -> Link:
    if isinstance(source, Said):
        seg = source.seg
        return Link(phrase, seg.start, seg.end, source.index, seg.speaker, offset)
    return Link(phrase, source.start, source.end, source.segment, source.speaker, offset)
