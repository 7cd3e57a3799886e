"""Evaluation: the head's metrics (accuracy, micro/macro-F1, MAE and Spearman), relative
FLOPs and kept tokens."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ltp.core.artifact import Artifact
from ltp.core.flops import dense_kept, encoder_flops, model_flops
from ltp.core.heads import MULTI_LABEL, REGRESSION, targets
from ltp.core.text import length_sorted_batches
from ltp.data.datasets import Example
from ltp.data.encoding import encode_examples
from ltp.eval.metrics import classification_metrics, multilabel_metrics, regression_metrics


def predict_logits(artifact: Artifact, examples: list[Example], mode: str = "compact",
                   batch_size: int = 64, truncate_to: int | None = None, progress: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """(N, C) fp32 logits and (N, L) tokens kept after each layer, in the order of
    ``examples``; and their inputs, full length and as run (``truncate_to``)."""
    if not examples:
        raise ValueError("no examples to evaluate")
    full = encode_examples(artifact.tokenizer, examples, artifact.meta.max_length)
    inputs = encode_examples(artifact.tokenizer, examples, truncate_to) if truncate_to else full
    logits = torch.zeros(len(examples), artifact.model.encoder.num_labels)
    kept = torch.zeros(len(examples), artifact.model.encoder.num_layers, dtype=torch.long)
    with torch.inference_mode():
        for group in tqdm(length_sorted_batches(inputs, batch_size), desc=f"eval {mode}",
                          unit="batch", disable=not progress, dynamic_ncols=True, leave=False):
            out = artifact.forward([inputs[i] for i in group], mode=mode)
            logits[group] = out.logits.float().cpu()
            kept[group] = out.kept_tokens
    return logits, kept, inputs, full


def head_metrics(artifact: Artifact, logits: torch.Tensor, examples: list[Example],
                 decided: torch.Tensor) -> dict:
    """The head's metrics of its ``decided`` answers (from ``logits``) against the examples'
    labels, with the task loss and the headline figure (``metric`` names it, ``score``
    holds it)."""
    head, labels = artifact.meta.head, artifact.meta.labels
    y = targets(head.problem_type, [e.label for e in examples], len(labels))
    loss = float(head.loss(logits, y))
    if head.problem_type == MULTI_LABEL:
        out = multilabel_metrics(y.bool().numpy(), decided.numpy(), labels)
        out["thresholds"] = head.label_thresholds(len(labels))
    elif head.problem_type == REGRESSION:
        out = regression_metrics(y.numpy(), decided.numpy())
    else:
        out = classification_metrics(y.tolist(), decided.tolist(), labels)
    return out | {"metric": head.metric, "score": out[head.metric], "loss": loss}


def evaluate(
    artifact: Artifact,
    examples: list[Example],
    mode: str = "compact",
    batch_size: int = 64,
    truncate_to: int | None = None,
    progress: bool = False,
    decisions: bool = False,
) -> dict:
    """Evaluate on ``examples``.

    FLOPs are relative to the dense model on the full inputs (up to the artifact's max
    length), so truncation (``truncate_to``) is charged against the same reference as
    pruning. ``decisions``: also each example's decision (label index, label set or value),
    in the order of ``examples``.
    """
    enc = artifact.model.encoder
    logits, kept, inputs, full = predict_logits(artifact, examples, mode, batch_size,
                                                truncate_to, progress)
    n_full = torch.tensor([e.num_tokens for e in full])
    n_in = torch.tensor([e.num_tokens for e in inputs])
    d, d_ff, c = enc.hidden_size, enc.intermediate_size, enc.num_labels
    reference = dense_kept(n_full, enc.num_layers)
    flops = encoder_flops(d, d_ff, n_in, kept).sum()
    whole = model_flops(d, d_ff, c, n_in, kept, dense=mode == "dense").sum()
    decided = artifact.meta.head.decide(logits)
    extra = {"decisions": decided.tolist()} if decisions else {}
    return head_metrics(artifact, logits, examples, decided) | extra | {
        "relative_flops": float(flops / encoder_flops(d, d_ff, n_full, reference).sum()),
        "relative_model_flops": float(whole / model_flops(d, d_ff, c, n_full, reference, True).sum()),
        "kept_tokens_per_layer": [round(float(x), 2) for x in kept.double().mean(0)],
        "kept_fraction_per_layer": [round(float(x), 4) for x in kept.sum(0) / n_in.sum()],
        "examples": len(examples),
        "mean_input_tokens": float(n_full.double().mean()),
        "mode": mode,
        "truncate_to": truncate_to,
    }
