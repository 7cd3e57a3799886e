"""The kernel seam of the compact forward.

The layer loop (``LTPModel``) is written once; an engine executes its three steps on packed
rows (the live tokens of the batch, ``ltp.core.packing``) with per-input lengths:

* ``attention(layer, rows, counts, need_scores)``: the layer's projections and
  self-attention of each input over its own tokens -> context rows and, when the layer
  prunes, the attention each token received (fp32: the keep rule compares it with a
  threshold);
* ``feed_forward(layer, ctx, residual)``: output projection, residual and LayerNorm,
  feed-forward, residual and LayerNorm, on the rows that were kept;
* ``first_token(rows, counts)``: the last layer for the classifier tokens alone (keys and
  values of every row, one query per input), whose output is all the head reads.

An engine may also run the whole pruned forward in one step (``whole``), with the same
scores and keep rule compiled in (ONNX Runtime: one graph per input, or per group of inputs
of similar length).

Scores, the keep rule and the gathers stay in the loop, in fp32 torch, whatever the engine,
so keep decisions mean the same thing on every engine. An engine is chosen when the model is
loaded (``LTPModel.set_engine``); a new engine is one new class.
"""

from __future__ import annotations

from typing import ClassVar

import torch


def tensor_stamp(*tensors: torch.Tensor) -> tuple | None:
    """What changes whenever any of ``tensors`` may have: each one's identity, version (every
    in-place write bumps it) and storage. Equal stamps: the values are those seen before.
    None for tensors made under ``torch.inference_mode``, which keep no version: a change
    cannot be told from the stamp, so no two stamps compare as equal."""
    if any(t.is_inference() for t in tensors):
        return None
    return tuple((id(t), t._version, t.data_ptr()) for t in tensors)


class EngineError(ValueError):
    """An engine that does not exist, or cannot run this model here."""


class Engine:
    """One way to execute the compact forward's kernels."""

    name: ClassVar[str]
    # what the engine runs (names of ltp.core.config.PRECISIONS) and where
    precisions: ClassVar[tuple[str, ...]]
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def __init__(self, model, **options) -> None:  # model: the LTPModel it executes for
        if options:
            raise TypeError(f"the {self.name} engine takes no options, got {sorted(options)}")
        self.model = model
        self.encoder = model.encoder
        self.options: dict = {}  # what it was made with: ``make_engine`` makes it again

    def attention(self, layer: int, rows: torch.Tensor, counts: torch.Tensor, need_scores: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows (N, d) of inputs of ``counts`` (B,) tokens -> context (N, d) and, with
        ``need_scores``, the attention each token receives, summed over heads and query
        rows (N,) fp32."""
        raise NotImplementedError

    def feed_forward(self, layer: int, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """The rest of the layer on kept rows: (N', d), (N', d) -> (N', d)."""
        raise NotImplementedError

    def first_token(self, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The last layer for each input's classifier token: rows (N, d) -> (B, d)."""
        raise NotImplementedError

    def whole(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole pruned forward in one step, where an engine can run it so: a right-padded
        batch (B, T) -> logits (B, C) and tokens kept after each layer (B, L); None (the
        default): the model runs its layer loop."""
        return None

    @property
    def one_input_per_call(self) -> bool:
        """Whether a batch runs as one call per input (no gain from batching inputs
        together, as ``whole`` on ONNX Runtime with groups of one); the service sizes its
        batches by it."""
        return False

    def describe(self) -> dict:
        """What this engine is, for ``/models``, ``/info`` and benchmark reports."""
        return {"engine": self.name}
