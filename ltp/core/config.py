"""Pruning configuration: what is needed, besides the encoder's weights, to rebuild an LTP model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MODES: tuple[str, ...] = ("dense", "soft", "masked", "compact", "unpruned")
# How the compact forward executes (ltp.core.engines): eager PyTorch with attention input by
# input, eager with padded attention, ONNX Runtime, and varlen (FlashAttention on packed rows, GPU)
ENGINES: tuple[str, ...] = ("eager", "padded", "ort", "varlen")
# timed batches of ltp bench: similar lengths, or in data order (the mixed lengths a queue sees)
BATCH_ORDERS: tuple[str, ...] = ("length", "arrival")
STRATEGIES: tuple[str, ...] = ("threshold", "topk")
SOFT_STYLES: tuple[str, ...] = ("cumulative", "paper")
SCORE_NORMS: tuple[str, ...] = ("fixed", "median")
# Precisions a model runs in: the float dtypes (ltp.core.artifact maps them to torch dtypes) and
# int8 encoder linears (CPU, see ltp.core.quant). Named here, without torch, so that the service's
# settings and the command line can list them without importing torch.
FLOAT_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
PRECISIONS: tuple[str, ...] = (*FLOAT_PRECISIONS, "int8")
# The head's problem types, transformers' names (ltp.core.heads says what each does)
SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES: tuple[str, ...] = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)


@dataclass
class PruningConfig:
    """Learned Token Pruning settings for one model.

    Threshold of layer l is ``base_l + delta_l``: ``base`` is a linear ramp from 0 at the first
    layer to ``final_threshold`` at the last, ``delta`` is learned (zero until trained).
    """

    num_layers: int
    # Fixed normaliser N of the importance score: score_i = attention received / (heads * N).
    # The mean live-token score is then 1/N for every input length. Keep it equal to the
    # training max length; never the current length.
    normalizer: int = 128
    # End value of the threshold ramp (about 1/N is where pruning starts to bite).
    final_threshold: float = 0.01
    # Soft-stage sigmoid temperature: mask = sigmoid((score - theta) / temperature).
    temperature: float = 1e-3
    # Learned offsets, one per layer; None means all zero.
    delta: list[float] | None = None
    # "threshold" (LTP) or "topk" (baseline: keep the top keep_ratios[l] fraction of each
    # input's tokens after layer l, by the same importance score).
    strategy: str = "threshold"
    keep_ratios: list[float] | None = None
    # Soft stage: "cumulative" (keep probabilities multiply across layers and weight tokens
    # as keys and score rows) or "paper" (each layer's mask multiplies its output).
    soft_style: str = "cumulative"
    # Score scale: "fixed" (attention received / (heads x N), the paper's) or "median"
    # (each input's scores divided by its median live token's; see pruning.normalize_scores)
    score_norm: str = "fixed"
    # Compact forward: the tokens a layer drops leave as one fused token, their mean weighted
    # by importance score, that joins the kept ones (EViT's token fusion); off: they are gone
    fuse: bool = False

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.normalizer < 1:
            raise ValueError(f"normalizer must be >= 1, got {self.normalizer}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.delta is None:
            self.delta = [0.0] * self.num_layers
        if len(self.delta) != self.num_layers:
            raise ValueError(f"delta has {len(self.delta)} values for {self.num_layers} layers")
        if self.soft_style not in SOFT_STYLES:
            raise ValueError(f"soft_style must be one of {SOFT_STYLES}, got {self.soft_style!r}")
        if self.score_norm not in SCORE_NORMS:
            raise ValueError(f"score_norm must be one of {SCORE_NORMS}, got {self.score_norm!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy == "topk":
            ratios = self.keep_ratios or []
            if len(ratios) != self.num_layers or not all(0 < r <= 1 for r in ratios):
                raise ValueError("topk needs one keep ratio in (0, 1] per layer")

    @classmethod
    def cascade(cls, num_layers: int, target: float, start: int = 1, **kwargs) -> PruningConfig:
        """Top-k baseline: keep everything in the first ``start`` layers, then a keep ratio
        falling linearly to ``target`` at the last layer that prunes (the one before the
        last, whose output only the classifier token leaves)."""
        last = max(num_layers - 2, start)
        ratios = []
        for layer in range(num_layers):
            if layer < start:
                ratios.append(1.0)
            else:
                step = (layer - start + 1) / (last - start + 1)
                ratios.append(max(1.0 - step * (1.0 - target), target))
        return cls(num_layers=num_layers, strategy="topk", keep_ratios=ratios, **kwargs)

    def base(self) -> list[float]:
        """Linear ramp: 0 at layer 0, ``final_threshold`` at the last layer."""
        if self.num_layers == 1:
            return [0.0]
        step = self.final_threshold / (self.num_layers - 1)
        return [step * layer for layer in range(self.num_layers)]

    def thresholds(self) -> list[float]:
        """Effective per-layer thresholds, base + delta."""
        return [b + d for b, d in zip(self.base(), self.delta, strict=True)]

    def to_dict(self) -> dict:
        return asdict(self) | {"base": self.base(), "thresholds": self.thresholds()}

    @classmethod
    def from_dict(cls, data: dict) -> PruningConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

