"""Evaluation: accuracy, macro-F1, per-class figures, relative FLOPs and kept tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ltp.core.artifact import Artifact
from ltp.core.flops import dense_kept, encoder_flops, model_flops
from ltp.core.text import length_sorted_batches
from ltp.data.datasets import Example
from ltp.data.encoding import encode_examples
from ltp.eval.metrics import classification_metrics


def evaluate(
    artifact: Artifact,
    examples: list[Example],
    mode: str = "compact",
    batch_size: int = 64,
    truncate_to: int | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate on ``examples``.

    FLOPs are relative to the dense model on the full inputs (up to the artifact's max
    length), so truncation (``truncate_to``) is charged against the same reference as
    pruning.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    enc = artifact.model.encoder
    max_length = artifact.meta.max_length
    full = encode_examples(artifact.tokenizer, examples, max_length)
    inputs = encode_examples(artifact.tokenizer, examples, truncate_to) if truncate_to else full
    labels = torch.tensor([e.label for e in examples])
    kept = torch.zeros(len(examples), enc.num_layers, dtype=torch.long)
    predicted = torch.zeros(len(examples), dtype=torch.long)
    loss = 0.0
    batches = length_sorted_batches(inputs, batch_size)
    with torch.inference_mode():
        for group in tqdm(batches, desc=f"eval {mode}", unit="batch", disable=not progress,
                          dynamic_ncols=True, leave=False):
            out = artifact.forward([inputs[i] for i in group], mode=mode)
            logits = out.logits.float().cpu()
            predicted[group] = logits.argmax(-1)
            loss += float(F.cross_entropy(logits, labels[group], reduction="sum"))
            kept[group] = out.kept_tokens
    metrics = classification_metrics(labels.tolist(), predicted.tolist(), artifact.meta.labels)
    n_full = torch.tensor([e.num_tokens for e in full])
    n_in = torch.tensor([e.num_tokens for e in inputs])
    d, d_ff, c = enc.hidden_size, enc.intermediate_size, enc.num_labels
    reference = dense_kept(n_full, enc.num_layers)
    flops = encoder_flops(d, d_ff, n_in, kept).sum()
    whole = model_flops(d, d_ff, c, n_in, kept, dense=mode == "dense").sum()
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "per_class": metrics["per_class"],
        "loss": loss / len(examples),
        "relative_flops": float(flops / encoder_flops(d, d_ff, n_full, reference).sum()),
        "relative_model_flops": float(whole / model_flops(d, d_ff, c, n_full, reference, True).sum()),
        "kept_tokens_per_layer": [round(float(x), 2) for x in kept.double().mean(0)],
        "kept_fraction_per_layer": [round(float(x), 4) for x in kept.sum(0) / n_in.sum()],
        "examples": len(examples),
        "mean_input_tokens": float(n_full.double().mean()),
        "mode": mode,
        "truncate_to": truncate_to,
    }
