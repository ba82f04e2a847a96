from asr.mandarin import clean, is_hallucination


def test_traditional_becomes_simplified() -> None:
    assert clean("請問公司的全稱是什麼?") == "请问公司的全称是什么？"


def test_punctuation_goes_full_width_but_numbers_keep_theirs() -> None:
    assert clean("您好,12351热线.") == "您好，12351热线。"
    assert clean("一共10,000元,对吗?") == "一共10000元，对吗？"
    assert clean("工资3.5万") == "工资3.5万"


def test_numbers_are_written_one_way() -> None:
    assert clean("自己垫付了八千六百元医药费") == "自己垫付了8600元医药费"
    assert clean("拖欠的工资总共四万二千元，二十四小时内回复") == "拖欠的工资总共42000元，24小时内回复"
    assert clean("这里是一二三五一热线，百分之八十") == "这里是12351热线，80%"
    # read out digit by digit and written in dashed groups: one number; a range and a date stay as they are
    assert clean("你好，123-5-1热线") == "你好，12351热线"
    assert clean("电话0532-8888-6666") == "电话053288886666"
    assert clean("等3-5天，2026-12-03前") == "等3-5天，2026-12-03前"
    # Words stay words where digits would read badly or be wrong: one-character and approximate numbers.
    for kept in ("签了一个声明", "两个多月", "十几个人", "二十多个人", "五六个人", "三年以上"):
        assert clean(kept) == kept


def test_repetition_loops_are_collapsed() -> None:
    assert clean("我们我们我们我们要工资") == "我们要工资"
    assert clean("谢谢谢谢谢谢谢") == "谢谢"
    for kept in ("看看", "哈哈哈", "谢谢"):
        assert clean(kept) == kept


def test_a_whole_clause_looped_is_kept_once_with_its_cut_copy_dropped() -> None:
    # seen live: a greedy decode of the agent's closing sentence ran on until the token limit
    looped = "好的，我们已经登记，会联系属地工会和企业核实。" * 4 + "好的，我们已经"
    assert clean(looped) == "好的，我们已经登记，会联系属地工会和企业核实。"
    # a short question said twice, and different clauses sharing words, are speech, not loops
    for kept in ("请问公司的全称是什么？请问公司的全称是什么？", "我们的工资一直没发，我们的加班费也一直没发。"):
        assert clean(kept) == kept


def test_spaces_between_chinese_words_are_dropped() -> None:
    assert clean(" 我 在 城阳区 上班 ") == "我在城阳区上班"


def test_known_hallucinations_are_removed() -> None:
    assert is_hallucination("字幕由Amara.org社群提供")
    assert clean("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目") == ""
    assert not is_hallucination("公司拖欠我们工资两个多月了")


def test_broken_characters_and_full_width_digits() -> None:
    # What Whisper wrote on held-out calls: a character cut to some of its byte tokens, a full-width digit.
    assert clean("同工同仇\ufffd我们会联系") == "同工同仇我们会联系"
    assert clean("您好４职工服务热线") == "您好4职工服务热线"
