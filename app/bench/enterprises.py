"""`hotline bench enterprises`: resolve ASR-garbled enterprise names against a registry of 350,000.

The registry: plausible Qingdao names — 青岛 (sometimes 青岛市 or a district after it, sometimes （青岛）
inside) + a trade name of 2 (sometimes 3) characters drawn from characters common in company names + a trade
word (TRADES) + a suffix (有限公司, 有限责任公司, 股份有限公司, 集团有限公司 …), unique, with about 3%
near-duplicates that sound the same (青岛恒达机械 beside 青岛恒大机械), as real registries have.

The mentions, as Whisper base hears names over the phone: said whole, by the core alone (恒达机械), as
恒达机械公司 or without 青岛; then 1–3 errors each, most of them in the trade name (the model knows 有限公司
and 机械, not 恒达): a homophone (same toneless pinyin, the replacement drawn by how common the character is
in jieba's dictionary — what a language model prefers), a near-homophone (z/zh, c/ch, s/sh, n/l, f/h, l/r,
an/ang, en/eng, in/ing, ian/iang, uan/uang), rarely a character sharing only its initial or final, or a
dropped character (not out of a two-character trade name, which is said with stress); and the usual
slips 有限公司 → 有线公司/有限工资, 青岛 → 京岛/清岛. The unregistered
mentions are names from the same generator that are not in the registry, garbled the same way.

The garbling uses pypinyin readings and its own confusion table — nothing of the resolver's normalization
(app/enterprises/resolve.py: folding, cutting, keys) — so the figures measure the resolver, not an echo.
"""

from __future__ import annotations

import gc
import logging
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import jieba
import psutil
from pypinyin import Style, pinyin

from app.cases.extract import TRADES
from app.enterprises.resolve import Resolver
from asr.lexicon import split_syllable

# Characters common in Chinese company trade names (字号).
BRAND_CHARS = (
    "恒达大华泰海丰宏远金鑫源通航东方利民永兴新润佳美顺盛世百川中联德信福瑞和国亿鲁诚万家天成隆昌明正荣富贵祥安"
    "康宁平广盈瀚博创智汇聚力鼎晟昊辰宇星辉光耀阳升腾飞龙凤鹏程锦绣秀夏青蓝翠绿红紫银铜宝玉珍丽雅乐欣悦嘉怡俊杰"
    "英豪雄伟立志图业基本泉江河湖洋山峰岭岳谷林森木松柏竹梅兰菊荷莲春秋冬晨曦朝旭日月云地人合众协同共享友邦盟义"
    "仁礼勇厚道久长常胜凯旋捷迅速畅收稳健强茂繁旺发展锐思维科想益铭洲浩泽澜沃威诺尚品优精卓越迈克斯特普赛乾坤元"
    "亨贞吉庆祺禧寿喜衡均齐胶崂琴岛舜禹尧汉唐宋滨港湾沙石田园磊淼焱垚犇晶奥贝奔彬斌才灿超驰纯丹迪栋都笃敦多恩帆"
    "凡芳锋枫甘歌耕功恭冠桂涵弘虹鸿桦欢环徽慧惠甲坚剑疆锦晋进京经景竞静君峻骏楷可昆朗雷霖临凌灵领路禄伦罗洛蒙"
    "孟沐纳南楠农鹏朋坡奇琦启起千谦桥钦勤清全群然融若善圣诗时实仕书舒曙硕颂坦拓巍文溪熙先贤翔向晓轩宣雪勋亚炎"
    "彦一伊依宜艺逸毅翼寅盈赢颖佑羽裕跃蕴展兆哲振之致舟子梓宗尊佐碧标波策昶澄崇楚储淳慈存岱澳登典定斗杜端铎朵"
    "尔菲孚甫阜罡皋根庚贡固灌归圭轨衮果骅怀槐焕皇晖卉基极继稼驾鉴将匠娇洁介津菁井敬靖炬巨钜开堪珂恳空孔阔岚浪"
    "蕾黎理励梁亮辽烈麟玲令楼陆纶满曼玫萌米苗闽茗墨牧穆能霓年欧攀沛彭蓬萍圃浦谱七麒迁潜乔巧擎卿晴琼求渠确冉任"
    "容如儒塞韶绍申深神慎施拾市势释首枢束树帅双水朔丝嵩苏穗滔韬添恬彤童途瓦微卫蔚稳无吾舞西希昔锡熹霞弦显宪献"
    "相香骁孝效邢修序玄璇学寻逊延言岩研衍雁燕杨仰野仪颐忆意因音引隐印迎滢咏涌悠尤由有于余渔雨语育郁域誉园原圆"
    "苑愿约耘允运韵增湛章彰照浙真震征政知忠钟州周铸筑综"
)
DISTRICT_SHORT = ("市南", "市北", "李沧", "崂山", "黄岛", "城阳", "即墨", "胶州", "平度", "莱西")
SUFFIX_WEIGHTS = (("有限公司", 62), ("有限责任公司", 12), ("股份有限公司", 6), ("集团有限公司", 4), ("集团", 2),
                  ("分公司", 2), ("厂", 2), ("有限公司分公司", 0))
NEAR_INITIALS = (("z", "zh"), ("c", "ch"), ("s", "sh"), ("n", "l"), ("f", "h"), ("l", "r"))
NEAR_FINALS = (("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang"))
SUFFIX_SLIPS = {"有限公司": ("有线公司", "有限工资", "有限攻司", "有线工司"),
                "有限责任公司": ("有线责任公司", "有限责任工司")}
CITY_SLIPS = ("京岛", "清岛", "青到", "经岛")


@lru_cache(maxsize=100_000)
def reading(ch: str) -> str:
    return pinyin(ch, style=Style.NORMAL)[0][0]


@dataclass
class Pools:
    """Characters by toneless syllable, each with how common it is (jieba's dictionary)."""

    by_syllable: dict[str, tuple[list[str], list[float]]]
    by_initial: dict[str, tuple[list[str], list[float]]]
    by_final: dict[str, tuple[list[str], list[float]]]


def _common(ch: str) -> bool:
    """One of GB 2312's 3,755 level-1 characters (the everyday ones an ASR language model writes)."""
    try:
        code = ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and 0xB0 <= code[0] <= 0xD7


def pools() -> Pools:
    jieba.setLogLevel(logging.WARNING)
    jieba.dt.check_initialized()
    freq: dict[str, float] = defaultdict(float)
    for word, f in jieba.dt.FREQ.items():
        if f <= 0:
            continue
        for ch in word:
            if _common(ch):
                freq[ch] += f
    by_syl: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
    by_ini: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
    by_fin: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
    for ch in freq:
        syl = reading(ch)
        ini, fin = split_syllable(syl)
        weight = freq[ch] ** 0.5
        for table, key in ((by_syl, syl), (by_ini, ini), (by_fin, fin)):
            table[key][0].append(ch)
            table[key][1].append(weight)
    return Pools(dict(by_syl), dict(by_ini), dict(by_fin))


@dataclass(frozen=True)
class Name:
    full: str
    place: str  # 青岛, 青岛市, 青岛城阳 … ('' for the （青岛） form)
    brand: str
    trade: str
    suffix: str


class Garbler:
    def __init__(self, rng: random.Random, p: Pools) -> None:
        self.rng = rng
        self.p = p

    def _pick(self, table: dict[str, tuple[list[str], list[float]]], key: str, avoid: str) -> str | None:
        chars, weights = table.get(key, ([], []))
        options = [(c, w) for c, w in zip(chars, weights, strict=True) if c != avoid]
        if not options:
            return None
        return self.rng.choices([c for c, _ in options], weights=[w for _, w in options])[0]

    def homophone(self, ch: str) -> str | None:
        return self._pick(self.p.by_syllable, reading(ch), ch)

    def near(self, ch: str) -> str | None:
        ini, fin = split_syllable(reading(ch))
        options = []
        for a, b in NEAR_INITIALS:
            if ini in (a, b):
                options.append((b if ini == a else a) + fin)
        for a, b in NEAR_FINALS:
            if fin in (a, b):
                options.append(ini + (b if fin == a else a))
        self.rng.shuffle(options)
        for syl in options:
            got = self._pick(self.p.by_syllable, syl, ch)
            if got:
                return got
        return self.homophone(ch)

    def loose(self, ch: str) -> str | None:
        ini, fin = split_syllable(reading(ch))
        return self._pick(self.p.by_initial if self.rng.random() < 0.5 else self.p.by_final,
                          ini if ini else fin, ch)

    def char_error(self, ch: str) -> str:
        """A character misheard: homophone 70%, near-homophone 20%, sharing only initial or final 10%."""
        r = self.rng.random()
        got = self.homophone(ch) if r < 0.7 else self.near(ch) if r < 0.9 else self.loose(ch)
        return got or ch

    def mention(self, name: Name) -> str:
        """How a caller says it and Whisper base writes it: its form, then 1–3 errors."""
        rng = self.rng
        form = rng.random()
        place, suffix = name.place, name.suffix
        if form < 0.25:
            place, suffix = "", ""  # 恒达机械
        elif form < 0.35:
            place, suffix = "", "公司"  # 恒达机械公司
        elif form < 0.42:
            place = ""  # 恒达机械有限公司
        parts = [list(place), list(name.brand), list(name.trade), list(suffix)]
        errors = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        for _ in range(errors):
            # Where Whisper goes wrong: the trade name it cannot know, much more than the words it knows.
            weights = [1.0 if parts[0] else 0.0, 5.0, 2.0, 1.5 if parts[3] else 0.0]
            k = rng.choices(range(4), weights=weights)[0]
            chars = parts[k]
            if k == 3 and "".join(chars) in SUFFIX_SLIPS and rng.random() < 0.6:
                parts[3] = list(rng.choice(SUFFIX_SLIPS["".join(chars)]))
                continue
            if k == 0 and "".join(chars).startswith("青岛") and rng.random() < 0.6:
                parts[0] = list(rng.choice(CITY_SLIPS)) + chars[2:]
                continue
            i = rng.randrange(len(chars))
            # A dropped character (fast, unstressed syllables; a 2-character trade name is said with stress).
            if rng.random() < 0.1 and len("".join("".join(p) for p in parts)) > 4 and (k != 1 or len(chars) > 2):
                del chars[i]
            else:
                chars[i] = self.char_error(chars[i])
        return "".join("".join(p) for p in parts)


class Registry:
    """Generates unique plausible names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.brand_chars = list(dict.fromkeys(BRAND_CHARS))
        self.trades = list(TRADES)
        self.suffixes = [s for s, w in SUFFIX_WEIGHTS if w]
        self.suffix_w = [w for _, w in SUFFIX_WEIGHTS if w]

    def make(self) -> Name:
        rng = self.rng
        n = 2 if rng.random() < 0.7 else 3
        brand = "".join(rng.sample(self.brand_chars, n))
        trade = rng.choice(self.trades)
        suffix = rng.choices(self.suffixes, weights=self.suffix_w)[0]
        form = rng.random()
        if form < 0.7:
            place = "青岛"
        elif form < 0.8:
            place = "青岛市"
        elif form < 0.95:
            place = "青岛" + rng.choice(DISTRICT_SHORT)
        else:  # 恒达（青岛）机械有限公司
            return Name(f"{brand}（青岛）{trade}{suffix}", "", brand, trade, suffix)
        return Name(place + brand + trade + suffix, place, brand, trade, suffix)


def _near_duplicate(name: Name, g: Garbler) -> Name | None:
    i = g.rng.randrange(len(name.brand))
    other = g.homophone(name.brand[i])
    if not other:
        return None
    brand = name.brand[:i] + other + name.brand[i + 1:]
    return Name(name.full.replace(name.brand, brand, 1), name.place, brand, name.trade, name.suffix)


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(*, size: int, mentions: int, seed: int) -> None:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    p = pools()
    g = Garbler(rng, p)
    reg = Registry(rng)
    names: dict[str, Name] = {}
    near_dupes = 0
    while len(names) < size:
        name = reg.make()
        if name.full in names:
            continue
        names[name.full] = name
        if rng.random() < 0.03 and len(names) < size:
            dup = _near_duplicate(name, g)
            if dup and dup.full not in names:
                names[dup.full] = dup
                near_dupes += 1
    registered = list(names.values())
    registered_cores = {n.brand + n.trade for n in registered}
    unregistered: list[Name] = []
    while len(unregistered) < mentions:
        name = reg.make()
        if name.full not in names and name.brand + name.trade not in registered_cores:
            unregistered.append(name)
    gen_s = time.perf_counter() - t0
    print(f"registry: {len(registered)} names generated in {gen_s:.1f} s ({near_dupes} near-duplicates), "
          f"e.g. {'、'.join(n.full for n in registered[:3])}")

    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    resolver = Resolver((i, n.full, ()) for i, n in enumerate(registered))
    build_s = time.perf_counter() - t0
    gc.collect()
    rss1 = _rss()

    # Unregistered names that sound exactly like a registered core (toneless pinyin): no resolver can tell.
    sound_of = {"".join(reading(c) for c in n.brand + n.trade) for n in registered}
    same_sound = ["".join(reading(c) for c in n.brand + n.trade) in sound_of for n in unregistered]
    indistinct = sum(same_sound)

    truth = [rng.randrange(len(registered)) for _ in range(mentions)]
    heard_reg = [g.mention(registered[i]) for i in truth]
    heard_unreg = [g.mention(n) for n in unregistered]
    times: list[float] = []
    top1 = top3 = wrong = missed = 0
    examples: list[str] = []
    for i, heard in zip(truth, heard_reg, strict=True):
        t = time.perf_counter()
        found = resolver.resolve(heard, limit=3)
        times.append(time.perf_counter() - t)
        ids = [m.enterprise_id for m in found or []]
        top1 += bool(ids) and ids[0] == i
        top3 += i in ids
        if not ids:
            missed += 1
        elif ids[0] != i:
            wrong += 1
        if (not ids or ids[0] != i) and len(examples) < 8:
            examples.append(f"  {heard} → {found[0].name if found else '无匹配'}（应为 {registered[i].full}）")
    no_match = false_match = false_distinct = 0
    for heard, same in zip(heard_unreg, same_sound, strict=True):
        t = time.perf_counter()
        found = resolver.resolve(heard, limit=3)
        times.append(time.perf_counter() - t)
        if found:
            false_match += 1
            false_distinct += not same
            if len(examples) < 12:
                examples.append(f"  {heard} → {found[0].name}（未登记）")
        else:
            no_match += 1
    ms = [x * 1000 for x in times]
    print(f"mentions: {mentions} of registered names (garbled), {len(unregistered)} of unregistered names; "
          f"e.g. {'、'.join(heard_reg[:4])}")
    print(f"top-1 accuracy: {top1 / mentions:.1%}   top-3: {top3 / mentions:.1%}   "
          f"(wrong first: {wrong}, no match: {missed})")
    distinct = len(unregistered) - indistinct
    print(f"no match on unregistered: {no_match / len(unregistered):.1%}   (matched: {false_match}; "
          f"{indistinct} of the {len(unregistered)} unregistered names sound exactly like a registered one's "
          f"trade name + trade, toneless; on the other {distinct}: "
          f"{(distinct - false_distinct) / max(distinct, 1):.1%} no match)")
    print(f"lookup: p50 {statistics.median(ms):.2f} ms   p95 {_pct(ms, 0.95):.2f} ms   max {max(ms):.1f} ms")
    print(f"build: {build_s:.1f} s for {len(resolver)} names; index arrays {resolver.nbytes() / 2**20:.1f} MiB, "
          f"process RSS +{(rss1 - rss0) / 2**20:.0f} MiB")
    if examples:
        print("misses:")
        print("\n".join(examples))
