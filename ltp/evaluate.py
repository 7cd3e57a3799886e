"""Evaluation: accuracy, relative FLOPs and kept tokens on a split."""

from __future__ import annotations

import torch

from ltp.artifact import Artifact
from ltp.data import Example
from ltp.flops import dense_kept, encoder_flops, model_flops
from ltp.text import length_sorted_batches, pad_batch
from ltp.train import encode_examples


def evaluate(
    artifact: Artifact,
    examples: list[Example],
    mode: str = "compact",
    batch_size: int = 64,
    truncate_to: int | None = None,
) -> dict:
    """Evaluate on ``examples``.

    FLOPs are relative to the dense model on the full inputs (up to the artifact's max
    length), so truncation (``truncate_to``) is charged against the same reference as
    pruning.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    model, enc = artifact.model, artifact.model.encoder
    max_length = artifact.meta.max_length
    full = encode_examples(artifact, examples, max_length)
    inputs = encode_examples(artifact, examples, truncate_to) if truncate_to else full
    labels = torch.tensor([e.label for e in examples])
    kept = torch.zeros(len(examples), enc.num_layers, dtype=torch.long)
    correct = 0
    with torch.inference_mode():
        for group in length_sorted_batches(inputs, batch_size):
            b = pad_batch([inputs[i] for i in group], artifact.tokenizer.pad_token_id)
            b = b.to(artifact.device)
            out = model(b.input_ids, b.attention_mask, b.token_type_ids, mode=mode)
            correct += int((out.logits.argmax(-1).cpu() == labels[group]).sum())
            kept[group] = out.kept_tokens
    n_full = torch.tensor([e.num_tokens for e in full])
    n_in = torch.tensor([e.num_tokens for e in inputs])
    d, d_ff, c = enc.hidden_size, enc.intermediate_size, enc.num_labels
    reference = dense_kept(n_full, enc.num_layers)
    flops = encoder_flops(d, d_ff, n_in, kept).sum()
    whole = model_flops(d, d_ff, c, n_in, kept, dense=mode == "dense").sum()
    return {
        "accuracy": correct / len(examples),
        "relative_flops": float(flops / encoder_flops(d, d_ff, n_full, reference).sum()),
        "relative_model_flops": float(whole / model_flops(d, d_ff, c, n_full, reference, True).sum()),
        "kept_tokens_per_layer": [round(float(x), 2) for x in kept.double().mean(0)],
        "kept_fraction_per_layer": [round(float(x), 4) for x in kept.sum(0) / n_in.sum()],
        "examples": len(examples),
        "mean_input_tokens": float(n_full.double().mean()),
        "mode": mode,
        "truncate_to": truncate_to,
    }
