"""Word timings carried from Whisper's pieces to the cleaned-up, corrected text (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from asr.lexicon import default_corrector
from asr.mandarin import clean
from asr.types import Word
from asr.words import carry_spans, char_spans, fit_to_speech, timed_words, word_cuts


def pieces(*timed: tuple[str, float, float]) -> list[Word]:
    return [Word(start, end, text) for text, start, end in timed]


def one_per_char(text: str, start: float = 10.0, step: float = 0.2) -> list[Word]:
    """A piece per character, ``step`` seconds each, from ``start``."""
    return [Word(start + k * step, start + (k + 1) * step, ch) for k, ch in enumerate(text)]


def final(raw: str) -> str:
    return default_corrector().correct(clean(raw))[0]


def check(words: list[Word], text: str, start: float, end: float) -> None:
    assert "".join(w.text for w in words) == text
    assert all(start <= w.start <= w.end <= end for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


def test_unchanged_text_keeps_the_pieces_times_and_cuts_words() -> None:
    raw = pieces(("我们", 1.0, 1.4), ("是", 1.4, 1.6), ("被", 1.6, 1.8), ("派", 1.8, 2.0), ("到", 2.0, 2.2),
                 ("黄", 2.2, 2.4), ("岛", 2.4, 2.6))
    words = timed_words(raw, "我们是被派到黄岛", 1.0, 3.0)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("我们", 1.0, 1.4), ("是", 1.4, 1.6), ("被", 1.6, 1.8), ("派", 1.8, 2.0), ("到", 2.0, 2.2),
        ("黄岛", 2.2, 2.6)]


def test_numbers_normalized_take_the_time_of_the_numerals_they_replace() -> None:
    raw_text = "我欠了四万二千元,公司说"
    text = final(raw_text)
    assert text == "我欠了42000元，公司说"
    words = timed_words(one_per_char(raw_text), text, 10.0, 13.0)
    check(words, text, 10.0, 13.0)
    number = next(w for w in words if "42000" in w.text)
    assert number.start == pytest.approx(10.6) and number.end == pytest.approx(11.4)  # 四万二千: chars 3-6
    assert next(w for w in words if w.text.startswith("公司")).start == pytest.approx(11.8)  # after 元 and ,


def test_a_lexicon_replacement_keeps_the_time_of_the_homophone_it_replaced() -> None:
    raw_text = "我去申请工商认定了"
    text = final(raw_text)
    assert text == "我去申请工伤认定了"
    spans = carry_spans(one_per_char(raw_text, 0.0), text)
    assert spans[4] == pytest.approx((0.8, 1.0)) and spans[5] == pytest.approx((1.0, 1.2))  # 工伤 ← 工商
    words = timed_words(one_per_char(raw_text, 0.0), text, 0.0, 2.0)
    check(words, text, 0.0, 2.0)
    assert any(w.text in ("工伤", "工伤认定") and w.start == pytest.approx(0.8) for w in words)


def test_a_collapsed_loop_keeps_the_first_copy_and_the_words_after_it() -> None:
    raw_text = "现在现在现在现在厂里说"
    text = final(raw_text)
    assert text == "现在厂里说"
    words = timed_words(one_per_char(raw_text, 5.0), text, 5.0, 8.0)
    check(words, text, 5.0, 8.0)
    assert (words[0].text, words[0].start) == ("现在", 5.0)
    assert next(w for w in words if w.text.startswith("厂")).start == pytest.approx(6.6)  # the 9th character


def test_punctuation_added_by_clean_up_rides_with_the_word_before_it() -> None:
    raw = pieces((" 您好", 0.5, 1.0), ("请问", 1.2, 1.6), ("是", 1.6, 1.8), ("哪里", 1.8, 2.2))
    text = "您好，请问是哪里？"
    words = timed_words(raw, text, 0.5, 2.5)
    check(words, text, 0.5, 2.5)
    assert [w.text for w in words] == ["您好，", "请问", "是", "哪里？"]
    assert (words[0].start, words[0].end) == (0.5, 1.0)  # the space took no time, the comma none
    assert words[-1].end == pytest.approx(2.2)


def test_traditional_script_and_a_readout_number_map_character_for_character() -> None:
    raw_text = "您好 請問是一二三五一熱線嗎"
    text = final(raw_text)
    assert text == "您好请问是12351热线吗"
    words = timed_words(one_per_char(raw_text, 0.0, 0.1), text, 0.0, 2.0)
    check(words, text, 0.0, 2.0)
    assert next(w for w in words if w.text == "12351").start == pytest.approx(0.6)


def test_words_stay_inside_the_segment_and_in_order() -> None:
    raw = pieces(("工", 0.9, 1.3), ("资", 1.2, 1.5), ("没", 1.5, 2.8), ("发", 2.8, 3.4))  # overlapping, past end
    words = timed_words(raw, "工资没发", 1.0, 3.0)
    check(words, "工资没发", 1.0, 3.0)
    assert words[0].start == 1.0 and words[-1].end == 3.0


def test_a_pause_inside_a_character_is_cut_before_it_or_after_the_last() -> None:
    raw_text, spans = char_spans(pieces(("三", 3.0, 5.3), ("十", 5.3, 5.5), ("人", 5.5, 7.9)))
    assert raw_text == "三十人"
    words = timed_words(pieces(("三", 3.0, 5.3), ("十", 5.3, 5.5), ("人", 5.5, 7.9)), "三十人", 3.0, 8.0)
    assert words[0].start == pytest.approx(4.3) and words[-1].end == pytest.approx(6.5)


def test_no_timings_no_words() -> None:
    assert timed_words([], "您好", 0.0, 1.0) == []


def test_word_cuts_concatenate_to_the_text() -> None:
    for text in ("您好，12351热线。", "“工伤认定”怎么办？", "……", "我的电话是13812345678，谢谢。"):
        cuts = word_cuts(text)
        assert "".join(cuts) == text
        assert all(c[0] not in "，。？”" for c in cuts[1:])  # punctuation never starts a word but the first
    assert word_cuts("“工伤认定”怎么办？")[0].startswith("“")


def test_a_long_piece_is_shrunk_to_the_sound_in_it() -> None:
    # 3 s clip: silence, then sound from 1.8 s to 2.4 s; a piece 0.5-2.4 s took in the silence before it
    level = np.full(300, -0.6)
    level[180:240] = 0.3
    mel = np.tile(level, (80, 1))
    fitted = fit_to_speech(pieces(("你好", 0.0, 0.4), ("三", 0.5, 2.4), ("，", 2.4, 2.9)), mel)
    assert (fitted[1].start, fitted[1].end) == (1.8, 2.4)
    assert fitted[0] == Word(0.0, 0.4, "你好") and fitted[2] == Word(2.4, 2.9, "，")  # short ones, punctuation
    # DTW starts the first token at the clip's first frame: the first piece said starts with the sound
    fitted = fit_to_speech(pieces((" ", 0.0, 0.0), ("三十", 1.5, 2.0), ("个", 2.0, 2.2)), mel)
    assert fitted[1] == Word(1.8, 2.0, "三十") and fitted[2] == Word(2.0, 2.2, "个")
