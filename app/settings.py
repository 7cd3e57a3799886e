"""Service settings: the one place each limit and default is written.

Read from ``LTP_*`` environment variables; ``ltp serve`` generates its flags from these
fields (name, type, default and help), so flags, variables and defaults cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ltp.core.config import ENGINES, PRECISIONS
from ltp.core.precision import MAX_DROP

DTYPES = ("auto", *PRECISIONS)
SMALL_BATCH, LARGE_BATCH = 8, 32  # max_batch_size's auto values
ENGINE_CHOICES = ("auto", *ENGINES)
WORKER_SCHEDULING = ("idle", "normal")
CHOICES = {"dtype": DTYPES, "engine": ENGINE_CHOICES, "worker_scheduling": WORKER_SCHEDULING}


class Settings(BaseSettings):
    """Validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="LTP_", extra="ignore")

    # -- models -------------------------------------------------------------------------
    models_dir: Path = Field(Path("models"), description="folder of LTP artifacts")
    models: list[str] = Field(default_factory=list, description=(
        "artifact folder names under models_dir to load; empty: every LTP artifact found"))
    default_model: str = Field("sentiment-minilm-ltp", description="model of requests that name none")
    device: str = Field("auto", description="auto (CUDA when present), cpu or cuda")
    dtype: str = Field("auto", description=(
        "precision: " + ", ".join(DTYPES) + "; auto times a warm-up in each precision this CPU "
        f"runs natively and serves the fastest whose recorded accuracy is within {MAX_DROP * 100:g} pt "
        "of fp32"))
    engine: str = Field("auto", description=(
        "how the pruned forward executes: " + ", ".join(ENGINE_CHOICES) + "; auto times a "
        "warm-up of each engine (eager torch, ONNX Runtime) with each accurate native "
        "precision, and serves the fastest pair"))
    # -- workers ------------------------------------------------------------------------
    workers: int = Field(0, description=(
        "inference workers, batches run side by side (0: auto, 2 on a CPU of 2+ cores, 1 on a GPU)"))
    threads: int = Field(0, description="torch threads of each worker (0: the CPU cores / workers)")
    worker_scheduling: str = Field("idle", description=(
        "CPU scheduling of the inference workers and the threads they start: idle (Linux's "
        "SCHED_IDLE: the event loop, which reads requests and answers refusals and probes, "
        "runs first whenever it has work, and inference takes the rest of the cores) or "
        "normal (the workers share the cores with the loop). idle also yields to other busy "
        "processes of the service's own cgroup (its container): normal where the service "
        "shares one with other CPU-bound work"))
    # -- batching -----------------------------------------------------------------------
    max_batch_size: int = Field(0, ge=0, description=(
        "sequences per batch (0: auto, by the loaded models' engines: "
        f"{SMALL_BATCH} where every model runs one input per call (the ort engine's whole "
        "forward), so a bigger batch buys no speed and only lengthens the burst of answers "
        f"and new requests the event loop handles at once as a batch ends; else {LARGE_BATCH})"))
    max_batch_tokens: int = Field(8192, description="padded tokens per batch: batch size x longest")
    max_batch_ms: float = Field(250.0, description=(
        "most compute one batch may take on a worker, by the measured cost per token (0: no "
        "cap); a request's latency is its wait plus its batch"))
    max_wait_ms: float = Field(0.0, description=(
        "how long an idle worker waits for a batch to fill (a busy one lets it grow anyway)"))
    max_padding_ratio: float = Field(0.3, description=(
        "most of a batch's padded tokens that may be padding; on a CPU the packed forward "
        "computes only live tokens past the embeddings, so padding costs little there; on a "
        "GPU attention runs padded"))
    bucket_width: int = Field(16, description="tokens per length bucket of the queue")
    # -- admission ----------------------------------------------------------------------
    max_queue_wait_ms: float = Field(400.0, description=(
        "refuse (429) a request when the work queued ahead of it, by the measured cost per "
        "token, would take longer than this to start"))
    max_queue_sequences: int = Field(2048, description="hard cap on queued sequences (429 beyond)")
    admitted_per_turn: int = Field(8, ge=1, description=(
        "requests admitted before parsing that go on to be parsed in one turn of the event "
        "loop; the rest wait a turn, so that requests arriving meanwhile are decided (and "
        "refused) first in a burst"))
    request_timeout_s: float = Field(30.0, description=(
        "deadline of a request; a client may ask for less with X-Request-Timeout-Ms"))
    # -- request limits -----------------------------------------------------------------
    max_inputs: int = Field(64, description="inputs per request")
    max_text_chars: int = Field(20_000, description="characters per input text")
    max_body_bytes: int = Field(1_000_000, description="request body size")
    max_model_name_chars: int = Field(128, description="length of a requested model name")
    api_key: str | None = Field(None, description="if set, required as Bearer token or X-API-Key")
    # -- server -------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="address to listen on")
    port: int = Field(8000, description="port to listen on")
    keep_alive_s: float = Field(75.0, description=(
        "idle keep-alive of client connections; above any proxy's upstream keep-alive "
        "(nginx here: 60 s) so the proxy, not the service, closes idle connections"))
    gil_switch_ms: float = Field(1.0, description=(
        "Python's thread switch interval: how long the event loop may wait for the GIL"))
    trim_interval_s: float = Field(5.0, description=(
        "return the heap's free pages to the OS at most this often (0: never)"))
    log_json: bool = Field(False, description="log one JSON object per line")
    access_log: bool = Field(False, description=(
        "one log line per request (off: under load it costs event-loop time; the metrics "
        "count every request)"))
    warmup: bool = Field(True, description="run real forwards before reporting ready")

    def server_options(self) -> dict:
        """uvicorn's options from these settings (``ltp serve`` and the tests' servers)."""
        return dict(host=self.host, port=self.port, timeout_keep_alive=self.keep_alive_s,
                    access_log=self.access_log, timeout_graceful_shutdown=30)

    @field_validator(*CHOICES)
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        choices = CHOICES[info.field_name]
        if value not in choices:
            raise ValueError(f"{info.field_name} must be one of {', '.join(choices)}")
        return value

    @field_validator("max_batch_tokens", "max_queue_sequences", "max_inputs", "bucket_width")
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
