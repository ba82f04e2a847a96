from asr.mandarin import clean, is_hallucination


def test_traditional_becomes_simplified() -> None:
    assert clean("請問公司的全稱是什麼?") == "请问公司的全称是什么？"


def test_punctuation_goes_full_width_but_numbers_keep_theirs() -> None:
    assert clean("您好,12351热线.") == "您好，12351热线。"
    assert clean("一共10,000元,对吗?") == "一共10,000元，对吗？"
    assert clean("工资3.5万") == "工资3.5万"


def test_spaces_between_chinese_words_are_dropped() -> None:
    assert clean(" 我 在 城阳区 上班 ") == "我在城阳区上班"


def test_known_hallucinations_are_removed() -> None:
    assert is_hallucination("字幕由Amara.org社群提供")
    assert clean("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目") == ""
    assert not is_hallucination("公司拖欠我们工资两个多月了")
