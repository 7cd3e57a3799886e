"""Int8 linear layers, the pruned forward in each precision, and int8 artifacts."""

import pytest
import torch
from torch import nn

from ltp.core.artifact import load_artifact, save_artifact
from ltp.core.config import PruningConfig
from ltp.core.model import LTPModel
from ltp.core.quant import INT8_FILE, Int8Linear, is_int8, quantize_model, quantize_weight, save_int8
from tests.conftest import padded_batch, tiny_classifier


def test_int8_linear_is_close_to_fp32():
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.randn(10, 7, 64) * torch.logspace(-2, 1, 7)[None, :, None]  # tokens of any scale
    with torch.no_grad():
        for per_token in (True, False):
            assert Int8Linear.from_linear(linear, per_token)(x).shape == (10, 7, 48)
    with torch.no_grad():
        ref = linear(x)
        out = Int8Linear.from_linear(linear)(x)
    err = (out - ref).abs().amax(dim=-1) / ref.abs().amax(dim=-1)
    assert float(err.max()) < 0.05, "per-token ranges: small tokens keep their precision"


def test_weight_quantisation_is_per_output_channel():
    weight = torch.randn(6, 16) * torch.tensor([1e-3, 1e-2, 1e-1, 1, 10, 100])[:, None]
    q, scale = quantize_weight(weight)
    assert q.dtype == torch.int8 and scale.shape == (6,)
    err = (q.float() * scale[:, None] - weight).abs().amax(dim=1)
    assert bool((err <= scale / 2 * 1.001).all()), "each row's error is half its own step"
    assert bool((err / weight.abs().amax(dim=1) < 0.01).all())


def test_int8_result_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    linear = Int8Linear.from_linear(nn.Linear(32, 16))
    rows = torch.randn(12, 32)
    alone = linear(rows[:3])
    mixed = linear(torch.cat([rows[:3], rows[3:] * 50]))[:3]
    assert torch.equal(alone, mixed)


def test_fused_projections_equal_separate_ones():
    torch.manual_seed(0)
    lins = [Int8Linear.from_linear(nn.Linear(32, 32)) for _ in range(3)]
    x = torch.randn(5, 32)
    fused = Int8Linear.concat(lins)(x)
    torch.testing.assert_close(fused, torch.cat([lin(x) for lin in lins], dim=1))


def _far_thresholds(model: LTPModel, ids, mask) -> float:
    """Set each pruning layer's threshold in the widest gap of its fp32 scores (layer by
    layer, each given the decisions before it); returns the smallest relative margin."""
    layers = model.encoder.num_layers
    model.set_pruning(PruningConfig(num_layers=layers, normalizer=16, final_threshold=0.0))
    delta, margin = [0.0] * layers, float("inf")
    for layer in range(layers - 1):
        with torch.no_grad():
            scores, live = model(ids, mask, mode="masked").scores[layer]
        values = scores[:, 1:][live[:, 1:]].sort().values  # the classifier token always stays
        gaps = values[1:] / values[:-1]
        low, high = len(gaps) // 5, len(gaps) - len(gaps) // 5  # prune some, keep some
        best = low + int(gaps[low:high].argmax())
        delta[layer] = float((values[best] * values[best + 1]).sqrt())
        margin = min(margin, float(values[best + 1] / delta[layer] - 1))
        model.set_pruning(PruningConfig(num_layers=layers, normalizer=16, final_threshold=0.0,
                                        delta=delta))
    return margin


def _peaky_classifier():
    """A tiny BERT whose attention is far from uniform, so scores spread out."""
    hf = tiny_classifier("bert", num_layers=4)
    with torch.no_grad():
        for layer in hf.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(8)
            layer.attention.self.key.weight.mul_(8)
    return hf


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_keep_decisions_equal_fp32_when_margins_are_wide(precision):
    ids, mask = padded_batch(lengths=[12, 9, 2, 7])
    model = LTPModel(_peaky_classifier()).eval()
    margin = _far_thresholds(model, ids, mask)
    assert margin > 0.02, "the fixture's scores leave a wide gap in each layer"
    low = LTPModel(_peaky_classifier(), model.pruning).eval()
    if precision == "bf16":
        low = low.to(torch.bfloat16)
    else:
        quantize_model(low)
    with torch.no_grad():
        ref = model(ids, mask, track_tokens=True)
        out = low(ids, mask, track_tokens=True)
    assert ref.kept_tokens[:, :-1].float().mean() < ids.shape[1], "thresholds prune"
    assert torch.equal(out.token_layers, ref.token_layers)
    assert torch.equal(out.kept_tokens, ref.kept_tokens)
    torch.testing.assert_close(out.logits.float(), ref.logits, atol=0.05, rtol=0.05)


def test_int8_compact_equals_int8_masked_reference(hf_model, batch):
    model = LTPModel(hf_model, PruningConfig(num_layers=3, normalizer=8, final_threshold=0.08))
    quantize_model(model.eval())
    ids, mask = batch
    with torch.no_grad():
        compact = model(ids, mask, mode="compact")
        masked = model(ids, mask, mode="masked")
    assert torch.equal(compact.kept_tokens, masked.kept_tokens)
    torch.testing.assert_close(compact.logits, masked.logits, atol=1e-4, rtol=1e-4)


def test_token_layers_add_up_to_kept_counts(hf_model, batch):
    model = LTPModel(hf_model, PruningConfig(num_layers=3, normalizer=8, final_threshold=0.08))
    ids, mask = batch
    with torch.no_grad():
        out = model.eval()(ids, mask, track_tokens=True)
    for layer in range(2):
        assert torch.equal((out.token_layers > layer).sum(dim=1), out.kept_tokens[:, layer])
    assert int(out.token_layers[~mask.bool()].sum()) == 0, "padding is never counted"


def test_int8_artifact_round_trip(tiny_artifact_dir, tmp_path):
    from tests.ltp.core.test_artifact import forward

    quantised = load_artifact(tiny_artifact_dir, dtype="int8")  # quantised at load
    assert is_int8(quantised.model)
    folder = save_artifact(quantised, tmp_path / "int8")
    assert (folder / INT8_FILE).is_file()
    again = load_artifact(folder, dtype="int8")
    a, b = forward(quantised), forward(again)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.kept_tokens, b.kept_tokens)
    # the same folder loads in fp32 too, with the int8 weights dequantised
    fp32 = load_artifact(folder)
    assert not is_int8(fp32.model)
    torch.testing.assert_close(forward(fp32).logits, a.logits, atol=0.05, rtol=0.05)


def test_saved_int8_weights_are_used_not_requantised(tiny_artifact_dir, caplog):
    fp32 = load_artifact(tiny_artifact_dir)
    save_int8(fp32.model, tiny_artifact_dir)
    with caplog.at_level("WARNING"):
        quantised = load_artifact(tiny_artifact_dir, dtype="int8")
    assert "quantising" not in caplog.text
    lin = quantised.model.encoder.layers[0].ffn_in
    q, scale = quantize_weight(fp32.model.encoder.layers[0].ffn_in.weight)
    assert torch.equal(lin.weight_int8, q) and torch.equal(lin.weight_scale, scale)


def test_quantise_chosen_linears_per_layer(hf_model):
    model = LTPModel(hf_model)
    quantize_model(model, which=lambda layer: ("ffn_out",) if layer == 0 else ("query", "key"))
    for i, parts in enumerate(model.encoder.layers):
        int8 = {name for name in ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")
                if isinstance(getattr(parts, name), Int8Linear)}
        assert int8 == ({"ffn_out"} if i == 0 else {"query", "key"})
