"""The one place that knows each architecture family and how to reach its weights.

The pruned forward owns the encoder loop but reuses the Hugging Face modules' parameters:
every family is reduced to embeddings, a list of post-LayerNorm layers, and a head that
maps the classifier token's hidden state to logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


class UnsupportedModelError(ValueError):
    """The checkpoint is not a BERT, RoBERTa or DistilBERT sequence classifier."""


@dataclass(frozen=True)
class LayerParts:
    """The weights of one post-LayerNorm encoder layer, borrowed from the HF module."""

    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attn_out: nn.Linear
    attn_norm: nn.LayerNorm
    ffn_in: nn.Linear
    ffn_out: nn.Linear
    ffn_norm: nn.LayerNorm
    activation: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Encoder:
    """A family-neutral view of a sequence classifier."""

    family: str
    hidden_size: int
    num_heads: int
    intermediate_size: int
    num_labels: int
    attn_dropout: float
    hidden_dropout: float
    embed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    layers: list[LayerParts]
    head: Callable[[torch.Tensor], torch.Tensor]  # (B, d) classifier-token state -> (B, C)

    @property
    def num_layers(self) -> int:
        return len(self.layers)


def family_of(model: nn.Module) -> str:
    """Return the family name of a HF sequence classifier, or raise UnsupportedModelError."""
    model_type = getattr(model.config, "model_type", None)
    if model_type in ("bert", "roberta", "xlm-roberta"):
        return "roberta" if model_type != "bert" else "bert"
    if model_type == "distilbert":
        return "distilbert"
    raise UnsupportedModelError(
        f"model_type {model_type!r} is not supported; use a BERT, RoBERTa or DistilBERT classifier"
    )


def _bert_layer(layer: nn.Module) -> LayerParts:
    att = layer.attention
    return LayerParts(
        query=att.self.query,
        key=att.self.key,
        value=att.self.value,
        attn_out=att.output.dense,
        attn_norm=att.output.LayerNorm,
        ffn_in=layer.intermediate.dense,
        ffn_out=layer.output.dense,
        ffn_norm=layer.output.LayerNorm,
        activation=layer.intermediate.intermediate_act_fn,
    )


def _distilbert_layer(layer: nn.Module) -> LayerParts:
    att = layer.attention
    return LayerParts(
        query=att.q_lin,
        key=att.k_lin,
        value=att.v_lin,
        attn_out=att.out_lin,
        attn_norm=layer.sa_layer_norm,
        ffn_in=layer.ffn.lin1,
        ffn_out=layer.ffn.lin2,
        ffn_norm=layer.output_layer_norm,
        activation=layer.ffn.activation,
    )


def _bert_like_encoder(model: nn.Module, family: str, base: nn.Module,
                       head: Callable[[torch.Tensor], torch.Tensor]) -> Encoder:
    """BERT and RoBERTa share layers and config names; they differ in base and head."""
    cfg = model.config

    def embed(input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        # RoBERTa derives position ids from the padding id, so right padding is required.
        return base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

    return Encoder(
        family=family,
        hidden_size=cfg.hidden_size,
        num_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        num_labels=cfg.num_labels,
        attn_dropout=cfg.attention_probs_dropout_prob,
        hidden_dropout=cfg.hidden_dropout_prob,
        embed=embed,
        layers=[_bert_layer(layer) for layer in base.encoder.layer],
        head=head,
    )


def _bert_encoder(model: nn.Module) -> Encoder:
    if model.bert.pooler is None:
        raise UnsupportedModelError("BERT classifier without a pooler is not supported")

    def head(cls: torch.Tensor) -> torch.Tensor:
        pooled = model.bert.pooler(cls.unsqueeze(1))
        return model.classifier(model.dropout(pooled))

    return _bert_like_encoder(model, "bert", model.bert, head)


def _roberta_encoder(model: nn.Module) -> Encoder:
    def head(cls: torch.Tensor) -> torch.Tensor:
        return model.classifier(cls.unsqueeze(1))  # the head reads features[:, 0]

    return _bert_like_encoder(model, "roberta", model.roberta, head)


def _distilbert_encoder(model: nn.Module) -> Encoder:
    cfg = model.config
    base = model.distilbert

    def embed(input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        return base.embeddings(input_ids=input_ids)  # no segment embeddings in DistilBERT

    def head(cls: torch.Tensor) -> torch.Tensor:
        pooled = torch.relu(model.pre_classifier(cls))
        return model.classifier(model.dropout(pooled))

    return Encoder(
        family="distilbert",
        hidden_size=cfg.dim,
        num_heads=cfg.n_heads,
        intermediate_size=cfg.hidden_dim,
        num_labels=cfg.num_labels,
        attn_dropout=cfg.attention_dropout,
        hidden_dropout=cfg.dropout,
        embed=embed,
        layers=[_distilbert_layer(layer) for layer in base.transformer.layer],
        head=head,
    )


_BUILDERS: dict[str, Callable[[nn.Module], Encoder]] = {
    "bert": _bert_encoder,
    "roberta": _roberta_encoder,
    "distilbert": _distilbert_encoder,
}


def encoder_of(model: nn.Module) -> Encoder:
    """Build the family-neutral view of a HF ``*ForSequenceClassification`` model."""
    family = family_of(model)
    try:
        return _BUILDERS[family](model)
    except AttributeError as exc:
        raise UnsupportedModelError(
            f"{type(model).__name__} is not a {family} sequence classifier: {exc}"
        ) from exc
