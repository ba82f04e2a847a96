"""The dimensions the union analyses, suggested from what was said in the call.

Each function reads the prepared segments (app/cases/extract.prepare: domain terms corrected) and returns an
Evidence (value, confidence, and the segment where it was said) or None when the call does not say. Nothing
is guessed from silence except the headcount of a caller who only ever speaks for themself (1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from app.cases import numbers_zh
from app.cases.extract import Evidence, Said, by_caller_first
from app.cases.numbers_zh import APPROX, NUMBER

# --- occupation (诉求人职业) ----------------------------------------------------------------------------

# What callers say → the occupation as recorded. Longer forms first where one contains another.
OCCUPATIONS: dict[str, str] = {
    "外卖骑手": "外卖骑手", "外卖小哥": "外卖骑手", "送外卖": "外卖骑手", "骑手": "外卖骑手",
    "快递员": "快递员", "快递小哥": "快递员", "送快递": "快递员", "网约车司机": "网约车司机",
    "叉车工": "叉车工", "装配工": "装配工", "质检员": "质检员", "质检": "质检员", "检验员": "质检员",
    "销售员": "销售员", "销售": "销售员", "业务员": "业务员", "导购": "导购员", "收银员": "收银员",
    "焊工": "焊工", "电焊工": "焊工", "电工": "电工", "钳工": "钳工", "车工": "车工", "操作工": "操作工",
    "普工": "普工", "包装工": "包装工", "搬运工": "搬运工", "装卸工": "装卸工", "缝纫工": "缝纫工",
    "瓦工": "瓦工", "木工": "木工", "钢筋工": "钢筋工", "架子工": "架子工", "油漆工": "油漆工",
    "水电工": "水电工", "建筑工人": "建筑工人", "农民工": "农民工", "力工": "力工", "小工": "力工",
    "保洁员": "保洁员", "保洁": "保洁员", "清洁工": "保洁员", "保安": "保安", "门卫": "保安",
    "厨师": "厨师", "帮厨": "厨师", "服务员": "服务员", "司机": "司机", "货车司机": "司机",
    "会计": "会计", "出纳": "出纳", "文员": "文员", "仓管员": "仓管员", "库管": "仓管员", "前台": "前台",
    "技术员": "技术员", "工程师": "工程师", "程序员": "程序员", "教师": "教师", "老师": "教师",
    "护士": "护士", "护工": "护工", "保姆": "家政服务员", "育儿嫂": "家政服务员", "月嫂": "家政服务员",
    "家政": "家政服务员", "主播": "主播", "学徒": "学徒", "实习生": "实习生", "班组长": "班组长",
    "车间主任": "车间主任", "配送员": "配送员", "理货员": "理货员", "美容师": "美容师", "理发师": "理发师",
}
_OCC_PATTERN = re.compile("|".join(sorted(map(re.escape, OCCUPATIONS), key=len, reverse=True)))
# Self-description around it: 我是…的叉车工 / 我在…做销售 / 我当保安 / 我是一名焊工
_SELF = re.compile(r"我(?:是|在|当|做|干|们是|们都是)|做|干|当|一名|是个")
# An occupation not on the list, said as 我是…的XX工/员/师.
_OCC_SHAPE = re.compile(r"我是[^，。？！]{0,16}?的([\u4e00-\u9fff]{1,3}(?:工|员|师))(?![\u4e00-\u9fff])")


def occupation(said: Sequence[Said]) -> Evidence | None:
    """The caller's occupation, from the list in a self-description, else from the 我是…的XX工 shape."""
    for s in (x for x in by_caller_first(said) if x.seg.speaker != "agent"):
        for m in _OCC_PATTERN.finditer(s.text):
            before = s.text[max(0, m.start() - 20):m.start()]
            if "我" in before or _SELF.search(before):
                return s.evidence(OCCUPATIONS[m.group(0)], 0.8)
        m2 = _OCC_SHAPE.search(s.text)
        if m2:
            return s.evidence(m2.group(1), 0.5)
    return None


# --- gender ---------------------------------------------------------------------------------------------

_FEMALE_SELF = ("我怀孕", "怀孕了", "我是女的", "我一个女的", "我是孕妇", "我休产假", "我在哺乳期", "我老公",
                "我丈夫", "我爱人他", "我产检", "我生孩子", "我生完孩子", "我刚生了")
_MALE_SELF = ("我是男的", "我一个男的", "我老婆", "我媳妇", "我妻子", "我爱人她", "我陪产假")
_FEMALE_ADDRESS = ("女士", "大姐", "阿姨", "姐")
_MALE_ADDRESS = ("先生", "大哥", "师傅", "大爷", "叔")


def gender(said: Sequence[Said]) -> Evidence | None:
    """男/女 from what the caller says of themself, else from how the agent addresses them; else None."""
    for s in said:
        if s.seg.speaker == "agent":
            continue
        if any(t in s.text for t in _FEMALE_SELF):
            return s.evidence("女", 0.9)
        if any(t in s.text for t in _MALE_SELF):
            return s.evidence("男", 0.9)
    for s in said:
        if s.seg.speaker != "agent":
            continue
        # "王先生", "您好女士"; a bare 姐/叔 must follow a surname-like character or 您/这位.
        if re.search(r"(?:[\u4e00-\u9fff]|您|这位)(?:女士|大姐|阿姨)", s.text):
            return s.evidence("女", 0.7)
        if re.search(r"(?:[\u4e00-\u9fff]|您|这位)(?:先生|大哥|大爷)", s.text):
            return s.evidence("男", 0.7)
    return None


# --- age bracket ----------------------------------------------------------------------------------------

BRACKETS = ((17, "18岁以下"), (25, "18-25"), (35, "26-35"), (45, "36-45"), (55, "46-55"), (200, "56+"))
_AGE = re.compile(rf"(?:我|今年|年纪|岁数|已经)[^，。？！]{{0,4}}?({NUMBER})({APPROX})?(?:周)?岁")


def bracket(age: int) -> str:
    return next(label for top, label in BRACKETS if age <= top)


def age_bracket(said: Sequence[Said]) -> Evidence | None:
    """From a stated age (我今年四十五岁, 我五十多岁了) → 18-25 / 26-35 / 36-45 / 46-55 / 56+."""
    for s in said:
        if s.seg.speaker == "agent":
            continue
        m = _AGE.search(s.text)
        if m:
            n = numbers_zh.parse(m.group(1), approx=m.group(2) or "")
            if n is not None and 10 <= n.value <= 90:
                return s.evidence(bracket(n.value), 0.8 if not n.approximate else 0.7)
    return None


# --- enterprise type ------------------------------------------------------------------------------------

_TYPE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("外资", ("外资", "外企", "合资", "独资", "日资", "韩资", "美资", "台资", "港资", "德资", "外国老板",
            "韩国老板", "日本老板", "（中国）", "(中国)")),
    ("国有", ("国企", "国有", "央企", "国营")),
    ("集体", ("集体企业", "集体所有", "村办", "镇办", "乡镇企业")),
    ("机关事业", ("事业单位", "机关", "政府", "街道办", "居委会", "公立学校", "公立医院")),
    ("个体", ("个体户", "个体", "小作坊", "小饭店", "小饭馆", "门头", "私人老板", "个人老板", "包工头")),
)


def enterprise_type(said: Sequence[Said], enterprise: Evidence | None) -> Evidence | None:
    """国有/集体/民营/外资/个体/机关事业 from words said about it; a 有限公司 with no other sign is 民营."""
    for s in by_caller_first(said):
        for kind, words in _TYPE_WORDS:
            if any(w in s.text for w in words):
                return s.evidence(kind, 0.8)
    if enterprise is not None:
        name = str(enterprise.value)
        for kind, words in _TYPE_WORDS:
            if any(w in name for w in words):
                return replace(enterprise, value=kind, confidence=0.7)
        if name.endswith(("有限公司", "有限责任公司")):
            return replace(enterprise, value="民营", confidence=0.5)
    return None


# --- arrears type (欠薪类别) -----------------------------------------------------------------------------

_ARREARS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("工程款", ("工程款", "包工头", "工地", "项目部", "总包", "分包", "劳务费")),
    ("加班费", ("加班费", "加班工资", "加班的钱")),
    ("经济补偿", ("经济补偿", "补偿金", "赔偿金", "遣散费", "N+1")),
    ("工资", ("工资", "欠薪", "薪水", "薪资", "工钱", "绩效", "提成")),
)
_OWED = ("欠", "拖", "没发", "不发", "没给", "不给", "克扣", "扣", "没结", "不结", "讨", "要不到", "拿不到", "没拿到")


def arrears_type(said: Sequence[Said], category: str) -> Evidence | None:
    """What is owed, when something is: 工资 / 加班费 / 经济补偿 / 工程款 (construction), else 其他."""
    owed = [s for s in by_caller_first(said) if s.seg.speaker != "agent" and any(w in s.text for w in _OWED)]
    if not owed and category != "欠薪":
        return None
    for kind, words in _ARREARS:
        for s in owed or by_caller_first(said):
            if any(w in s.text for w in words):
                return s.evidence(kind, 0.8 if owed else 0.6)
    if category == "欠薪":
        first = owed[0] if owed else by_caller_first(said)[0]
        return first.evidence("其他", 0.4)
    return None


# --- workers involved -----------------------------------------------------------------------------------

_PEOPLE = r"(?:个|名|位)?(?:人|职工|工人|员工|农民工|工友|兄弟|师傅|同事)"
_COUNT = re.compile(rf"({NUMBER})({APPROX})?{_PEOPLE}")
_TOTAL_WORDS = ("一共", "总共", "共", "全部", "总计", "合计", "全厂", "整个", "我们", "咱们")
_PLURAL = ("我们", "咱们", "大家", "工友们", "我们几个", "俺们")
_NOT_PEOPLE_BEFORE = ("每", "第")
MAX_HEADCOUNT = 9999  # a complaint about more workers than this is said in words (全厂), not counted
HOTLINES = ("12351", "12345", "12333", "12348")  # 职工 / 政务 / 人社 / 法律援助 hotlines: said before 职工


def workers(said: Sequence[Said]) -> Evidence | None:
    """How many workers the matter concerns: a stated count (冷库一共十五个人 → 15, 三十多个人 → 30),
    the largest "in all" count first; 1 when the caller only ever speaks for themself."""
    counts: list[tuple[tuple[int, int, int], Evidence]] = []
    for s in said:
        for m in _COUNT.finditer(s.text):
            if s.text[max(0, m.start() - 1):m.start()] in _NOT_PEOPLE_BEFORE:
                continue
            if m.group(1) == "一" and m.group(2) is None:
                continue  # "一个人" is a way of speaking, not a headcount
            n = numbers_zh.parse(m.group(1), approx=m.group(2) or "")
            if n is None or not 1 <= n.value <= MAX_HEADCOUNT or m.group(1) in HOTLINES:
                continue  # 12351职工服务热线 names a hotline, not 12351 workers
            before = s.text[max(0, m.start() - 6):m.start()]
            total = any(w in before for w in _TOTAL_WORDS)
            confidence = (0.85 if total else 0.7) - 0.1 * n.approximate
            if _misheard_tens(s.text, m.start(), m.group(1)):
                confidence = 0.4  # "同十个人": the tens digit was misheard; 十 is only the floor
            ev = s.evidence(n.value, confidence)
            counts.append(((int(total), int(s.seg.speaker != "agent"), n.value), ev))
    if counts:
        return max(counts, key=lambda c: c[0])[1]
    caller = [s for s in said if s.seg.speaker != "agent"]
    if caller and not any(w in s.text for s in caller for w in _PLURAL) and any("我" in s.text for s in caller):
        first = next(s for s in caller if "我" in s.text)
        return first.evidence(1, 0.6)
    return None


def _misheard_tens(text: str, start: int, number: str) -> bool:
    """A count that starts with 十 right after a non-numeral opening a clause (同十个人 for 三十个人)."""
    if not number.startswith("十") or start == 0:
        return False
    prev = text[start - 1]
    opens_clause = start == 1 or text[start - 2] in "，。？！、；：,.?!;: "
    return opens_clause and "\u4e00" <= prev <= "\u9fff" and prev not in numbers_zh.ZH_NUMERAL + "有共约近快是"


# --- amount in yuan -------------------------------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_MONEY = re.compile(rf"({NUMBER})(多|余|来)?(万|千)?(多|余|来)?(?:块钱|块|元|圆|万元)")
_TOTAL = ("一共", "总共", "共计", "合计", "总计", "加起来", "总额", "全部")
_PER = ("每人", "每个人", "每位", "人均", "一个人", "每个", "每月", "一个月", "每天", "一天", "月薪", "日薪",
        "时薪", "底薪", "小时", "工资是", "一月")


def amount(said: Sequence[Said]) -> Evidence | None:
    """The amount in dispute in whole yuan (四万二千元左右 → 42000, 4.2万 → 42000, 8600元 → 8600): a stated
    total (一共/总共) first; per-person and per-month rates are not totals and are never multiplied."""
    found: list[tuple[tuple[int, int, int], Evidence]] = []
    for s in said:
        text = _THOUSANDS.sub("", s.text)  # 3,600元 → 3600元
        for m in _MONEY.finditer(text):
            unit = m.group(0)
            multiplier = m.group(3) or ("万" if unit.endswith("万元") else "")
            n = numbers_zh.parse(m.group(1), multiplier, approx=m.group(2) or m.group(4) or "")
            if n is None or n.value < 10:
                continue
            before = text[max(0, m.start() - 8):m.start()]
            if any(w in before[-5:] for w in _PER) and not any(w in before for w in _TOTAL):
                continue
            total = any(w in before for w in _TOTAL)
            ev = s.evidence(n.value, (0.85 if total else 0.7) - 0.1 * n.approximate)
            found.append(((int(total), int(s.seg.speaker != "agent"), n.value), ev))
    return max(found, key=lambda f: f[0])[1] if found else None


# --- caller's phone number ------------------------------------------------------------------------------

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")


def caller_phone(said: Sequence[Said]) -> Evidence | None:
    """A mobile or landline number said in the call (by the caller, or read back by the agent)."""
    for s in by_caller_first(said):
        digits = re.sub(r"(?<=\d)[\s，,、-](?=\d)", "", s.text)
        m = _PHONE.search(digits)
        if m:
            return s.evidence(m.group(1).replace("-", ""), 0.9 if s.seg.speaker != "agent" else 0.8)
    return None
