"""mixpilot settings, from the environment (prefix MIXPILOT_) and a `.env` file.

Built once at start-up by a surface (CLI, API, UI) and passed down; never created at import.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from models.weights import WeightSources

#: JWT secrets that are never accepted in production (placeholders from docs and templates)
WEAK_SECRETS = frozenset(
    {
        "changethis",
        "change-me",
        "changeme",
        "secret",
        "dev",
        "development",
        "mixpilot",
        "please-change-me",
        "test",
    }
)
MIN_SECRET_CHARS = 32


def _default_data_dir() -> Path:
    import os

    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "mixpilot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXPILOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir, description="where files, SQLite and Chroma live"
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the data dir")
    redis_url: str | None = None
    chroma_url: str | None = None
    max_duration_s: float = Field(30 * 60.0, gt=0)

    # ---- audio storage (memory/storage.py: the data dir; memory/objectstore.py: S3-compatible)
    storage_url: str | None = Field(
        None,
        description="s3://BUCKET[/PREFIX]: versions and downloads in S3-compatible object storage (AWS S3, "
        "MinIO, Ceph, R2, GCS's S3 API), shared by API processes and workers on any machine; "
        "unset: the data dir",
    )
    storage_endpoint_url: str | None = Field(
        None, description="the S3 API's base URL for a store that is not AWS (http://minio:9000)"
    )
    storage_region: str = Field("us-east-1", description="the bucket's region (signing)")
    storage_access_key_id: str | None = Field(
        None, description="S3 access key; unset: the usual AWS chain (AWS_* variables, profile, role)"
    )
    storage_secret_access_key: SecretStr | None = None
    storage_allow_http: bool = Field(
        False, description="allow a plain-http endpoint (a local MinIO or test server); refused otherwise"
    )
    storage_cache_mb: float = Field(
        2048.0,
        ge=0,
        description="disk cache of stored versions and downloads fetched from object storage, in the data dir "
        "(least recently used go first); 0: none",
    )
    storage_presign_s: float = Field(
        900.0, gt=0, le=7 * 24 * 3600, description="lifetime of a presigned download URL (?redirect=true)"
    )
    storage_write_behind: bool = Field(
        True,
        description="local store: write a version raw (fast turns) and compress it (FLAC 24 / zstd) in a "
        "low-priority thread; `mixpilot gc` compresses what a stopped process left",
    )

    # ---- neural model weights (models/weights.py resolves them; `mixpilot models` fetches them)
    models_dir_: Path | None = Field(
        None,
        validation_alias=AliasChoices("MIXPILOT_MODELS_DIR", "models_dir"),
        description="where `mixpilot models pull` installs weights; default <data dir>/models",
    )
    model_mirror: str | None = Field(
        None,
        description="base URL of a mirror of the published weights: Demucs under <mirror>/demucs/..., "
        "Vocos with <mirror> as the Hugging Face endpoint; default the publishers (HF_ENDPOINT is honoured)",
    )
    demucs_dir: Path | None = Field(None, description="a folder of Demucs checkpoints placed by hand")
    demucs_model: str = Field(
        "htdemucs", description="the Demucs model `separate` uses (htdemucs, htdemucs_ft)"
    )
    vocos_dir: Path | None = Field(None, description="a folder with Vocos config.yaml and pytorch_model.bin")
    opgan_weights: Path | None = Field(
        None,
        description="another Op-GAN generator file for `restore` "
        "(default: the shipped models/checkpoints/opgan_small.pt)",
    )
    # not MIXPILOT_-prefixed: where torch and huggingface_hub themselves keep downloaded weights
    torch_home: Path | None = Field(None, validation_alias="TORCH_HOME")
    xdg_cache_home: Path | None = Field(None, validation_alias="XDG_CACHE_HOME")
    hf_hub_cache: Path | None = Field(
        None, validation_alias=AliasChoices("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
    )
    hf_home: Path | None = Field(None, validation_alias="HF_HOME")

    llm_model: str | None = None
    llm_provider: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 60.0  # per request to the LLM endpoint
    llm_max_retries: int = 1

    # ---- HTTP API (app/api)
    environment: Literal["development", "production"] = Field(
        "development",
        description="production refuses weak secrets and hides the API docs (error bodies never "
        "carry details: they name a request id, the log has the rest)",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description=f"HMAC key for tokens; required in production (>= {MIN_SECRET_CHARS} chars); "
        "development without one gets a random per-process key",
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "mixpilot"
    jwt_audience: str = "mixpilot-api"
    access_token_minutes: float = Field(30.0, gt=0, le=24 * 60)
    refresh_token_days: float = Field(14.0, gt=0, le=90)
    max_upload_mb: float = Field(200.0, gt=0, description="largest accepted upload (whole request body)")
    max_decoded_mb: float = Field(
        256.0,
        gt=0,
        description="largest decoded upload (frames × channels × 4 bytes of float32, read from the "
        "header before decoding): 256 MB is 23 min of 48 kHz stereo",
    )
    user_audio_mb: float = Field(
        4096.0,
        gt=0,
        description="decoded size of all of one user's stored files together (uploads and results)",
    )
    user_quota_bytes: ByteSize = Field(
        ByteSize(20 * 1024**3),
        gt=0,
        description="bytes of stored audio one user may keep (uploads and results, as stored: compressed); "
        "an upload or a job over it is refused with 507 (e.g. 20GiB, 500MB)",
    )
    retention_days: float = Field(
        0.0,
        ge=0,
        description="`mixpilot gc` removes a stored version once it has been unreferenced (by a thread, "
        "an upload, a downloaded result, a queued job) for this long; 0 keeps everything (the default: "
        "on a laptop nothing disappears by surprise)",
    )
    decode_slots: int = Field(2, ge=1, le=64, description="uploads decoded at once by one API process")
    login_max_failures: int = Field(5, ge=1, description="failed logins per email+client before throttling")
    login_max_address_failures: int = Field(
        100,
        ge=1,
        description="failed logins per client address (any emails) before that address is throttled "
        "for accounts that have not signed in from it before: high, so an office NAT is not locked out",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or CIDR ranges of reverse proxies whose X-Forwarded-For / "
        'Forwarded headers name the client (JSON list, e.g. ["10.0.0.0/8"]); other peers\' headers are ignored',
    )
    login_window_s: float = Field(300.0, gt=0)
    auth_cache_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="how long a token's account lookup is reused "
        "(0: every request reads the user row); a deactivated account stops within it",
    )
    job_threads: int = Field(
        2, ge=1, le=64, description="jobs at once: in-process runner children, or per arq worker"
    )
    job_nice: int = Field(
        10, ge=0, le=19, description="CPU niceness of job processes/threads (reads stay fast)"
    )
    job_cpu_policy: Literal["batch", "idle", "nice"] = Field(
        "batch",
        description="CPU policy of the API's job processes (Linux): 'batch' (SCHED_BATCH + job_nice: "
        "requests preempt jobs at once, jobs still progress on a busy machine), 'idle' (SCHED_IDLE: only CPU "
        "nothing else wants; a busy machine starves jobs), 'nice' (niceness only)",
    )
    job_runner: Literal["process", "thread"] = Field(
        "process",
        description="in-process jobs (no Redis): niced child processes (default) or threads of the "
        "API process (the GIL then slows requests while jobs run)",
    )
    job_heartbeat_s: float = Field(5.0, gt=0)
    job_stale_s: float = Field(
        30.0,
        gt=0,
        description="a running job without heartbeat this long was interrupted "
        "(its process died): it is queued again (job_max_attempts) or failed",
    )
    job_timeout_s: float = Field(3600.0, gt=0)
    job_queue: str = Field("mixpilot:queue", description="arq queue name (Redis mode)")
    job_max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="runs of a job interrupted by a crash or restart before it fails with the reason",
    )
    job_retry_backoff_s: float = Field(
        2.0, ge=0, description="wait before re-running an interrupted job (doubled per attempt)"
    )
    max_queued_jobs: int = Field(
        10, ge=1, description="jobs one user may have queued or running at once (429 over)"
    )
    enhancement_wait_s: float = Field(300.0, gt=0, description="how long /enhancement/* waits before 202")
    # ---- rate limits (app/api/ratelimit.py): fixed one-minute windows, in Redis when redis_url is set; 0 = off
    rate_limit_per_minute: int = Field(
        1200, ge=0, description="API requests per minute per user (or API key); 429 + Retry-After over"
    )
    rate_limit_anonymous_per_minute: int = Field(
        600, ge=0, description="API requests per minute per client address without valid credentials"
    )
    rate_limit_jobs_per_minute: int = Field(
        60, ge=0, description="job submissions (chat, enhancement, retry) per minute per user"
    )
    webhook_max_endpoints: int = Field(
        10, ge=1, le=100, description="registered webhook endpoints per user (POST /api/v1/webhooks)"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='origins browsers may call the API from (JSON list, e.g. ["https://app.example.com"], '
        '"*" for any); empty: no CORS headers (app/api/security.py cors_options)',
    )
    max_api_keys: int = Field(50, ge=1, le=1000, description="API keys one user may hold (not revoked)")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        import re

        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(
                    f'cors_origins: {origin!r} is not an origin: scheme://host[:port] without a path (or "*")'
                )
        return value

    @model_validator(mode="after")
    def _secrets_outside_development(self) -> Settings:
        if self.environment == "production" and self.jwt_secret is not None:
            check_secret(self.jwt_secret.get_secret_value())
        return self

    def api_secret(self) -> str:
        """The JWT key; raises ValueError in production when missing or weak (the API refuses to start)."""
        if self.jwt_secret is not None:
            value = self.jwt_secret.get_secret_value()
            if self.environment == "production":
                check_secret(value)
            return value
        if self.environment == "production":
            raise ValueError(
                "MIXPILOT_JWT_SECRET is required in production "
                f"(>= {MIN_SECRET_CHARS} random characters, e.g. `openssl rand -hex 32`)"
            )
        if not hasattr(self, "_dev_secret"):
            object.__setattr__(self, "_dev_secret", secrets.token_urlsafe(48))
        return self._dev_secret  # type: ignore[attr-defined]

    def weight_sources(self) -> WeightSources:
        """Where model weights are looked for and installed (a surface hands it to
        `models.weights.use_sources` at start-up; nothing else reads these settings)."""
        from models.weights import WeightSources

        cache = self.xdg_cache_home or Path.home() / ".cache"
        hf_hub = self.hf_hub_cache or (
            (self.hf_home / "hub") if self.hf_home else cache / "huggingface" / "hub"
        )
        return WeightSources(
            models_dir=self.models_dir.expanduser(),
            mirror=self.model_mirror,
            demucs_dir=self.demucs_dir.expanduser() if self.demucs_dir else None,
            demucs_model=self.demucs_model,
            vocos_dir=self.vocos_dir.expanduser() if self.vocos_dir else None,
            torch_hub_dir=(self.torch_home or cache / "torch") / "hub" / "checkpoints",
            hf_hub_cache=hf_hub,
            opgan_weights=self.opgan_weights.expanduser() if self.opgan_weights else None,
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_decoded_samples(self) -> int:
        """`max_decoded_mb` as float32 samples (frames × channels)."""
        return int(self.max_decoded_mb * 1024 * 1024) // 4

    @property
    def user_audio_bytes(self) -> int:
        return int(self.user_audio_mb * 1024 * 1024)

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def models_dir(self) -> Path:
        return self.models_dir_ if self.models_dir_ is not None else self.data_dir / "models"

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "threads.sqlite"


def check_secret(value: str) -> None:
    """Raise ValueError for a default, placeholder or short secret."""
    if value.strip().lower() in WEAK_SECRETS or len(value) < MIN_SECRET_CHARS or len(set(value)) < 8:
        raise ValueError(
            f"MIXPILOT_JWT_SECRET is a placeholder or too short for production: use >= "
            f"{MIN_SECRET_CHARS} random characters (e.g. `openssl rand -hex 32`)"
        )
