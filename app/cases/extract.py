"""Where the call is about: the enterprise and the Qingdao district, from real (imperfect) ASR output.

Whisper base hears 崂山区 as 劳山齐, 有限公司 as 有线工资, 人力资源 as 严历自研 and drops characters. So
every value here is found on the text after the domain-term corrector (asr/lexicon.py) has run with the
names already on file, and then by sound (toneless pinyin) where a slot is known:

- an organisation suffix that sounds like 有限公司 is one (有线工资 → 有限公司);
- a registered name starts with a place: a first word that sounds like 青岛 is 青岛 (听到海风… → 青岛海风…);
- the word right before the suffix is usually the trade (水产, 建材, 人力资源…): a near-sounding stretch
  there becomes that trade word;
- a name near one on file (enterprises of earlier cases, lexicon enterprise terms) becomes that name.

Each value comes back as an Evidence: the value, a confidence, and the segment (index, seconds, speaker,
text) where it was said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pypinyin import Style, pinyin

from asr.lexicon import default_corrector, split_syllable, syllable_cost
from asr.types import Segment

DISTRICTS = ("市南区", "市北区", "李沧区", "崂山区", "黄岛区", "城阳区", "即墨区", "胶州市", "平度市", "莱西市")
# Names people say for a district without its suffix, and the new-area name of 黄岛区.
DISTRICT_ALIASES = {
    "西海岸新区": "黄岛区", "西海岸": "黄岛区", "黄岛": "黄岛区", "市南": "市南区", "市北": "市北区",
    "李沧": "李沧区", "崂山": "崂山区", "城阳": "城阳区", "即墨": "即墨区", "胶州": "胶州市",
    "平度": "平度市", "莱西": "莱西市",
}
PLACES_FILE = Path(__file__).parent / "data" / "qingdao_places.txt"
CITY = "青岛"
_REGISTERED = ("股份有限公司", "有限责任公司", "有限公司", "集团")
_PLAIN = ("分公司", "公司", "工厂", "厂", "酒店", "医院", "学校", "商场", "超市", "饭店", "宾馆", "工地", "项目部")
ORG_SUFFIX = re.compile("|".join((*_REGISTERED, *_PLAIN)))
_INDEFINITE = ("一家", "这家", "那家", "哪家", "我们", "他们", "你们", "这个", "那个", "什么", "别的", "其他",
               "正式", "原来", "现在", "以前", "自己", "一个")
# Characters that end a name when reading backwards from its suffix ("我在城阳区的青岛…公司").
_STOP = set("，。？！、；：,.?!;: 的在是被到给跟和与了我你他她们叫去从说让把就还也都")
_FILLERS = ("就是", "那个", "这个", "嗯", "呃", "啊", "叫做", "叫")
# Trades that registered names carry right before the suffix (青岛海丰水产有限公司).
TRADES = (
    "人力资源", "劳务派遣", "汽车配件", "汽车零部件", "机械设备", "电子科技", "信息技术", "网络科技", "生物科技",
    "食品", "水产", "水产品", "建材", "建筑", "建设", "建工", "工程", "装饰", "电子", "科技", "物流", "运输",
    "快递", "劳务", "机械", "化工", "服装", "纺织", "针织", "制衣", "家具", "木业", "五金", "模具", "塑料",
    "橡胶", "轮胎", "包装", "印刷", "家电", "电器", "船舶", "海洋", "港口", "物业", "物业管理", "餐饮",
    "酒店管理", "商贸", "贸易", "国际贸易", "实业", "置业", "房地产", "环保", "医药", "制药", "精密", "钢结构",
    "冷链", "食品加工", "农业", "渔业", "家政", "保安服务", "教育", "文化传媒", "传媒", "啤酒", "纸业",
    "金属", "铸造", "钢铁", "新能源", "电气", "仪器", "电力", "装备",
)
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Evidence:
    """A suggested value and where it was said: segment index, seconds, speaker and that segment's text."""

    value: Any
    confidence: float
    segment: int
    start: float
    end: float
    speaker: str
    text: str
    status: str = ""  # 待核实: too unsure to fill in; the agent is asked (app/cases/verify.py)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Said:
    """One segment as extraction reads it: ``text`` after domain-term correction, ``seg`` as transcribed."""

    index: int
    seg: Segment
    text: str

    def evidence(self, value: Any, confidence: float) -> Evidence:
        return Evidence(value, round(confidence, 2), self.index, self.seg.start, self.seg.end, self.seg.speaker,
                        self.seg.text)


def prepare(segments: Sequence[Segment], known: Iterable[str] = ()) -> list[Said]:
    """The segments with the domain lexicon plus ``known`` names (and their cores) corrected in."""
    extra = tuple(sorted({t for name in known for t in (name, core_of(name)) if len(t) >= 2}))
    corrector = default_corrector(extra)
    return [Said(i, s, corrector.correct(s.text)[0]) for i, s in enumerate(segments)]


def by_caller_first(said: Sequence[Said]) -> list[Said]:
    return sorted(said, key=lambda s: (s.seg.speaker == "agent", s.seg.start))


# --- sound ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def readings(ch: str) -> tuple[str, ...]:
    return tuple(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


def _initial_final(s: str) -> tuple[str, str]:
    return split_syllable(s)


def loose_cost(a: str, b: str) -> float:
    """Like asr.lexicon.syllable_cost, but a syllable that keeps its initial or its final costs 0.5 more
    than a usual confusion instead of 1: for slots where we already know what kind of word must stand."""
    cost = syllable_cost(a, b)
    if cost < 1.0:
        return cost
    (ia, fa), (ib, fb) = _initial_final(a), _initial_final(b)
    return 0.5 if ia == ib or fa == fb or fa.endswith(fb) or fb.endswith(fa) else 1.0


def char_cost(ch: str, syllable: str, loose: bool = False) -> float:
    cost = loose_cost if loose else syllable_cost
    return min((cost(r, syllable) for r in readings(ch)), default=1.0)


def sounds(text: str) -> tuple[str, ...]:
    return tuple(s[0] for s in pinyin(text, style=Style.NORMAL))


def sound_costs(stretch: str, term: str, loose: bool = False) -> list[float]:
    return [char_cost(ch, s, loose) for ch, s in zip(stretch, sounds(term), strict=True)]


def sound_distance(a: str, b: str) -> float:
    """Edit distance between two names by sound: substitution costs 0/0.5/1 by pinyin, a dropped or added
    character costs 1. Divided by the longer length: 0 same sound, 1 nothing alike."""
    sb = sounds(b)
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ch in enumerate(a, 1):
        cur = [float(i)]
        for j, syl in enumerate(sb, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (0.0 if ch == b[j - 1] else char_cost(ch, syl))))
        prev = cur
    return prev[-1] / max(len(a), len(b), 1)


# --- enterprise -----------------------------------------------------------------------------------------


def core_of(name: str) -> str:
    """青岛海丰水产有限公司 → 海丰水产: the part people say on its own."""
    for suffix in sorted((*_REGISTERED, *_PLAIN), key=len, reverse=True):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for place in (CITY, *sorted((*DISTRICTS, *DISTRICT_ALIASES), key=len, reverse=True)):
        if name.startswith(place) and len(name) > len(place) + 1:
            return name[len(place):]
    return name


def _fix_registered_suffix(text: str) -> str:
    """有线工资 / 有限工司 → 有限公司: four characters that sound like it, 有限 heard right."""
    out = text
    for i in range(len(text) - 3):
        stretch = text[i:i + 4]
        if stretch == "有限公司" or not all(_CJK.match(c) for c in stretch):
            continue
        costs = sound_costs(stretch, "有限公司")
        if costs[0] == costs[1] == 0 and sum(costs) <= 1.0:
            out = out[:i] + "有限公司" + out[i + 4:]
    return out


def _name_before(text: str, end: int) -> str:
    """The name ending at ``end``, read backwards to a stop character. A stop character can be part of a
    misheard 青岛 (听到海丰… for 青岛海丰…): such a pair is kept, and _fix_place corrects it."""
    i = end
    while i > 0 and text[i - 1] not in _STOP and end - i < 24:
        i -= 1
    if i >= 2 and _sounds_like_city(text[i - 2:i]):
        i -= 2
    name = text[i:end]
    for filler in _FILLERS:
        if name.startswith(filler):
            name = name[len(filler):]
    return name


def _sounds_like_city(stretch: str) -> bool:
    if len(stretch) != 2 or not all(_CJK.match(c) for c in stretch):
        return False
    costs = sound_costs(stretch, CITY, loose=True)
    return costs[1] == 0 and costs[0] <= 0.5


def _starts_with_place(name: str) -> bool:
    return name.startswith((CITY, *DISTRICTS, *DISTRICT_ALIASES))


def _fix_place(name: str) -> tuple[str, bool]:
    """Start the name at the place said in it; a first word that sounds like 青岛 is 青岛."""
    for place in (CITY, *DISTRICTS, *DISTRICT_ALIASES):
        k = name.find(place)
        if k > 0:
            return name[k:], False
    if not _starts_with_place(name) and len(name) >= 6 and _sounds_like_city(name[:2]):
        return CITY + name[2:], True
    return name, False


def _fix_trade(core: str) -> tuple[str, bool]:
    """The trade word right before the suffix, by sound: 严历自研 → 人力资源, 建采 → 建材."""
    for n in (4, 3, 2):
        if len(core) < n + 2 and not (n == 2 and len(core) >= 3):
            continue
        tail = core[-n:]
        if tail in TRADES or any(core.endswith(t) for t in TRADES):
            return core, False
        best: tuple[float, str] | None = None
        for trade in (t for t in TRADES if len(t) == n):
            costs = sound_costs(tail, trade, loose=n >= 4)
            exact = sum(c == 0 for c in costs)
            ok = sum(costs) == 0 if n == 2 else sum(costs) / n <= 0.4 and exact * 2 >= n
            if ok and (best is None or sum(costs) < best[0]):
                best = (sum(costs), trade)
        if best is not None:
            return core[:-n] + best[1], True
    return core, False


def closest_known(name: str, known: Iterable[str]) -> tuple[str, float] | None:
    """The name on file that sounds most like ``name`` (whole or core), with its distance, if near."""
    best: tuple[str, float] | None = None
    for k in known:
        d = min(sound_distance(name, k), sound_distance(core_of(name), core_of(k)) if len(core_of(k)) >= 3 else 1.0)
        if d <= 0.3 and (best is None or d < best[1]):
            best = (k, d)
    return best


def enterprise(segments: Sequence[Segment], *, known: Sequence[str] = (),
               said: Sequence[Said] | None = None) -> Evidence | None:
    """The organisation the call is about, e.g. 青岛海丰水产有限公司: a name on file first, then registered
    forms (有限公司…) before plain ones (…厂), the caller's words before the agent's, then the longest."""
    said = said if said is not None else prepare(segments, known)
    found: list[tuple[tuple[int, int, int, int], Evidence]] = []
    for s in said:
        text = _fix_registered_suffix(s.text)
        for m in ORG_SUFFIX.finditer(text):
            found += _candidate(s, text, m, known)
        for k in known:  # a name on file said by its core alone ("在海丰上班")
            core = core_of(k)
            if len(core) >= 3 and core in text:
                ev = s.evidence(k, 0.85)
                found.append(((1, 1, int(s.seg.speaker != "agent"), len(k)), ev))
    return max(found, key=lambda f: f[0])[1] if found else None


def _candidate(s: Said, text: str, m: re.Match[str], known: Sequence[str]) -> list[tuple[tuple[int, int, int, int],
                                                                                      Evidence]]:
    suffix = m.group(0)
    name, guessed_place = _fix_place(_name_before(text, m.start()))
    if any(w in name for w in _INDEFINITE) or not _CJK.search(name):
        return []
    registered = suffix in _REGISTERED
    placed = _starts_with_place(name)
    core = name
    for place in (CITY, *sorted((*DISTRICTS, *DISTRICT_ALIASES), key=len, reverse=True)):
        if placed and name.startswith(place):
            core = name[len(place):]
            break
    if len(core) < 2:
        return []
    fixed_core, guessed_trade = _fix_trade(core) if registered else (core, False)
    full = name[: len(name) - len(core)] + fixed_core + suffix
    near = closest_known(full, known)
    if near is not None:
        return [((1, int(registered), int(s.seg.speaker != "agent"), len(near[0])),
                 s.evidence(near[0], 0.9 - near[1]))]
    if not (registered or placed):
        return []  # "正式公司", "电子厂": a plain word before a suffix is no name
    confidence = 0.85 - 0.15 * guessed_place - 0.15 * guessed_trade - 0.2 * (not registered)
    return [((0, int(registered), int(s.seg.speaker != "agent"), len(full)), s.evidence(full, confidence))]


# --- district -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def streets() -> dict[str, str]:
    """Street or town name (with its 街道/镇) → district, from data/qingdao_places.txt."""
    out: dict[str, str] = {}
    for line in PLACES_FILE.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        district_name, names = line.split(":", 1)
        for name in names.split():
            out[name] = district_name.strip()
    return out


@lru_cache(maxsize=1)
def _place_pattern() -> re.Pattern[str]:
    names = sorted((*streets(), *DISTRICTS, *DISTRICT_ALIASES), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names)))


def _district_of(name: str) -> str:
    return streets().get(name) or DISTRICT_ALIASES.get(name) or name


def _suffix_like(ch: str) -> bool:
    """A character heard for 区 or 市 after a district's short name (劳山齐, 城阳去, 胶州是)."""
    for r in readings(ch):
        ini, fin = _initial_final(r)
        if (ini in ("q", "j", "x", "ch") and fin in ("u", "i", "v", "ü")) or (ini in ("sh", "s") and fin == "i"):
            return True
    return False


def place_mentions(said: Iterable[Said]) -> Iterator[Evidence]:
    """Every place written in full in the segments, in their order, as the district it is in: a district's
    name or short name, a street or town of it (confidence 0.9 for a district's full name, else 0.8)."""
    pattern = _place_pattern()
    for s in said:
        for m in pattern.finditer(s.text):
            name = m.group(0)
            if name in DISTRICT_ALIASES and s.text[m.end():m.end() + 1] in ("路", "街"):
                continue  # 即墨路 is a street in 市北区, not 即墨区
            yield s.evidence(_district_of(name), 0.9 if name in DISTRICTS else 0.8)


def district(segments: Sequence[Segment], *, said: Sequence[Said] | None = None) -> Evidence | None:
    """The first district named by the caller (else the agent): full name, short name, a street or town of
    it, or a short name heard as a homophone followed by something like 区/市 (劳山齐 → 崂山区)."""
    said = said if said is not None else prepare(segments)
    first = next(place_mentions(by_caller_first(said)), None)
    if first is not None:
        return first
    for s in by_caller_first(said):
        heard = _heard_district(s.text)
        if heard:
            return s.evidence(heard, 0.6)
    return None


def _heard_district(text: str) -> str | None:
    for i in range(len(text) - 2):
        stretch = text[i:i + 2]
        if not all(_CJK.match(c) for c in stretch) or not _suffix_like(text[i + 2]):
            continue
        for alias, name in DISTRICT_ALIASES.items():
            if len(alias) == 2 and sum(sound_costs(stretch, alias)) == 0:
                return name
    return None
