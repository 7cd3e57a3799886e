"""Service settings, from LTP_* environment variables (and `ltp serve` flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="LTP_", extra="ignore")

    models_dir: Path = Path("models")
    # artifact folder names under models_dir to load; empty: every LTP artifact found
    models: list[str] = Field(default_factory=list)
    default_model: str = "sentiment-minilm-ltp"
    device: str = "auto"  # auto: CUDA when present
    dtype: str = "fp32"
    # inference workers: batches run side by side, each on its own thread (0: auto, 2 on a
    # CPU of 2 or more cores, 1 on a GPU)
    workers: int = 0
    threads: int = 0  # torch threads of each worker (0: auto, the CPU cores / workers)
    # micro-batching
    max_batch_size: int = 32
    max_batch_tokens: int = 8192  # padded tokens per batch: batch size x longest input
    # how long an idle worker waits for a batch to fill (a busy one lets it grow anyway)
    max_wait_ms: float = 0.0
    max_padding_ratio: float = 0.3  # most of a batch's padded tokens that may be padding
    max_queue_sequences: int = 2048  # beyond this, 429
    # limits
    max_inputs: int = 64  # per request
    max_text_chars: int = 20_000  # per input text
    max_body_bytes: int = 1_000_000
    request_timeout_s: float = 30.0
    api_key: str | None = None
    # server
    host: str = "0.0.0.0"
    port: int = 8000
    log_json: bool = False
    warmup: bool = True

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        if value not in ("fp32", "bf16", "fp16"):
            raise ValueError("dtype must be fp32, bf16 or fp16")
        return value

    @field_validator("max_batch_size", "max_batch_tokens", "max_queue_sequences", "max_inputs")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("workers", "threads")
    @classmethod
    def _auto_or_positive(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0 (0: auto)")
        return value
