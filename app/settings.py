"""mixpilot settings, from the environment (prefix MIXPILOT_) and a `.env` file.

Built once at start-up by a surface (CLI, API, UI) and passed down; never created at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    import os

    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "mixpilot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXPILOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="where files, SQLite and Chroma live")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the data dir")
    redis_url: str | None = None
    chroma_url: str | None = None
    max_duration_s: float = Field(30 * 60.0, gt=0)

    llm_model: str | None = None
    llm_provider: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "threads.sqlite"
