"""Settings from the environment (prefix ``HOTLINE_``), with embedded defaults under ``HOTLINE_DATA_DIR``."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

Layout = Literal["caller-left", "agent-left", "mono"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite in the data dir
    redis_url: str | None = None  # set: jobs go through Redis so workers on other machines share them

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    sip_port: int = 5060

    max_upload_mb: int = 500
    token_ttl_minutes: int = 12 * 60
    secret_key: str | None = None  # default: generated once and kept in the data dir

    # Transcription
    asr_engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    asr_model_dir: Path | None = None  # a CTranslate2 Whisper directory; default: the bundled base
    asr_compute_type: str = "int8"
    asr_beam_size: int = 5
    asr_threads: int = 0  # 0: all cores
    default_layout: Layout = "caller-left"

    # Jobs
    worker_concurrency: int = 1
    job_retries: int = 3
    job_retry_delay_s: int = 10
    job_lease_s: int = 120  # plus the recording's duration: after that a claimed job counts as abandoned

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
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.recordings_dir, self.models_dir, self.data_dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)

    @cached_property
    def jwt_secret(self) -> str:
        """The configured secret, or one generated on first use and kept (mode 600) in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.ensure_dirs()
            tmp = path.with_name(f"secret.{secrets.token_hex(8)}.tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()
