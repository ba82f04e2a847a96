"""Which registered enterprise a heard (ASR-garbled) or typed name is, at registry scale (350,000 names).

Whisper hears 青岛恒达机械有限公司 as 京岛恒大机械有线公司, or the caller says only 恒达机械. What tells
enterprises apart is the name's distinctive core — the trade name and the trade (恒达 + 机械) — not 青岛,
the district or 有限公司, which most names share. So:

1. Every registered name and alias is cut into place / core / suffix, the core into brand + trade (TRADES).
2. An inverted index maps keys of the core to the names holding them: toneless pinyin syllable bigrams
   (adjacent and one apart) with the usual confusions folded together (zh→z, ch→c, sh→s, l→n, r→n, h→f,
   ang→an, eng→en, ing→in, iang→ian, uang→uan), and character bigrams. The index is a sorted key array
   and one postings array (numpy, CSR): a few dozen MB for 350,000 names, no per-key Python objects.
3. A heard name is cut the same way, but by sound (有线工资 is a suffix, 京岛 is 青岛); its keys, weighted by
   rarity (keys held by very many names are skipped), pick at most a few hundred candidates, and those are
   rescored with a weighted edit distance by sound and character.
4. A candidate is only accepted when its brand is found in what was heard at homophone level and the whole
   core is close: sharing 青岛, the trade and 有限公司 is not enough. Nothing close enough: no match (None)
   — pulling an unregistered company onto a registered one is far worse than finding none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pypinyin import Style, pinyin

from app.cases.extract import DISTRICT_ALIASES, DISTRICTS, TRADES
from asr.lexicon import split_syllable

CITY_FORMS = ("青岛市", "青岛")
SUFFIXES = ("股份有限公司", "有限责任公司", "集团有限公司", "集团股份有限公司", "有限公司", "集团", "分公司",
            "总公司", "公司", "分厂", "工厂", "厂", "商行", "经营部", "门市部", "中心", "店")
_PLACES = tuple(sorted({*DISTRICTS, *DISTRICT_ALIASES}, key=len, reverse=True))
# Trade words of real registries besides those extraction knows (TRADES): what follows the trade name.
MORE_TRADES = ("餐饮管理", "企业管理", "管理咨询", "咨询", "服务", "销售", "设备", "工贸", "技术", "发展", "投资",
               "开发", "制造", "加工", "制品", "材料", "用品", "工艺", "器材", "商务", "供应链", "网络", "软件",
               "数码", "能源", "环境", "园林", "绿化", "广告", "文化", "旅游", "健康", "医疗器械", "生物", "电子商务",
               "机电", "设计", "安装", "装修", "汽车销售", "汽车服务", "国际物流", "管理", "建筑工程", "装饰工程",
               "市政工程", "建设工程", "服饰", "工贸", "控股", "置地")
_TRADES = tuple(sorted({*TRADES, *MORE_TRADES}, key=len, reverse=True))
_PUNCT = str.maketrans("", "", " \t\u3000（）()【】[]「」《》·.,，、-—_")

# Folding: the confusions of southern and telephone speech (asr/lexicon.py) mapped to one key.
_FOLD_INITIAL = {"zh": "z", "ch": "c", "sh": "s", "l": "n", "r": "n", "h": "f"}
_FOLD_FINAL = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan", "ong": "on"}

_DISTRICT_NAMES = ("", *DISTRICTS)
MAX_CANDIDATES = 200  # gathered through the index, then rescored
MAX_DF_SHARE = 0.02  # a key held by more than this share of all names is too common to pick candidates
ACCEPT = 0.78  # least score of an answer
LOOSE_ACCEPT, LOOSE_BRAND_SLACK = 0.5, 0.5  # candidates to check against the audio (resolve(loose=True))
SUFFIX_MISMATCH = 0.06  # a suffix said that differs from the registered one: weak evidence (people shorten them)


# --- sound ----------------------------------------------------------------------------------------------


def fold(syllable: str) -> str:
    ini, fin = split_syllable(syllable)
    return _FOLD_INITIAL.get(ini, ini) + _FOLD_FINAL.get(fin, fin)


@lru_cache(maxsize=200_000)
def _readings(ch: str) -> tuple[str, ...]:
    if not ("\u3400" <= ch <= "\u9fff"):
        return (ch.lower(),)
    return tuple(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


@lru_cache(maxsize=200_000)
def _folded(ch: str) -> tuple[str, ...]:
    """The folded readings used as index keys: the first two readings (a third is rarely meant)."""
    return tuple(dict.fromkeys(fold(r) for r in _readings(ch)[:2]))


@lru_cache(maxsize=200_000)
def _folded_all(ch: str) -> tuple[str, ...]:
    return tuple({fold(r) for r in _readings(ch)})


@lru_cache(maxsize=1_000_000)
def char_cost(a: str, b: str) -> float:
    """0 same character; 0.1 same toneless (main) reading; 0.25 the same after folding the usual confusions;
    0.3/0.4 the same through a rarer reading of one of them; 0.6 same initial or final; 1 different."""
    if a == b:
        return 0.0
    ra, rb = _readings(a), _readings(b)
    if ra[0] == rb[0]:
        return 0.1
    if fold(ra[0]) == fold(rb[0]):
        return 0.25
    if set(ra) & set(rb):
        return 0.3
    if {fold(x) for x in ra} & {fold(x) for x in rb}:
        return 0.4
    (xi, xf), (yi, yf) = split_syllable(ra[0]), split_syllable(rb[0])
    if (xi and xi == yi) or (xf and xf == yf):
        return 0.6
    return 1.0


def distance(a: str, b: str) -> float:
    """Weighted edit distance (char_cost for substitutions, 1 for a dropped or added character)."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + char_cost(ca, cb)))
        prev = cur
    return prev[-1]


def infix_distance(needle: str, hay: str) -> float:
    """The cost of finding ``needle`` anywhere in ``hay`` (free start and end in ``hay``)."""
    prev = [0.0] * (len(hay) + 1)
    for i, cn in enumerate(needle, 1):
        cur = [float(i)]
        for j, ch in enumerate(hay, 1):
            cur.append(min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + char_cost(cn, ch)))
        prev = cur
    return min(prev)


# --- names ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """A name cut into what people may leave out (place, suffix) and what tells it apart (brand + trade)."""

    place: str
    core: str
    suffix: str
    brand_len: int  # the core's first brand_len characters are the trade name (恒达), the rest the trade

    @property
    def brand(self) -> str:
        return self.core[:self.brand_len]


def clean(name: str) -> str:
    return name.translate(_PUNCT).strip()


_PLACE_IN_BRACKETS = re.compile(r"[（(](?:中国|山东|青岛市?|" + "|".join(_PLACES) + r")[）)]")


@lru_cache(maxsize=1)
def _prefixes() -> tuple[str, ...]:
    """Places a name may start with, longest first: 青岛市北 (青岛 + 市北) before 青岛市."""
    forms = {c + p for c in (*CITY_FORMS, "") for p in (*_PLACES, "")} - {""}
    return tuple(sorted(forms, key=len, reverse=True))


def parts(name: str) -> Parts:
    """Cut a registered (correctly written) name: 青岛城阳恒达机械有限公司 → 青岛城阳 | 恒达机械 | 有限公司;
    恒达（青岛）机械有限公司 → （青岛） | 恒达机械 | 有限公司."""
    bracketed = _PLACE_IN_BRACKETS.search(name)
    name = clean(_PLACE_IN_BRACKETS.sub("", name))
    suffix = next((s for s in SUFFIXES if name.endswith(s) and len(name) > len(s) + 1), "")
    rest = name[:len(name) - len(suffix)]
    place = bracketed.group(0) if bracketed else ""
    for p in _prefixes():
        if rest.startswith(p) and len(rest) > len(p) + 1:
            place, rest = place + p, rest[len(p):]
            break
    brand = rest  # the trade name: what is left once the trade words are taken off (机械制造 → 机械 + 制造)
    while trade := next((t for t in _TRADES if brand.endswith(t) and len(brand) >= len(t) + 2), ""):
        brand = brand[:-len(trade)]
    return Parts(place, rest, suffix, len(brand))


_SPOKEN_SUFFIXES = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团", "分公司", "总公司", "公司")


def _strip_suffix(text: str) -> tuple[str, str]:
    """The heard name without what sounds like its suffix (有线公司, 有限工资, 有限司, 有线责任工司): the
    longest suffix form it sounds like, at most about one syllable off."""
    best: tuple[int, float, int, str] | None = None
    for s in _SPOKEN_SUFFIXES:
        n = len(s)
        for size in (n - 1, n, n + 1):
            if size < 2 or len(text) - size < 2:
                continue
            tail = text[-size:]
            if distance(tail[:2], s[:2]) > (0.6 if n >= 4 else 0.3):  # known by how it starts: 有限…, 集团…
                continue
            cost = distance(tail, s)
            if cost <= (0.3 if n <= 2 else 0.26 * n):
                key = (-n, cost / n, -size)
                if best is None or key[:3] < best[:3]:
                    best = (*key, s)
    if best is not None:
        return text[:best[2]], str(best[3])
    for s in SUFFIXES:
        if text.endswith(s) and len(text) >= len(s) + 2:
            return text[:-len(s)], s
    return text, ""


def _like_city(first: str, second: str) -> bool:
    """Two syllables like qing dao: 京岛, 清岛, 青到."""
    return "dao" in _folded_all(second) and any(f.endswith("in") for f in _folded_all(first))


def district_in(place: str) -> str | None:
    """The Qingdao district a name's place part names (青岛城阳 → 城阳区), if any."""
    for p in _PLACES:
        if p in place:
            return DISTRICT_ALIASES.get(p, p)
    return None


@dataclass(frozen=True)
class Heard:
    variants: list[str]  # the cores it may have, most cut first
    district: str | None  # a district said in it (青岛城阳…, 劳山…)
    suffix_kind: str = ""  # the kind of suffix said (suffix_kind), '' when none or a plain 公司


_SUFFIX_KINDS = ("", "股份", "责任", "集团", "分", "有限", "厂")


def suffix_kind(suffix: str) -> str:
    """股份 / 责任 / 集团 / 分 / 有限 / 厂, or '' for none or a plain 公司 (people say it for any)."""
    for kind in ("股份", "责任", "集团"):
        if kind in suffix:
            return kind
    if suffix.endswith("分公司"):
        return "分"
    if "有限" in suffix:
        return "有限"
    return "厂" if suffix.endswith("厂") else ""


def heard_parts(heard: str) -> Heard:
    """The cores a heard name may have, most cut first: 京岛恒大机械有线工资 → [恒大机械, 京岛恒大机械].
    The place is cut by sound too (京岛, 劳山), so the uncut form is kept as a second reading."""
    text, suffix = _strip_suffix(clean(heard))
    core = text
    district = None
    for p in _prefixes():
        if core.startswith(p) and len(core) > len(p) + 1:
            core, district = core[len(p):], district_in(p)
            break
    else:
        if len(core) >= 4 and _like_city(core[0], core[1]):
            core = core[2:]
            if core.startswith("市") and len(core) > 3:
                core = core[1:]
        for p in _PLACES:
            n = len(p)
            if len(core) >= n + 2 and all(set(_folded_all(a)) & set(_folded_all(b))
                                          for a, b in zip(core, p, strict=False)):
                core, district = core[n:], DISTRICT_ALIASES.get(p, p)
                break
    return Heard(list(dict.fromkeys((core, text))), district, suffix_kind(suffix))


# --- keys -----------------------------------------------------------------------------------------------

_SYL_IDS: dict[str, int] = {}


def _syl(s: str) -> int:
    got = _SYL_IDS.get(s)
    if got is None:
        got = _SYL_IDS[s] = len(_SYL_IDS) + 1
    return got


def _keys(core: str, *, query: bool = False) -> set[int]:
    """Index keys of a core: folded syllable bigrams (adjacent: kind 1; one apart: kind 2) and character
    bigrams (kind 3), as 64-bit integers."""
    sylls = [[_syl(f) for f in (_folded_all(c) if query else _folded(c))][:3] for c in core]
    keys: set[int] = set()
    for i in range(len(core) - 1):
        for a in sylls[i]:
            for b in sylls[i + 1]:
                keys.add((1 << 60) | (a << 20) | b)
        if i + 2 < len(core):
            for a in sylls[i]:
                for b in sylls[i + 2]:
                    keys.add((2 << 60) | (a << 20) | b)
        keys.add((3 << 60) | (ord(core[i]) << 21) | ord(core[i + 1]))
    if len(core) == 1:
        keys.update((1 << 60) | (a << 20) for a in sylls[0])
    return keys


# --- the resolver ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    enterprise_id: int
    name: str  # canonical
    matched: str  # the registered name or alias that matched
    score: float  # in [0, 1]


class Resolver:
    """Resolve heard names against (id, name, aliases) through an inverted index; see the module doc."""

    def __init__(self, entries: Iterable[tuple[int, str, Sequence[str]]]) -> None:
        ids: list[int] = []
        canon: list[str] = []
        forms: list[str] = []
        cores: list[str] = []
        brand_lens: list[int] = []
        districts: list[int] = []
        kinds: list[int] = []
        key_chunks: list[np.ndarray] = []
        doc_chunks: list[np.ndarray] = []
        buf_keys: list[int] = []
        buf_docs: list[int] = []
        self.enterprises = 0
        for enterprise_id, name, aliases in entries:
            self.enterprises += 1
            for form in dict.fromkeys((name, *aliases)):
                p = parts(form)
                if not p.core:
                    continue
                doc = len(forms)
                ids.append(enterprise_id)
                canon.append(name)
                forms.append(form)
                cores.append(p.core)
                brand_lens.append(p.brand_len)
                d = district_in(p.place)
                districts.append(_DISTRICT_NAMES.index(d) if d else 0)
                kinds.append(_SUFFIX_KINDS.index(suffix_kind(p.suffix)))
                ks = _keys(p.core)
                buf_keys.extend(ks)
                buf_docs.extend([doc] * len(ks))
            if len(buf_keys) >= 1_000_000:
                key_chunks.append(np.array(buf_keys, dtype=np.uint64))
                doc_chunks.append(np.array(buf_docs, dtype=np.int32))
                buf_keys, buf_docs = [], []
        key_chunks.append(np.array(buf_keys, dtype=np.uint64))
        doc_chunks.append(np.array(buf_docs, dtype=np.int32))
        keys = np.concatenate(key_chunks)
        docs = np.concatenate(doc_chunks)
        order = np.argsort(keys, kind="stable")
        keys, self._postings = keys[order], docs[order]
        self._keys, starts = np.unique(keys, return_index=True)
        self._offsets = np.append(starts, len(keys)).astype(np.int64)
        self._ids = np.array(ids, dtype=np.int64)
        self._canon = canon
        self._forms = forms
        self._cores = cores
        self._brand_lens = np.array(brand_lens, dtype=np.int8)
        self._districts = np.array(districts, dtype=np.int8)
        self._kinds = np.array(kinds, dtype=np.int8)
        self._max_df = max(50, int(MAX_DF_SHARE * max(len(forms), 1)))

    def __len__(self) -> int:
        return len(self._forms)

    def nbytes(self) -> int:
        """Memory of the index arrays (the name strings not counted)."""
        return int(self._keys.nbytes + self._postings.nbytes + self._offsets.nbytes + self._ids.nbytes
                   + self._brand_lens.nbytes)

    def _gather(self, core: str) -> np.ndarray:
        keys = np.array(sorted(_keys(core, query=True)), dtype=np.uint64)
        if not len(keys) or not len(self._keys):
            return np.empty(0, dtype=np.int32)
        pos = np.searchsorted(self._keys, keys)
        inside = pos < len(self._keys)
        pos, keys = pos[inside], keys[inside]
        idx = pos[self._keys[pos] == keys]
        lists, weights = [], []
        for k in idx:
            start, end = self._offsets[k], self._offsets[k + 1]
            df = int(end - start)
            if df > self._max_df:
                continue
            lists.append(self._postings[start:end])
            weights.append(np.full(df, math.log(1 + len(self._forms) / df), dtype=np.float32))
        if not lists:
            return np.empty(0, dtype=np.int32)
        docs = np.concatenate(lists)
        w = np.concatenate(weights)
        uniq, inverse = np.unique(docs, return_inverse=True)
        score = np.bincount(inverse, weights=w)
        if len(uniq) > MAX_CANDIDATES:
            top = np.argpartition(-score, MAX_CANDIDATES)[:MAX_CANDIDATES]
            uniq = uniq[top]
        return uniq.astype(np.int32)

    def resolve(self, heard: str, *, limit: int = 5, loose: bool = False) -> list[Match] | None:
        """Registered enterprises that ``heard`` may be, best first, each with a score in [0, 1]; None
        when none is close enough. ``loose``: candidates, not answers, for a caller that checks them another
        way (against the audio where the name was said): one brand character may share only its initial or
        final with what was heard, and the least score is lower."""
        accept, slack = (LOOSE_ACCEPT, LOOSE_BRAND_SLACK) if loose else (ACCEPT, 0.0)
        heard = clean(heard)
        if len(heard) < 2:
            return None
        said = heard_parts(heard)
        variants = [v for v in said.variants if len(v) >= 2]
        if not variants:
            return None
        best: dict[int, tuple[float, int]] = {}
        sounds = {f for ch in variants[-1] for f in _folded_all(ch)} | set(variants[-1])
        for doc in self._gather(variants[-1]).tolist():
            if not self._may_match(doc, sounds, slack):
                continue
            score = max(self._score(v, doc, slack) for v in variants)
            if said.district and score:  # a district said that the registered name contradicts
                has = _DISTRICT_NAMES[self._districts[doc]] if self._districts[doc] else None
                score -= 0.15 if has and has != said.district else 0.05 if not has else 0.0
            kind = _SUFFIX_KINDS[self._kinds[doc]]
            if said.suffix_kind and kind and kind != said.suffix_kind and score:  # 股份有限公司 said, 有限公司 on file
                score -= SUFFIX_MISMATCH
            if score < accept:
                continue
            eid = int(self._ids[doc])
            if eid not in best or score > best[eid][0]:
                best[eid] = (score, doc)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[: max(limit, 1) * 3]
        out = []
        for eid, (score, doc) in ranked:
            # Between equals, the whole name as heard decides (district, 有限公司 …), a little.
            form = self._forms[doc]
            whole = distance(heard, form) / max(len(heard), len(form))
            final = max(0.0, min(1.0, score - 0.05 * whole))
            out.append(Match(eid, self._canon[doc], form, round(final, 3)))
        out.sort(key=lambda m: -m.score)
        return out[:limit]

    def best(self, heard: str) -> Match | None:
        found = self.resolve(heard, limit=1)
        return found[0] if found else None

    def _may_match(self, doc: int, sounds: set[str], slack: float = 0.0) -> bool:
        """A quick look before the edit distances: how many brand characters have nothing like them (by
        folded sound) in what was heard — each of those costs at least 0.6."""
        cand = self._cores[doc]
        blen = int(self._brand_lens[doc])
        missing = sum(1 for ch in cand[:blen] if ch not in sounds and sounds.isdisjoint(_folded_all(ch)))
        return missing * 0.6 <= brand_budget(blen) + slack

    def _score(self, core: str, doc: int, slack: float = 0.0) -> float:
        """How well a heard core matches a registered one: 0 when the brand is not found in it at homophone
        level (sharing 青岛, the trade and 有限公司 is not enough), or when it names another trade."""
        cand = self._cores[doc]
        blen = int(self._brand_lens[doc])
        brand = cand[:blen]
        b = infix_distance(brand, core)
        if b > brand_budget(blen) + slack:
            return 0.0
        trade = cand[blen:]
        said = _trade_of(core)
        if (trade and said and said not in trade and trade not in said
                and distance(said, trade) > 0.15 * len(trade)):
            return 0.0  # 天旋木业 is not 天旋物业: a trade word heard right is rarely another trade word
        short = 0.0
        if said and trade != said and trade.startswith(said):  # 鑫达机械 said for 鑫达机械制造
            cand, short = cand[:blen] + said, 0.03
        if slack:  # candidates: the stretch of what was heard that lines up with the name, brand counted once
            n = len(cand)
            d = min(distance(core[k:k + n], cand) for k in range(max(1, len(core) - n + 1))) / n
            return max(0.0, 1.0 - d - 0.5 * b / blen)
        d = distance(core, cand) / max(len(core), len(cand))
        return max(0.0, 1.0 - d - b / blen - short)


def brand_budget(length: int) -> float:
    """The most a brand may cost to be found in what was heard: two characters up to a near-homophone and a
    homophone (恒达 ~ 痕大), never a character that only shares its initial or final; three characters up to
    one dropped or wholly misheard."""
    return 0.35 if length <= 2 else 1.0 if length == 3 else 0.3 * length


@lru_cache(maxsize=100_000)
def _trade_of(core: str) -> str:
    return next((t for t in _TRADES if core.endswith(t) and len(core) >= len(t) + 1), "")
