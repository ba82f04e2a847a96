"""Domain-term correction fixes homophones Whisper produced on dev calls, and leaves correct text alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.lexicon import Corrector, default_corrector, syllable_cost
from tests.conftest import DATA

# (what Whisper base wrote on dev-corpus calls, what the corrector must make of the heard stretch)
HEARD = [
    ("我是劳山区一家水产加工厂的", ("劳山区", "崂山区")),
    ("冷库插车工", ("插车工", "叉车工")),
    ("青岛海风水产油线公司", ("油线公司", "有限公司")),
    ("我再承扬区的青岛宏远汽车配件有限公司上班", ("承扬区", "城阳区")),
    ("公司有没有给您申请工商认定", ("工商认定", "工伤认定")),
    ("派遣公司应当医法安排", ("医法", "依法")),
    ("我在郊州市的青岛金桥建材有限公司", ("郊州市", "胶州市")),
    ("您可以向社保金板机构投诉要求步骄", ("社保金板机构", "社保经办机构")),
    ("职工资院放弃的声明是无效的", ("资院放弃", "自愿放弃")),
    ("派浅公司说没有别的岗位", ("派浅公司", "派遣公司")),
    ("社宝没交，我要申请中才", ("中才", "仲裁")),
]

CORRECT = [
    "公司拖欠我们工资两个多月了，我去了工商局。",
    "我在水产加工厂上班，冷库一共十五个人。",
    "劳动合同期限三年以上的，试用期不得超过六个月。",
    "他说这个事情要找公司领导，我们先登记一下。",
    "使用这个软件的时候要注意，工商注册信息可以查到。",
]


def _truth_sentences() -> list[str]:
    names = ["truth_D01.json", "truth_D02.json", "call_d03.json", "truth_D04.json", "truth_D05.json",
             "truth_MD01.json"]
    return [t["text"] for n in names for t in json.loads((DATA / n).read_text())["turns"]]


@pytest.mark.parametrize(("heard", "change"), HEARD)
def test_fixes_homophones_of_domain_terms(heard: str, change: tuple[str, str]) -> None:
    fixed, changes = default_corrector().correct(heard)
    assert change in changes
    assert change[1] in fixed


def _heldout_sentences() -> list[str]:
    """The held-out corpus (corpus/heldout, scripts written apart from the lexicon) must come through too."""
    folder = Path(__file__).parents[2] / "corpus" / "heldout"
    return [t["text"] for f in sorted(folder.glob("*.json")) for t in json.loads(f.read_text())["turns"]]


@pytest.mark.parametrize("sentence", _truth_sentences() + _heldout_sentences() + CORRECT)
def test_leaves_correct_text_alone(sentence: str) -> None:
    assert default_corrector().correct(sentence) == (sentence, [])


def test_enterprise_names_on_file_are_terms_too() -> None:
    fixed, _ = default_corrector(("青岛宏远汽车配件有限公司",)).correct("我在青岛红远汽车配件有限公司上班")
    assert fixed == "我在青岛宏远汽车配件有限公司上班"


def test_punctuation_and_latin_are_never_touched() -> None:
    assert Corrector(["有限公司"]).correct("油线,公司 ABC") == ("油线,公司 ABC", [])


def test_syllable_confusions() -> None:
    assert syllable_cost("zhong", "zhong") == 0
    assert syllable_cost("jin", "jing") == 0.5 and syllable_cost("si", "shi") == 0.5
    assert syllable_cost("gong", "dong") == 1
