"""`hotline bench warnings` at a tiny size: the generated year keeps its promises, loads, and runs end to end."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.bench import warnings as bench
from app.cases.categorize import DEFAULT_TAXONOMY
from app.cases.dimensions import OCCUPATIONS
from app.cases.models import Case
from app.db import Database
from app.enterprises.models import Enterprise

SIZE = {"cases": 2000, "enterprises": 300, "seed": 7, "episodes": 3, "trickles": 1}


@pytest.fixture(scope="module")
def year() -> bench.Year:
    return bench.generate(**SIZE)


def test_counts_and_ground_truth(year: bench.Year) -> None:
    assert len(year.calls) == SIZE["cases"]
    assert len(year.companies) == SIZE["enterprises"]
    assert len({c.name for c in year.companies}) == SIZE["enterprises"]
    assert [c.id for c in year.calls] == list(range(1, SIZE["cases"] + 1))
    assert all(a.at <= b.at for a, b in zip(year.calls, year.calls[1:], strict=False))
    assert all(bench.START <= c.at < bench.END for c in year.calls)
    assert Counter(ep.kind for ep in year.episodes) == {"A": 1, "B": 1, "D": 1, "C": 1}
    for ep in year.episodes:
        calls = [year.calls[i - 1] for i in ep.case_ids]
        assert calls and all(c.episode == ep.id for c in calls)
        assert ep.times == sorted(ep.times) == [c.at for c in calls]
        if ep.kind == "A":
            assert 6 <= len(calls) <= 15 and ep.times[-1] - ep.times[0] < timedelta(days=15)
        if ep.kind == "B":
            assert len(calls) >= 12 and {c.district for c in calls} - {None} == {ep.district}
            assert Counter(c.category for c in calls).most_common(1)[0][0] == bench.DISPATCH
        if ep.kind == "D":
            assert 4 <= len(calls) <= 5 and ep.times[-1] - ep.times[0] < timedelta(days=3)
        if ep.kind == "C":  # one call every 2–4 weeks, nothing else about the enterprise
            assert len(calls) >= 4
            assert all(timedelta(days=10) < b - a < timedelta(days=35) for a, b in zip(ep.times, ep.times[1:],
                                                                                      strict=False))
            assert all(c.enterprise_id in (None, ep.enterprise_id) for c in calls)
            assert not [c for c in year.calls if c.episode is None and c.enterprise_id == ep.enterprise_id]


def test_background_is_plausible(year: bench.Year) -> None:
    background = [c for c in year.calls if c.episode is None]
    assert not [c for c in background if c.workers is not None and c.workers >= year.group_workers]
    categories = Counter(c.category for c in background)
    assert set(categories) <= {r.name for r in DEFAULT_TAXONOMY}
    assert 0.33 < categories["欠薪"] / len(background) < 0.47
    assert {c.occupation for c in year.calls} - {None} <= set(OCCUPATIONS.values())
    assert {c.district for c in year.calls} - {None} == {d for d, _ in bench.DISTRICTS}
    phones = [c.phone for c in year.calls if c.phone]
    assert len(phones) == len(set(phones)) > 0.95 * len(year.calls)
    weekend = sum(c.at.astimezone(bench.TZ).weekday() >= 5 for c in background) / len(background)
    assert weekend < 0.2  # 2/7 of the days
    info = bench.describe(year)
    assert info["background_group_cases"] == 0 and info["enterprise_cases"]["max"] >= 10


def test_seeded_and_deterministic(year: bench.Year) -> None:
    again = bench.generate(**SIZE)
    assert [(c.at, c.category, c.enterprise_id, c.phone, c.workers, c.amount) for c in again.calls] == \
        [(c.at, c.category, c.enterprise_id, c.phone, c.workers, c.amount) for c in year.calls]
    other = bench.generate(**{**SIZE, "seed": 8})
    assert [c.at for c in other.calls] != [c.at for c in year.calls]


def test_loads_into_sqlite(year: bench.Year, tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'bench.db'}")
    try:
        database.upgrade()
        bench.load(database, year, batch=700)
        with database.session() as db:
            assert db.scalar(sa.select(sa.func.count()).select_from(Case)) == SIZE["cases"]
            assert db.scalar(sa.select(sa.func.count()).select_from(Enterprise)) == SIZE["enterprises"]
            call = year.calls[100]
            case = db.get(Case, call.id)
            assert case is not None and case.accepted_at == call.at and case.caller_phone == call.phone
            assert (case.category, case.enterprise_id, case.workers) == (call.category, call.enterprise_id,
                                                                         call.workers)
            assert not db.scalar(sa.select(sa.func.count()).select_from(Case).where(
                Case.group_case, Case.id.not_in([i for ep in year.episodes for i in ep.case_ids])))
    finally:
        database.dispose()


def test_bench_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    results = bench.run(**SIZE, incremental=20)
    out = capsys.readouterr().out
    assert "recall" in out and "false warnings" in out
    (r,) = results
    assert r.cases == SIZE["cases"] and r.raised > 0
    assert r.again_raised == 0 and r.incremental_raised == 0  # idempotent, and incremental agrees with the replay
    assert len(r.incremental_ms) == 20
    d = r.detection
    assert sorted(e.kind for e in d.episodes) == ["A", "B", "D"] and len(d.trickles) == 1
    a = next(e for e in d.episodes if e.kind == "A")  # ~30 workers unpaid, group cases among the calls
    assert a.detected and a.raised_at is not None and a.raised_at >= a.first_at
    assert d.recall >= 2 / 3
    assert not [t for t in d.trickles if t.detected]
