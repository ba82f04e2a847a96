"""First-pass extraction of the enterprise and the Qingdao district from a transcript."""

from __future__ import annotations

import re
from dataclasses import dataclass

from asr.types import Segment

DISTRICTS = ("市南区", "市北区", "李沧区", "崂山区", "黄岛区", "城阳区", "即墨区", "胶州市", "平度市", "莱西市")
# Names people say for a district without its suffix, and the new-area name of 黄岛区.
DISTRICT_ALIASES = {
    "西海岸新区": "黄岛区", "西海岸": "黄岛区", "黄岛": "黄岛区", "市南": "市南区", "市北": "市北区",
    "李沧": "李沧区", "崂山": "崂山区", "城阳": "城阳区", "即墨": "即墨区", "胶州": "胶州市",
    "平度": "平度市", "莱西": "莱西市",
}
_REGISTERED = ("股份有限公司", "有限责任公司", "有限公司", "集团")
_ORG_SUFFIX = "(?:" + "|".join((*_REGISTERED, "公司", "厂", "酒店", "医院", "学校", "商场", "超市")) + ")"
_INDEFINITE = ("一家", "这家", "那家", "哪家", "我们", "他们")  # "一家水产加工厂" is not a name
# Characters that end a name when reading backwards from its suffix ("我在城阳区的青岛…公司").
_STOP = set("，。？！、；：,.?!;: 的在是被到给跟和与了我你他她们叫去从")


@dataclass(frozen=True)
class Found:
    value: str
    start: float
    speaker: str


def _name_before(text: str, end: int) -> str:
    i = end
    while i > 0 and text[i - 1] not in _STOP and end - i < 24:
        i -= 1
    return text[i:end]


def enterprise(segments: list[Segment]) -> Found | None:
    """The best organisation name said, e.g. 青岛海丰水产有限公司: registered forms (有限公司…) before
    plain ones (…厂), then the longest; the caller's words before the agent's."""
    found: list[tuple[int, int, int, Found]] = []
    for seg in segments:
        for m in re.finditer(_ORG_SUFFIX, seg.text):
            name = _name_before(seg.text, m.start()) + m.group(0)
            if len(name) - len(m.group(0)) < 2 or any(w in name for w in _INDEFINITE):
                continue
            rank = (m.group(0) in _REGISTERED, seg.speaker == "caller", len(name))
            found.append((*map(int, rank), Found(name, seg.start, seg.speaker)))  # type: ignore[arg-type]
    return max(found, key=lambda f: f[:3])[3] if found else None


def district(segments: list[Segment]) -> Found | None:
    """The first district named, by its full name or a common short name."""
    names = sorted((*DISTRICTS, *DISTRICT_ALIASES), key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, names)))
    for seg in sorted(segments, key=lambda s: (s.speaker != "caller", s.start)):
        m = pattern.search(seg.text)
        if m:
            return Found(DISTRICT_ALIASES.get(m.group(0), m.group(0)), seg.start, seg.speaker)
    return None
