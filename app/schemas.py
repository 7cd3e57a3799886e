"""Request and response models of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

TextInput = str | list[str]  # a text, or a [text, second text] pair


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: str | list[TextInput] = Field(
        description="a text, a list of texts, or a list of [text, second text] pairs",
        examples=["a thoroughly enjoyable film", ["great", "awful"]],
    )
    model: str | None = Field(default=None, description="model name; the default when absent")
    truncate: bool = Field(default=True, description="cut inputs to the model's max length")
    top_k: int | None = Field(default=None, ge=1, description="return only the k best labels")
    details: bool = Field(default=False, description="include kept tokens per layer")

    @field_validator("inputs")
    @classmethod
    def _shape(cls, value):
        items = [value] if isinstance(value, str) else value
        if not items:
            raise ValueError("inputs is empty")
        for item in items:
            if isinstance(item, list) and len(item) != 2:
                raise ValueError("a sentence pair is a list of exactly 2 texts")
            texts = item if isinstance(item, list) else [item]
            if any(not t.strip() for t in texts):
                raise ValueError("inputs contain an empty text")
        return value

    def items(self) -> list[tuple[str, str | None]]:
        items = [self.inputs] if isinstance(self.inputs, str) else self.inputs
        return [(i[0], i[1]) if isinstance(i, list) else (i, None) for i in items]


class LabelScore(BaseModel):
    label: str
    score: float


class Prediction(BaseModel):
    label: str
    score: float
    scores: list[LabelScore]
    input_tokens: int
    kept_tokens: int = Field(description="tokens left after the last layer that prunes")
    kept_tokens_per_layer: list[int] | None = None


class Usage(BaseModel):
    input_tokens: int
    flops: float = Field(description="encoder FLOPs actually spent (paper formula)")
    flops_dense: float = Field(description="the same without pruning")
    flops_saved_ratio: float


class ClassifyResponse(BaseModel):
    model: str
    results: list[Prediction]
    usage: Usage


class ModelInfo(BaseModel):
    name: str
    default: bool
    family: str
    labels: list[str]
    max_length: int
    thresholds: list[float]
    device: str
    dtype: str
    eval: dict


class ModelList(BaseModel):
    models: list[ModelInfo]
