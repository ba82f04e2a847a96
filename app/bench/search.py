"""`hotline bench search`: generate N cases of hotline calls, bulk load them, and time a mix of searches.

The text is generated from a vocabulary of 12351 hotline calls (Qingdao districts, enterprise names,
occupations, categories, amounts, rare terms) as clauses ending in punctuation. jieba never joins words
across punctuation, so a segment's tokens are the concatenation of its clauses' tokens: each distinct
clause is tokenized once (cached) by the same ``index_tokens`` the application uses, and the rows go in
with executemany (SQLite) or COPY (PostgreSQL), never one ORM object at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.cases.extract import DISTRICTS
from app.cases.models import Case, CaseStatus
from app.db import Database
from app.recordings.models import Recording
from app.search import service as search
from app.search.models import SearchFilters
from app.search.tokenize import index_tokens
from app.transcripts.models import Segment, Transcript

CHUNK = 2000  # cases per transaction while loading

NAMES = ("海丰", "宏远", "金海", "瑞德", "华泰", "鑫源", "恒通", "远航", "东方", "利民", "永兴", "新润", "佳美",
         "顺达", "盛世", "百川", "中联", "德信", "福瑞", "泰和", "国信", "亿达", "鲁东", "诚信", "万家", "天成",
         "胶东", "蓝海", "明德", "正阳", "安泰", "兴隆", "丰源", "凯胜", "博远", "润泽", "鸿运", "嘉禾", "同创",
         "金诺", "祥和", "海川", "银河", "大成", "世纪", "启航", "星海", "晨光", "众诚", "鼎盛")
TRADES = ("水产", "汽车配件", "建筑工程", "物流", "电子科技", "纺织", "食品", "机械制造", "物业管理", "餐饮管理",
          "家政服务", "劳务派遣", "装饰工程", "塑料制品", "橡胶", "钢结构", "酒店管理", "商贸", "医药", "印刷",
          "服装", "船舶修造", "冷链仓储", "网络科技", "保安服务")
SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司", "加工厂")
OCCUPATIONS = ("叉车工", "电焊工", "服务员", "保洁员", "外卖骑手", "建筑工人", "货车司机", "厨师", "仓库管理员",
               "装卸工", "保安", "车间操作工", "快递员", "水电工", "钢筋工", "木工", "缝纫工", "收银员", "销售",
               "育婴师")
RARE = ("尘肺病", "农民工工资专用账户", "欠薪保证金", "工资支付令", "竞业限制", "劳动能力鉴定", "集体合同",
        "停工留薪期", "职业病鉴定", "高温津贴")
STAFF = tuple(f"agent{i:02d}" for i in range(1, 21))
UNITS = tuple(f"{d}总工会" for d in DISTRICTS)
ENTERPRISE_TYPES = ("民营", "国有", "外资", "个体", "集体")

AGENT = (
    "您好，这里是12351职工服务热线，请问有什么可以帮您？", "请问您在哪个单位上班？", "公司全称是什么？",
    "拖欠了多长时间？", "一共涉及多少人？", "您和公司签订劳动合同了吗？", "公司给您缴纳社保了吗？",
    "您先别着急，慢慢说。", "我们会把您反映的情况转交相关部门处理，请保持电话畅通。", "请问您贵姓？",
    "好的，我记录一下。", "您有没有工资条或者考勤记录？", "建议您保留好相关证据。",
)
CALLER_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "欠薪": ("公司拖欠我们{months}个月工资了。", "老板说资金周转不开，一直拖着不发工资。", "一共欠了{amount}元。",
             "加班费也一直没给。", "我们去讨薪好几次了，都找不到老板。"),
    "劳动合同": ("公司突然说要辞退我，也不给经济补偿。", "干了{years}年了一直没签劳动合同。", "试用期延长了两次。",
                 "他们让我自己写辞职信，我不同意。"),
    "社会保险": ("公司一直没给我们交社保。", "养老保险断缴了{months}个月。", "想问一下社保能不能补缴。",
                 "医疗保险卡用不了，公司说没交。"),
    "工伤": ("上个月在车间干活把手弄伤了。", "搬货的时候把腰扭伤了，公司不给申请工伤认定。",
             "医药费花了{amount}元，公司不给报。", "骨折以后在家休息，工资也停了。"),
    "工时休假": ("每天干十二个小时，周末也不让休息。", "加班从来没有调休。", "年假一天都没有休过。",
                 "倒班倒得身体吃不消了。"),
    "劳务派遣": ("我是派遣公司派过去的，用工单位把我退回了。", "派遣公司和用工单位互相推。",
                 "劳务派遣的工资比正式工低一半。"),
    "女职工权益": ("我怀孕了，公司要跟我解除合同。", "产假只给了一个月。", "哺乳期还让上夜班。"),
    "新就业形态": ("我在平台跑外卖，被扣了{amount}元。", "送餐超时被罚款，平台说不算劳动关系。",
                   "配送站点说关就关了，押金也不退。"),
    "法律咨询": ("想咨询一下法律规定。", "想问一下试用期最长可以约定多久。", "辞职需要提前多少天通知？"),
}
CALLER = ("我是{district}{enterprise}的{occupation}。", "我们那里一共{workers}个人。", "谢谢你们。",
          "麻烦你们帮帮我们。", "就是这个情况。", "对，是这样的。")
CATEGORIES = tuple(CALLER_BY_CATEGORY)


@lru_cache(maxsize=400_000)
def clause_tokens(clause: str) -> tuple[str, ...]:
    return tuple(index_tokens(clause))


@dataclass
class Vocab:
    """What the generated cases hold, so the queries can ask for words that occur (or rarely)."""

    enterprises: list[str] = field(default_factory=list)
    first_day: date = date(2024, 1, 1)
    days: int = 700


def enterprise_names(rng: random.Random) -> list[str]:
    names = [f"青岛{n}{t}{s}" for n in NAMES for t in TRADES for s in SUFFIXES]
    rng.shuffle(names)
    return names


@dataclass
class Rows:
    recordings: list[dict[str, Any]] = field(default_factory=list)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    segments: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    docs: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    def __init__(self, *, dialect: str, cases: int, segments_per_case: int, seed: int = 12351) -> None:
        self.rng = random.Random(seed)
        self.cases = cases
        self.dialect = dialect
        self.per_case = segments_per_case
        self.vocab = Vocab(enterprises=enterprise_names(self.rng))
        self.segment_id = 0
        self.entry_id = 0

    def _fill(self, template: str, slots: dict[str, str]) -> str:
        return template.format(**slots) if "{" in template else template

    def _turns(self, category: str, slots: dict[str, str]) -> list[tuple[str, list[str]]]:
        rng = self.rng
        own = CALLER_BY_CATEGORY[category]
        turns: list[tuple[str, list[str]]] = [("agent", [AGENT[0]]), ("caller", [CALLER[0], rng.choice(own)])]
        while len(turns) < self.per_case:
            if len(turns) % 2 == 0:
                turns.append(("agent", [rng.choice(AGENT[1:])]))
            else:
                pool = own if rng.random() < 0.6 else CALLER
                clauses = [rng.choice(pool)] + ([rng.choice(own)] if rng.random() < 0.3 else [])
                if rng.random() < 0.003:
                    clauses.append(f"还有{rng.choice(RARE)}的问题想咨询一下。")
                turns.append(("caller", clauses))
        return [(who, [self._fill(c, slots) for c in clauses]) for who, clauses in turns[: self.per_case]]

    def case(self, case_id: int, rows: Rows) -> None:
        rng, vocab = self.rng, self.vocab
        category = rng.choice(CATEGORIES)
        enterprise = vocab.enterprises[rng.randrange(len(vocab.enterprises))]
        district = rng.choice(DISTRICTS)
        occupation = rng.choice(OCCUPATIONS)
        workers = rng.choice((1, 1, 1, 2, 3, 5, 8, 12, 15, 30))
        amount = rng.randrange(2, 400) * 500
        slots = {"district": district, "enterprise": enterprise, "occupation": occupation,
                 "workers": str(workers), "amount": str(amount), "months": str(rng.randint(1, 12)),
                 "years": str(rng.randint(1, 10))}
        created = datetime.combine(vocab.first_day, datetime.min.time(), tzinfo=UTC) + timedelta(  # filing order
            seconds=int((case_id - 1 + rng.random()) * vocab.days * 86400 / self.cases))
        status = rng.choices(list(CaseStatus), weights=(10, 10, 20, 10, 50))[0].value
        turns = self._turns(category, slots)
        duration = 5.0 * len(turns)
        rows.recordings.append({
            "id": case_id, "sha256": hashlib.sha256(f"bench{case_id}".encode()).hexdigest(),
            "path": f"bench/{case_id}.wav", "original_name": f"{case_id}.wav", "size_bytes": int(duration * 16000),
            "format": "wav", "codec": "pcm_mulaw", "sample_rate": 8000, "channels": 2, "duration": duration,
            "layout": "caller-left", "channel": "来电", "status": "done", "uploaded_by": "bench",
            "created_at": created,
        })
        rows.transcripts.append({
            "id": case_id, "recording_id": case_id, "kind": "final", "engine": "bench", "model": "-",
            "language": "zh", "duration": duration, "processing_s": 0.0, "created_at": created,
        })
        said: list[str] = []
        caller_text: list[str] = []
        for idx, (speaker, clauses) in enumerate(turns):
            self.segment_id += 1
            self.entry_id += 1
            text = "".join(clauses)
            tokens = [t for c in clauses for t in clause_tokens(c)]
            start = 5.0 * idx + round(rng.random(), 2)
            rows.segments.append((self.segment_id, case_id, idx, start, start + 4.0, speaker, text))
            rows.entries.append((self.entry_id, case_id, self.segment_id, start, text, " ".join(tokens)))
            said += tokens
            if speaker == "caller":
                caller_text.append(text)
        assignee = None if status == CaseStatus.accepted else rng.choice(STAFF)
        case = Case(
            id=case_id, case_no=f"12351-{created.year}-{case_id:06d}", status=status, channel="来电",
            recording_id=case_id, transcript_id=case_id, category=category, category_confidence=0.8,
            category_evidence=[], enterprise=enterprise, district=district, summary="".join(caller_text)[:200],
            created_by=rng.choice(STAFF), created_at=created, updated_at=created, occupation=occupation,
            gender=rng.choice(("男", "女")), age_bracket=rng.choice(("18-25", "26-35", "36-45", "46-60")),
            enterprise_type=rng.choice(ENTERPRISE_TYPES), arrears_type="工资" if category == "欠薪" else None,
            workers=workers, amount=amount, group_case=workers >= 10, extracted={}, suggested={},
            difficulty="一般", unit=None if assignee is None else rng.choice(UNITS), assignee=assignee,
            accepted_at=created, escalated=False,
        )
        rows.cases.append({c.key: getattr(case, c.key) for c in Case.__table__.columns  # the same keys each row
                           if getattr(case, c.key) is not None or c.nullable})
        fields = search.fields_entry(case)
        self.entry_id += 1
        rows.entries.append((self.entry_id, case_id, None, None, fields.text, " ".join(fields.tokens)))
        rows.docs.append(search.doc_params(dialect=self.dialect, case_id=case_id, fields=fields.tokens, said=said))


SEGMENT_COLUMNS = ("id", "transcript_id", "idx", "start", "end", "speaker", "text")
ENTRY_COLUMNS = ("id", "case_id", "segment_id", "start", "text", "tokens")


def _copy(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    raw: Any = conn.connection.driver_connection  # psycopg.Connection
    cols = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _load(conn: sa.Connection, rows: Rows, dialect: str) -> None:
    conn.execute(sa.insert(Recording), rows.recordings)
    conn.execute(sa.insert(Transcript), rows.transcripts)
    conn.execute(sa.insert(Case), rows.cases)
    if dialect == "postgresql":
        _copy(conn, "segments", SEGMENT_COLUMNS, rows.segments)
        _copy(conn, "search_entries", ENTRY_COLUMNS, rows.entries)
        _copy(conn, "search_docs", ("case_id", "fields", "said", "tsv"),
              [(d["case_id"], d["fields"], d["said"], d["tsv"]) for d in rows.docs])
    else:
        conn.execute(sa.insert(Segment), [dict(zip(SEGMENT_COLUMNS, r, strict=True)) for r in rows.segments])
        raw: Any = conn.connection.driver_connection  # sqlite3: plain executemany, no per-row type processing
        raw.executemany("INSERT INTO search_entries (id, case_id, segment_id, start, text, tokens)"
                        " VALUES (?, ?, ?, ?, ?, ?)", rows.entries)
        conn.execute(search.doc_insert(dialect), rows.docs)


def generate(database: Database, *, cases: int, segments_per_case: int, progress: bool = True) -> Generator:
    gen = Generator(dialect=database.dialect, cases=cases, segments_per_case=segments_per_case)
    pg = database.dialect == "postgresql"
    if pg:  # bulk-load practice: build the GIN index once at the end rather than row by row
        with database.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_search_docs_tsv"))
    for first in range(1, cases + 1, CHUNK):
        rows = Rows()
        for case_id in range(first, min(first + CHUNK, cases + 1)):
            gen.case(case_id, rows)
        with database.engine.begin() as conn:
            _load(conn, rows, database.dialect)
        if progress and (first - 1) % (CHUNK * 10) == 0:
            print(f"  {database.dialect}: {first - 1 + len(rows.cases):>7} cases loaded", flush=True)
    with database.engine.begin() as conn:
        if pg:
            conn.execute(sa.text("CREATE INDEX ix_search_docs_tsv ON search_docs USING gin (tsv)"))
            for table in ("recordings", "transcripts", "cases", "segments", "search_entries"):  # ids were given
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                     f" (SELECT max(id) FROM {table}))"))
        conn.execute(sa.text("ANALYZE"))
    return gen


@dataclass(frozen=True)
class Query:
    kind: str
    q: str
    filters: SearchFilters = SearchFilters()
    offset: int = 0


def queries(vocab: Vocab) -> list[Query]:
    ent = vocab.enterprises[0]  # about cases / 5000 cases each
    short = ent.removeprefix("青岛")[:2]  # its brand name alone, shared by 100 enterprise names
    mid = vocab.first_day + timedelta(days=vocab.days // 2)
    month = SearchFilters(date_from=mid, date_to=mid + timedelta(days=30))
    return [
        Query("common word", "工资"), Query("common word", "公司"), Query("common word", "社保"),
        Query("medium word", "叉车工"), Query("medium word", "崂山区"), Query("medium word", "工伤认定"),
        Query("rare word", "尘肺病"), Query("rare word", "欠薪保证金"), Query("rare word", ent),
        Query("two words", "拖欠 工资"), Query("two words", f"{short} 辞退"), Query("two words", "外卖骑手 罚款"),
        Query("two words", "叉车工 崂山区"),
        Query("words+filters", "工资", SearchFilters(category="欠薪", district="黄岛区")),
        Query("words+filters", "社保", month), Query("words+filters", "工伤", SearchFilters(status="办理")),
        Query("words+filters", "加班费", SearchFilters(staff="agent07")),
        Query("words+filters", "辞退", SearchFilters(enterprise=short)),
        Query("filters only", "", SearchFilters(district="城阳区", status="受理")),
        Query("filters only", "", SearchFilters(enterprise=short)),
        Query("pagination", "工资", offset=100), Query("pagination", "公司", offset=1000),
        Query("fts syntax", '"工资 OR (NEAR 公司*'),
    ]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


@dataclass
class Timing:
    kind: str
    ms: list[float] = field(default_factory=list)
    totals: set[int] = field(default_factory=set)


def measure(database: Database, mix: list[Query], rounds: int) -> list[Timing]:
    for query in mix:  # warm the caches once, as a running server has
        with database.session() as db:
            search.search(db=db, q=query.q, filters=query.filters, offset=query.offset)
    timings: dict[str, Timing] = {}
    for _ in range(rounds):
        for query in mix:
            began = time.perf_counter()
            with database.session() as db:
                result = search.search(db=db, q=query.q, filters=query.filters, offset=query.offset)
            t = timings.setdefault(query.kind, Timing(query.kind))
            t.ms.append((time.perf_counter() - began) * 1000)
            t.totals.add(result.total)
    return list(timings.values())


def _report(backend: str, cases: int, segments: int, gen_s: float, timings: list[Timing]) -> None:
    every = [ms for t in timings for ms in t.ms]
    print(f"\n{backend}: {cases} cases, {segments} segments generated and loaded in {gen_s:.1f} s")
    print(f"  {'queries':<16}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  totals")
    for t in timings:
        totals = ", ".join(str(n) for n in sorted(t.totals)[:6])
        print(f"  {t.kind:<16}{len(t.ms):>5}{statistics.median(t.ms):>9.1f}{_percentile(t.ms, 95):>9.1f}"
              f"{max(t.ms):>9.1f}  {totals}")
    print(f"  {'all':<16}{len(every):>5}{statistics.median(every):>9.1f}{_percentile(every, 95):>9.1f}"
          f"{max(every):>9.1f}")


@contextlib.contextmanager
def scratch_database(backend: str, pg_url: str) -> Iterator[Database]:
    """A fresh migrated database: a SQLite file in a temp dir, or a PostgreSQL schema dropped after."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="hotline-bench-search-") as tmp:
            database = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                database.upgrade()
                yield database
            finally:
                database.dispose()
        return
    schema = f"bench_search_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    database = Database(f"{pg_url}{sep}options=-csearch_path%3D{schema}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run(*, cases: int, segments_per_case: int, backends: list[str], pg_url: str, rounds: int) -> None:
    for backend in backends:
        with scratch_database(backend, pg_url) as database:
            began = time.perf_counter()
            gen = generate(database, cases=cases, segments_per_case=segments_per_case)
            gen_s = time.perf_counter() - began
            timings = measure(database, queries(gen.vocab), rounds)
            _report(backend, cases, gen.segment_id, gen_s, timings)
