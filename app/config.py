"""Settings from the environment (prefix ``HOTLINE_``), with embedded defaults under ``HOTLINE_DATA_DIR``."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telephony.options import BUNDLED_GREETING, PRIVATE_NETWORKS

Layout = Literal["caller-left", "agent-left", "mono"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite in the data dir
    redis_url: str | None = None  # set: jobs go through Redis so workers on other machines share them

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # HTTPS served by `hotline serve` itself (PEM files); both set: TLS on, and browsers told to keep to it (HSTS)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Browser pages at other addresses allowed to open the staff WebSockets (JSON list of origins, e.g.
    # '["https://hotline.example.gov.cn"]' behind a proxy that changes the Host); the site's own is always allowed
    allowed_origins: list[str] = []
    api_docs: bool = False  # /docs and /openapi.json for anyone (admins always have GET /api/v1/openapi.json)

    # Telephony adapter (`hotline sip`, started by `hotline serve` when enabled)
    sip_enabled: bool = True
    sip_host: str = "127.0.0.1"  # 0.0.0.0 to take calls from a trunk/PBX on the network
    sip_port: int = 5060
    sip_public_address: str = ""  # address in SDP/Contact when behind NAT; default: the one the peer reached
    rtp_port_min: int = 20000
    rtp_port_max: int = 39999
    sip_greeting: str = "default"  # played on answer: "default" (bundled), a file path, or "" for none
    sip_answer_delay_ms: int = 0  # ringing time before the adapter answers
    sip_rtp_timeout_s: float = 30.0  # no RTP this long (not on hold): the call is ended with BYE
    sip_allowed_sources: list[str] = list(PRIVATE_NETWORKS)  # JSON list of CIDRs; others get 403
    sip_rate_limit: float = 200.0  # SIP requests per second per source address
    sip_max_calls: int = 2000
    # SIP over TCP: a connection with no message (nor CRLF keep-alive) this long and no call on it is closed; a
    # vanished peer's connection is found by TCP keep-alive (first probe after sip_tcp_keepalive_s of silence)
    sip_tcp_idle_s: float = 120.0
    sip_tcp_keepalive_s: float = 30.0
    sip_tcp_max_per_source: int = 100  # open TCP connections from one address; more are closed at once
    sip_auth_user: str = ""  # digest authentication for INVITE when set
    sip_auth_password: str = ""
    sip_agent_pattern: str = r"\d{3,6}"  # SIPREC: participants whose number matches are agents
    live_enabled: bool = True  # live transcripts of calls in progress (`hotline live`, started by `hotline sip`)
    live_max_calls: int = 4  # calls transcribed live at once; more are recorded and transcribed after the call
    live_beam_size: int = 1  # partials greedy: they are replaced within a second
    live_final_beam_size: int = 1  # each utterance's final text (the record is still the post-call pass)
    media_token: str | None = None  # WebSocket media streams; default: generated once, kept in the data dir

    # Recordings storage (app/recordings/storage.py): "" = the data dir's recordings/ folder (one machine);
    # "s3://bucket/prefix" = S3-compatible object storage, shared by every node of a multi-machine site
    storage_url: str = ""
    s3_endpoint_url: str | None = None  # e.g. http://10.0.0.5:8333 (SeaweedFS, MinIO, Ceph RGW); default: AWS
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_object_lock_days: int = 0  # > 0: recordings kept as evidence are WORM (COMPLIANCE) for this many days
    # Encryption at rest (app/recordings/crypto.py): a random AES-256-GCM key per recording, wrapped by the
    # master key; on by default. The master key: HOTLINE_MASTER_KEY (base64 of 32 bytes) or a key file
    # (default: generated into the data dir on first start; keep a copy elsewhere, see README)
    encrypt_recordings: bool = True
    master_key: str | None = None
    master_key_file: Path | None = None

    max_upload_mb: int = 500
    secret_key: str | None = None  # default: generated once and kept in the data dir

    # Sign-in (app/auth): a login token lives this long; the web app renews it (POST /auth/refresh) while its
    # user is active, and a token not used for idle_timeout_minutes is refused (0: no idle limit)
    token_ttl_minutes: int = 8 * 60
    idle_timeout_minutes: int = 30
    # Login throttling (app/auth/throttle.py): after this many failed logins on one account (from any address)
    # or from one address (on any account), each further failure doubles the wait, from login_backoff_base_s
    # up to login_backoff_max_s; failures are forgotten after login_throttle_window_minutes without one
    login_free_failures: int = 5
    login_free_failures_per_address: int = 20  # higher: an office behind one NAT address shares it
    login_backoff_base_s: float = 2.0
    login_backoff_max_s: float = 900.0
    login_throttle_window_minutes: int = 60
    # admins are notified (once per window) when one account or one address has failed this many times, or the
    # whole site five times as many (password spraying from many addresses)
    login_alert_failures: int = 20

    # Transcription
    asr_engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    asr_model_dir: Path | None = None  # a CTranslate2 Whisper directory; default: the bundled base
    asr_compute_type: str = "int8"
    asr_beam_size: int = 5
    asr_threads: int = 0  # cores per decode; 0: one (then one decode per core runs side by side)
    diarization_dir: Path | None = None  # single-mic sessions: a local pyannote.audio pipeline; default: embedded
    default_layout: Layout = "caller-left"

    # Jobs
    worker_concurrency: int = 1
    job_retries: int = 3
    job_retry_delay_s: int = 10
    job_lease_s: int = 120  # plus the recording's duration: after that a claimed job counts as abandoned
    worker_heartbeat_s: float = 10.0  # each worker says it is alive this often (app/heartbeats.py)
    # GET /api/v1/health (app/health.py): a part not up for this long (a worker restarting and loading its model,
    # the SIP adapter restarting) makes it answer 503; data dir free space under health_min_free_mb too
    health_grace_s: float = 60.0
    health_min_free_mb: int = 500
    health_min_workers: int = 0  # live workers (all machines) below which health is 503 on every node; 0: only
    #                              a node's own worker (`hotline serve` without --no-worker) counts
    group_case_workers: int = 10  # 群体性: a case involving at least this many workers is flagged

    # Case SLA clocks (from 受理 = accepted_at) and reminders (`hotline sla sweep`, every minute in the worker)
    sla_feedback_hours: int = 24  # first feedback to the caller is due this long after 受理
    # completion deadline in calendar days per difficulty, JSON: HOTLINE_SLA_DAYS='{"一般":5,"疑难":15,"特别复杂":30}'
    sla_days: dict[str, int] = {"一般": 5, "疑难": 15, "特别复杂": 30}
    sla_due_soon_hours: int = 24  # `due_soon` (and a reminder) when the completion deadline is this close
    sla_feedback_due_soon_hours: int = 4  # a reminder when first feedback is due within this many hours
    sla_webhook_url: str | None = None  # each new notification POSTed here as JSON (e.g. an SMS gateway)
    sla_webhook_timeout_s: float = 5.0
    # Early warnings: hours to sign for (签收) a new warning by grade; past it, managers and admins are told
    warning_sign_hours: dict[str, int] = {"红": 2, "橙": 8, "黄": 24, "蓝": 72}

    # Retention (app/recordings/retention.py, `hotline retention sweep`, daily in the worker): days a recording is
    # kept per channel, JSON: HOTLINE_RETENTION_DAYS='{"来电":1095,"上传":1095}'; a channel left out (and the
    # default, {}) keeps its recordings forever. Only recordings of closed (办结) cases not on legal hold are deleted
    retention_days: dict[str, int] = {}
    retention_keep_transcript: bool = True  # false: the transcript's text goes with the recording (the case stays)

    @field_validator("tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("sla_days")
    @classmethod
    def _sla_days_for_each_difficulty(cls, v: dict[str, int]) -> dict[str, int]:
        wanted = ("一般", "疑难", "特别复杂")
        if sorted(v) != sorted(wanted) or any(days < 1 for days in v.values()):
            raise ValueError(f"HOTLINE_SLA_DAYS needs a positive number of days for each of {', '.join(wanted)}")
        return v

    @field_validator("retention_days")
    @classmethod
    def _retention_days_per_channel(cls, v: dict[str, int]) -> dict[str, int]:
        channels = ("来电", "来访", "调解", "开庭", "上传")  # app.recordings.models.CaseChannel
        unknown = sorted(set(v) - set(channels))
        if unknown:
            raise ValueError(f"HOTLINE_RETENTION_DAYS: no channel {', '.join(unknown)} "
                             f"(channels: {', '.join(channels)})")
        if any(days < 1 for days in v.values()):
            raise ValueError("HOTLINE_RETENTION_DAYS: days must be at least 1 (leave a channel out to keep it forever)")
        return v

    @cached_property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'hotline.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def jobs_path(self) -> Path:
        return self.data_dir / "jobs.db"

    @property
    def calls_dir(self) -> Path:
        return self.data_dir / "calls"

    @property
    def live_audio_socket(self) -> Path:
        return self.data_dir / "live-audio.sock"

    @property
    def greeting_path(self) -> Path | None:
        if self.sip_greeting == "default":
            return BUNDLED_GREETING
        return Path(self.sip_greeting) if self.sip_greeting else None

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.recordings_dir, self.models_dir, self.data_dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)  # for this user only (see app/startup.py)

    @cached_property
    def jwt_secret(self) -> str:
        """The configured secret, or one generated on first use and kept (mode 600) in the data dir."""
        return self.secret_key or self._kept_secret("secret.key")

    @cached_property
    def media_secret(self) -> str:
        """The token WebSocket media peers (PBX, Twilio) present: ``?token=`` or ``Authorization: Bearer``."""
        return self.media_token or self._kept_secret("media.token")

    def _kept_secret(self, name: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.ensure_dirs()
            tmp = path.with_name(f"secret.{secrets.token_hex(8)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, even briefly
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()
