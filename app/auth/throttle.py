"""Login throttling: exponential backoff per account and per source address, and an alert to admins when an
attack goes on.

How it works. Failed logins are counted per key — ``account:NAME`` (the name as typed, whether or not such an
account exists, so a refusal says nothing about which accounts exist), ``address:IP`` (every account tried from
one address) — in the ``login_throttle`` table. The first few failures are free (HOTLINE_LOGIN_FREE_FAILURES per
account, HOTLINE_LOGIN_FREE_FAILURES_PER_ADDRESS per address: an office behind one NAT address shares it); each
further one blocks the key for twice as long as the one before, from HOTLINE_LOGIN_BACKOFF_BASE_S up to
HOTLINE_LOGIN_BACKOFF_MAX_S (15 minutes). While a key is blocked, logins it covers are refused with 429 and
``Retry-After`` before any password is checked (so a refusal costs no hashing, and is the same for every name).
Failures are forgotten after HOTLINE_LOGIN_THROTTLE_WINDOW_MINUTES without one; the right password resets the
account's count.

No lockout an attacker can impose on a real user: a blocked *account* still lets its password be checked from
an address that has not been failing within the window (the user's own desk), so guessing from elsewhere never
keeps its owner out; and every block ends on its own after at most 15 minutes. A blocked *address* is refused
whatever the account: that only slows whoever is failing from there (and people behind the same NAT address,
for at most the same 15 minutes). What an attacker gets: on one account from one address, the free failures and
then one guess per 15 minutes (4 an hour) once the backoff has grown; from one address, over any number of
accounts, the same; from many addresses on one account, one guess from each new address while the account is
blocked, and the alert below.

Parallel attempts cannot overrun the budget: an attempt is counted as a failure *before* the password is checked
(rows locked), and a success takes its count back.

Alert: when one account or one address reaches HOTLINE_LOGIN_ALERT_FAILURES failures within the window, or the
site as a whole five times as many (password spraying over many accounts from many addresses), every active
admin gets a notification (app/notifications; also sent to the webhook) — once per key and window, not per
attempt.

Why the database, not Redis: every API process (and every machine) already shares it, Redis is optional here,
and each attempt writes its audit event to the same database in any case; the state is a few small rows,
written only on login attempts. Rows whose failures are forgotten are deleted at each attempt (one indexed
DELETE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.models import LoginThrottle
from app.config import Settings
from app.db import as_utc
from app.notifications.models import Notification, NotificationKind
from app.users.models import Role, User

SITE = "site"
SITE_ALERT_FACTOR = 5
PRUNE_BATCH = 500


@dataclass(frozen=True)
class Policy:
    free_per_account: int = 5
    free_per_address: int = 20
    base_s: float = 2.0
    max_s: float = 900.0
    window: timedelta = timedelta(minutes=60)
    alert_failures: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(free_per_account=settings.login_free_failures,
                   free_per_address=settings.login_free_failures_per_address,
                   base_s=settings.login_backoff_base_s, max_s=settings.login_backoff_max_s,
                   window=timedelta(minutes=settings.login_throttle_window_minutes),
                   alert_failures=settings.login_alert_failures)

    def delay(self, failures: int, free: int) -> float:
        """Seconds a key is blocked after its ``failures``-th failure: none while free, then doubling."""
        over = failures - free
        if over <= 0:
            return 0.0
        return min(self.base_s * 2.0 ** min(over - 1, 40), self.max_s)


def account_key(username: str) -> str:
    return f"account:{username[:64]}"


def address_key(address: str) -> str:
    return f"address:{address[:64]}"


@dataclass(frozen=True)
class Refused:
    """No password is checked: the account (from an address that has been failing) or the address is blocked."""

    scope: str  # "account" | "address"
    retry_after: int  # seconds


@dataclass(frozen=True)
class Admitted:
    """The attempt may check the password; it is already counted as a failure (``succeeded`` takes it back)."""

    account: str
    address: str
    address_blocked_before: datetime | None  # the address's block before this attempt counted
    address_blocked_by_us: datetime | None  # … and the one this attempt set, if it set one


def _row(db: Session, key: str, now: datetime, policy: Policy) -> LoginThrottle:
    """The key's row, locked (PostgreSQL) for this transaction; made if missing; failures older than the window
    forgotten."""
    stmt = sa.select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    row = db.execute(stmt).scalar_one_or_none()
    if row is None:
        try:
            with db.begin_nested():  # another process made it first: use theirs
                row = LoginThrottle(key=key, failures=0)
                db.add(row)
        except IntegrityError:
            row = db.execute(stmt.execution_options(populate_existing=True)).scalar_one()
    elif row.last_failure_at is not None and as_utc(row.last_failure_at) < now - policy.window:
        row.failures = 0
    return row


def _prune(db: Session, now: datetime, policy: Policy) -> None:
    """Rows whose failures are forgotten and whose blocks are over: nothing to remember (a batch at a time;
    rows another attempt holds are left for later)."""
    stale = sa.select(LoginThrottle.key).where(
        sa.or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < now - policy.window),
        sa.or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
    ).limit(PRUNE_BATCH).with_for_update(skip_locked=True)
    db.execute(sa.delete(LoginThrottle).where(LoginThrottle.key.in_(stale.scalar_subquery())),
               execution_options={"synchronize_session": False})


def _blocked(row: LoginThrottle, now: datetime) -> float:
    return (as_utc(row.blocked_until) - now).total_seconds() if row.blocked_until is not None else 0.0


def _count_failure(row: LoginThrottle, now: datetime, delay: float) -> datetime | None:
    """One more failure on ``row``; returns the block it sets (None if it sets none)."""
    row.failures += 1
    row.last_failure_at = now
    if delay <= 0:
        return None
    until = now + timedelta(seconds=delay)
    if row.blocked_until is None or as_utc(row.blocked_until) < until:
        row.blocked_until = until
        return until
    return None


def begin(*, db: Session, policy: Policy, username: str, address: str, now: datetime) -> Refused | Admitted:
    """Before a password is checked: refuse it, or count it as a failure in advance and let it through."""
    _prune(db, now, policy)
    source = _row(db, address_key(address), now, policy)  # rows are always locked address, account, site
    if (wait := _blocked(source, now)) > 0:
        return Refused("address", max(1, math.ceil(wait)))
    account = _row(db, account_key(username), now, policy)
    if (wait := _blocked(account, now)) > 0 and source.failures > 0:
        return Refused("account", max(1, math.ceil(wait)))
    _count_failure(account, now, policy.delay(account.failures + 1, policy.free_per_account))
    before = source.blocked_until
    set_by_us = _count_failure(source, now, policy.delay(source.failures + 1, policy.free_per_address))
    db.flush()
    return Admitted(account.key, source.key, before, set_by_us)


def succeeded(*, db: Session, admitted: Admitted, now: datetime) -> None:
    """The right password: the account starts afresh, and the address gets this attempt's failure back."""
    source = _locked(db, admitted.address)
    db.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == admitted.account))
    if source is None:
        return
    source.failures = max(0, source.failures - 1)
    if admitted.address_blocked_by_us is not None and source.blocked_until is not None \
            and as_utc(source.blocked_until) == admitted.address_blocked_by_us:
        source.blocked_until = admitted.address_blocked_before  # unless a failure beside us moved it since
    if source.failures == 0 and _blocked(source, now) <= 0:
        db.delete(source)
    db.flush()


def _locked(db: Session, key: str) -> LoginThrottle | None:
    return db.execute(sa.select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                      .execution_options(populate_existing=True)).scalar_one_or_none()


@dataclass(frozen=True)
class Alert:
    key: str
    failures: int
    notified: int  # admins told


def failed(*, db: Session, policy: Policy, admitted: Admitted, username: str, address: str,
           now: datetime) -> list[Alert]:
    """A wrong password (already counted by ``begin``): count it for the site too, and tell the admins about a
    sustained attack — once per key and window."""
    rows = {key: _locked(db, key) for key in (admitted.address, admitted.account)}
    site = rows[SITE] = _row(db, SITE, now, policy)
    site.failures += 1
    site.last_failure_at = now
    alerts = []
    for key, threshold in ((admitted.account, policy.alert_failures), (admitted.address, policy.alert_failures),
                           (SITE, policy.alert_failures * SITE_ALERT_FACTOR)):
        row = rows[key]
        if row is None or row.failures < threshold:
            continue
        if row.alerted_at is not None and as_utc(row.alerted_at) >= now - policy.window:
            continue
        row.alerted_at = now
        told = _notify_admins(db, _message(key, row.failures, policy, username, address), now)
        alerts.append(Alert(key, row.failures, told))
    db.flush()
    return alerts


def _message(key: str, failures: int, policy: Policy, username: str, address: str) -> str:
    minutes = int(policy.window.total_seconds() // 60)
    recent = f"近 {minutes} 分钟内登录失败 {failures} 次"
    if key.startswith("account:"):
        what = f"账号“{key.removeprefix('account:')}”{recent}（最近一次来自 {address}）"
    elif key.startswith("address:"):
        what = f"来源地址 {key.removeprefix('address:')} {recent}（最近尝试的账号“{username[:64]}”）"
    else:
        what = f"全站{recent}（最近一次：账号“{username[:64]}”，来自 {address}）"
    return (f"【登录安全】{what}，疑似密码猜测攻击，系统已自动限速。"
            "请核查审计日志（auth.login_failed），必要时重置相关账号的密码。")


def _notify_admins(db: Session, message: str, now: datetime) -> int:
    names = db.execute(sa.select(User.username).where(User.active, User.role == Role.admin.value)
                       .order_by(User.id)).scalars().all()
    db.add_all([Notification(username=name, kind=NotificationKind.login_attack.value, message=message,
                             created_at=now) for name in names])
    return len(names)


def state(*, db: Session, key: str) -> LoginThrottle | None:
    """A key's counters as they stand (tests, support)."""
    return db.get(LoginThrottle, key)

