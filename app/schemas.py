"""Request and response models of the HTTP API: ours, and the TEI and Infinity shapes."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import orjson
from annotated_types import Len
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from app.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)

# a text with at least one character that is not white space
Text = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
Pair = Annotated[list[Text], Len(2, 2)]  # [text, second text]
TextInput = Text | Pair
# the length limit is the service's setting (max_model_name_chars), checked where a name is resolved
MODEL_NAME = dict(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


def parse_json(raw: bytes):
    """The body as Python objects; malformed JSON (bad UTF-8, lone surrogates, nesting past
    1,024 levels) is a 422."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"invalid JSON: {exc}") from None


def validate(model: type[M], data) -> M:
    """Validate parsed JSON against ``model``; any fault is a 422 naming the field.

    The message never repeats the input: a client's text (or a megabyte of model name) is
    not echoed back.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise InvalidInputError(f"{where}: {first['msg']}" if where else first["msg"]) from None


# -- ours ---------------------------------------------------------------------------------

class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Text | Annotated[list[TextInput], Len(min_length=1)] = Field(
        description="a text, a list of texts, or a list of [text, second text] pairs",
        examples=["a thoroughly enjoyable film", ["great", "awful"]],
    )
    model: str | None = Field(None, description="model name; the default when absent", **MODEL_NAME)
    truncate: bool = Field(default=True, description="cut inputs to the model's max length")
    top_k: int | None = Field(default=None, ge=1, description="return only the k best labels")
    details: bool = Field(default=False, description="include kept tokens per layer")
    raw_scores: bool = Field(default=False, description="logits instead of probabilities")

    def items(self) -> list[tuple[str, str | None]]:
        items = [self.inputs] if isinstance(self.inputs, str) else self.inputs
        return [(i[0], i[1]) if isinstance(i, list) else (i, None) for i in items]


class LabelScore(BaseModel):
    label: str
    score: float


class Prediction(BaseModel):
    label: str = Field(description="the best label (regression: the output's name)")
    score: float = Field(description="its score: a probability, a label's own sigmoid "
                         "(multi-label), the value (regression), or a logit with raw_scores")
    scores: list[LabelScore] = Field(description="every label, best first; multi-label: each "
                                     "label's independent score")
    labels: list[str] | None = Field(None, description=(
        "multi-label models only: the labels whose score reaches their threshold (the "
        "model's, per label, in GET /models), best first; may be empty"))
    value: float | None = Field(None, description="regression models only: the predicted value")
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
    problem_type: str = Field(description="single_label_classification (softmax), "
                              "multi_label_classification (a sigmoid per label) or regression")
    label_thresholds: list[float] | None = Field(None, description=(
        "multi-label: the score at or above which each label is given"))
    max_length: int
    thresholds: list[float]
    device: str
    dtype: str = Field(description="the precision it runs in: fp32, bf16, fp16 or int8")
    engine: str = Field("eager", description="how its pruned forward executes: eager torch or "
                        "ONNX Runtime (ort)")
    dtype_reason: str = Field(description="why this precision and engine: set by --dtype and "
                              "--engine, or what auto measured")
    eval: dict


class ModelList(BaseModel):
    models: list[ModelInfo]


# -- Infinity: POST /classify with `input` ------------------------------------------------

class InfinityClassifyRequest(BaseModel):
    """Infinity's body; told apart from ours by its `input` key."""

    input: list[Text] = Field(min_length=1, description="texts to classify")
    model: str = Field("default/not-specified", description=(
        "model name; ignored when one model is loaded, as Infinity does"), **MODEL_NAME)
    raw_scores: bool = Field(False, description="logits instead of probabilities")


class ScoreLabel(BaseModel):
    score: float
    label: str


class InfinityUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class InfinityClassifyResponse(BaseModel):
    object: Literal["classify"] = "classify"
    data: list[list[ScoreLabel]]
    model: str
    usage: InfinityUsage
    id: str
    created: int


# -- TEI: POST /predict, GET /info, POST /tokenize ----------------------------------------

class HFParameters(BaseModel):
    """The Hugging Face inference API's text-classification parameters."""

    top_k: int | None = Field(None, ge=1, description="only the k best labels")
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        None, description="instead of the model's own (softmax, a sigmoid per label, none)")


class PredictRequest(BaseModel):
    """TEI's body. `inputs`: a text, a pair `[a, b]`, or a batch `[[a], [a, b], ...]`; the
    first element decides, as in TEI."""

    inputs: Text | Annotated[list[Text], Len(1, 2)] | Annotated[
        list[Annotated[list[Text], Len(1, 2)]], Len(min_length=1)] = Field(examples=["I like you.",
                                                              [["I like you."], ["I hate pineapples"]]])
    truncate: bool | None = Field(None, description="cut to the max length; null: the server's (true)")
    truncation_direction: Literal["Left", "left", "Right", "right"] = "Right"
    raw_scores: bool = Field(False, description="logits instead of probabilities")
    parameters: HFParameters | None = Field(None, description=(
        "not TEI's: the Hugging Face inference API's text-classification parameters, which "
        "its clients (huggingface_hub's InferenceClient) send; with them the answer is one "
        "list per input, as that API's, and top_k / function_to_apply apply"))

    @property
    def is_batch(self) -> bool:
        return isinstance(self.inputs, list) and isinstance(self.inputs[0], list)

    def items(self) -> list[tuple[str, str | None]]:
        def item(x) -> tuple[str, str | None]:
            x = [x] if isinstance(x, str) else x
            return x[0], (x[1] if len(x) > 1 else None)

        return [item(x) for x in self.inputs] if self.is_batch else [item(self.inputs)]


class TokenizeRequest(BaseModel):
    inputs: Text | Annotated[list[Text], Len(min_length=1)] = Field(examples=["test"])
    add_special_tokens: bool = True


class SimpleToken(BaseModel):
    id: int
    text: str
    special: bool
    start: int | None = Field(description="UTF-8 byte offset in the input; null for special tokens")
    stop: int | None


class ClassifierType(BaseModel):
    id2label: dict[str, str]
    label2id: dict[str, int]


class RerankRequest(BaseModel):
    """TEI's rerank body: a query scored against each text, as pairs, by a one-output model."""

    query: Text
    texts: Annotated[list[Text], Len(min_length=1)]
    truncate: bool | None = Field(None, description="cut to the max length; null: the server's (true)")
    truncation_direction: Literal["Left", "left", "Right", "right"] = "Right"
    raw_scores: bool = False
    return_text: bool = False


class Rank(BaseModel):
    index: int
    text: str | None = Field(None, description="present with return_text")
    score: float


class DecodeRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=0)]] | Annotated[
        list[list[Annotated[int, Field(ge=0)]]], Len(min_length=1)]
    skip_special_tokens: bool = True


class VertexRequest(BaseModel):
    """Vertex AI's body: each instance a predict body (a rerank body for a reranker)."""

    instances: list[dict]


class Info(BaseModel):
    """TEI's /info, for the default model, with this server's limits."""

    model_id: str
    model_sha: str | None = None
    model_dtype: str
    served_model_name: str
    model_type: dict[Literal["classifier", "reranker"], ClassifierType] = Field(description=(
        "TEI's: a model with one output is a reranker, with more a classifier"))
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None = None
    docker_label: str | None = None
    engine: str = Field("eager", description="not TEI's: how the pruned forward executes")
