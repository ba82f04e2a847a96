"""The job queue (Huey): SQLite file by default, Redis when HOTLINE_REDIS_URL is set.

Workers on any machine that share the Redis (and the database and recordings directory) share the work.
Huey removes a message when a worker takes it, so a worker killed mid-job would lose it; the database
is therefore the source of truth: a recording stays ``queued``/``transcribing`` until its transcript is
stored, and ``sweep`` (every minute, and when a worker starts) queues again any job whose worker died or
whose lease ran out. Jobs are idempotent, so a job queued twice is done once.
"""

from __future__ import annotations

import logging
from typing import Any

from huey import Huey, PriorityRedisHuey, SqliteHuey, crontab

from app.audit import service as audit
from app.config import Settings
from app.db import Database
from app.recordings import service as recordings
from app.recordings.storage import StorageUnavailable
from app.transcripts import flows

log = logging.getLogger(__name__)


# Recordings of ended calls and sessions go before a bulk import's backlog (higher first); both queues
# order by priority (SqliteHuey natively; on Redis the priority queue, a sorted set).
PRIORITY_CALL = 10
PRIORITY_IMPORT = 0


def make_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    if settings.redis_url:
        # "hotline.p": the earlier plain-list queue "hotline" is a different Redis type; jobs left in it are
        # queued again from the database by the sweep
        return PriorityRedisHuey("hotline.p", url=settings.redis_url, immediate=immediate)
    settings.ensure_dirs()
    return SqliteHuey("hotline", filename=str(settings.jobs_path), immediate=immediate)


class JobQueue:
    """The Huey instance with our tasks registered; the API enqueues, ``hotline worker`` consumes."""

    def __init__(self, settings: Settings, *, immediate: bool = False, database: Database | None = None) -> None:
        self.settings = settings
        self.huey = make_huey(settings, immediate=immediate)
        self._database = database

        @self.huey.task(retries=settings.job_retries, retry_delay=settings.job_retry_delay_s, context=True)
        def transcribe_recording(recording_id: int, task: Any = None) -> int | None:
            try:
                outcome = flows.transcribe_recording(
                    database=self.database, settings=settings, recording_id=recording_id)
            except flows.PermanentFailure as e:
                flows.mark_failed(database=self.database, recording_id=recording_id, error=str(e), final=True)
                log.error("recording %s cannot be transcribed: %s", recording_id, e)
                return None
            except StorageUnavailable as e:  # the store is down: the job waits for it, never fails for good
                flows.mark_failed(database=self.database, recording_id=recording_id, error=str(e), final=False)
                raise
            except Exception as e:
                final = task is None or task.retries == 0
                flows.mark_failed(database=self.database, recording_id=recording_id, error=repr(e), final=final)
                raise
            return outcome.case_id

        @self.huey.periodic_task(crontab(minute="*"))
        def sweep_abandoned() -> int:
            return self.sweep()

        @self.huey.periodic_task(crontab(minute="*"))
        def sla_sweep() -> int:
            """SLA reminders (app/notifications): made once, delivered to the webhook, retried next minute."""
            from app.notifications import service as notifications

            return notifications.run_sweep(database=self.database, settings=settings).sweep.total

        @self.huey.periodic_task(crontab(minute="*"))
        def warning_deadlines() -> int:
            """Early warnings nobody signed for in time are escalated; snoozes that ran out end."""
            from app.warnings import workflow

            with self.database.session() as db:
                swept = workflow.sweep(db=db, settings=settings)
            return swept.escalated + swept.woken

        @self.huey.periodic_task(crontab(minute="7"))
        def warnings_hourly() -> int:
            """Early warnings for the cases filed or changed in the last two hours (idempotent)."""
            from app.warnings import service as warnings

            with self.database.session() as db:
                return warnings.hourly(db=db, settings=settings).raised

        @self.huey.periodic_task(crontab(minute="0", hour="23"))  # 07:00 Beijing (Huey's crontab is UTC)
        def daily_report() -> int:
            """企业预警风险信息日报 for the day before (Beijing), generated and archived every morning."""
            from app.reports import service as reports

            return reports.daily_job(database=self.database, settings=settings).id

        @self.huey.periodic_task(crontab(minute="30", hour="18"))  # 02:30 Beijing, when the lines are quiet
        def retention_sweep() -> int:
            """Recordings past their channel's retention period deleted (HOTLINE_RETENTION_DAYS; none when unset)."""
            from app.recordings import retention

            if not settings.retention_days:
                return 0
            return len(retention.sweep(database=self.database, settings=settings).deleted)

        self._transcribe = transcribe_recording

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.settings.sqlalchemy_url)
        return self._database

    def enqueue_transcription(self, recording_id: int, *, priority: int = PRIORITY_IMPORT) -> bool:
        """Send the job to the queue. The recording is on record already: when the queue cannot be reached
        (Redis down), its lease is shortened so the sweep sends it again within a minute or two of the queue
        being back, and False is returned; nothing is raised to the upload or the call being filed."""
        try:
            self._transcribe(recording_id, priority=priority)
            return True
        except Exception as e:  # noqa: BLE001 - any failure of the queue's transport: the database keeps the job
            log.error("recording %s: the job queue cannot be reached (%s); the sweep will queue it again",
                      recording_id, e)
            with self.database.session() as db:
                recordings.retry_soon(db=db, recording_id=recording_id)
            return False

    def sweep(self) -> int:
        """Queue again every abandoned job; returns how many."""
        with self.database.session() as db:
            stale = recordings.abandoned(db=db)
            for rec in stale:
                audit.record(db=db, actor="system", action="transcription.requeued", subject_type="recording",
                             subject_id=rec.id, details={"attempts": rec.attempts})
            ids = [r.id for r in stale]
        for recording_id in ids:
            self.enqueue_transcription(recording_id, priority=PRIORITY_CALL)  # waited long enough already
        if ids:
            log.warning("queued again %d abandoned transcription job(s): %s", len(ids), ids)
        return len(ids)

    def run_worker(self, *, workers: int) -> None:
        """Consume jobs until SIGINT (finish current jobs) or SIGTERM (stop now; the sweep recovers)."""
        from app.heartbeats import Beating

        self.sweep()
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread", periodic=True)
        beating = Beating(self.settings, flows.worker_id())  # counted as a live worker (GET /api/v1/health)
        beating.start()
        try:
            consumer.run()
        finally:
            beating.stop()
