"""Quantisation-aware training: weights trained on the int8 grid stay on it, and ONNX
Runtime's int8 quantiser then reproduces them exactly."""

import pytest
import torch
from torch import nn

from ltp.core.artifact import load_artifact, save_artifact
from ltp.core.quant import ORT_WEIGHT_LEVELS, quantize_weight
from ltp.data.datasets import load_dataset
from ltp.train.config import TrainConfig
from ltp.train.loop import hard_stage
from ltp.train.qat import encoder_linears, fake_quantize, weights_on_int8_grid
from ltp.train.stages import PruneConfig, prune_model


def on_grid(weight: torch.Tensor, levels: int = ORT_WEIGHT_LEVELS) -> bool:
    q, scale = quantize_weight(weight, levels)
    return torch.allclose(q.float() * scale[:, None], weight, rtol=0, atol=1e-7)


def test_fake_quantize_rounds_forward_and_passes_gradients_straight_through():
    weight = torch.randn(6, 10, requires_grad=True)
    out = fake_quantize(weight)
    assert on_grid(out.detach()) and not on_grid(weight.detach())
    assert (out - weight).abs().max() <= weight.abs().amax() / ORT_WEIGHT_LEVELS / 2 + 1e-6
    (out * torch.arange(60.0).view(6, 10)).sum().backward()
    assert torch.equal(weight.grad, torch.arange(60.0).view(6, 10))


def test_hard_stage_on_the_grid_trains_and_leaves_weights_on_it(tiny_artifact_dir, tiny_csv):
    data = load_dataset(str(tiny_csv))
    artifact = load_artifact(tiny_artifact_dir)
    thresholds = artifact.model.thresholds().clone()
    before = [lin.weight.detach().clone() for lin in encoder_linears(artifact.model)]
    with weights_on_int8_grid(artifact.model):
        hard_stage(artifact, data.train, TrainConfig(epochs=1, lr=1e-3, batch_size=8,
                                                     max_length=32))
    after = encoder_linears(artifact.model)
    assert all(type(lin) is nn.Linear for lin in after), "no parametrisation left behind"
    assert all(on_grid(lin.weight.detach()) for lin in after)
    assert any(not torch.allclose(b, a.weight) for b, a in zip(before, after, strict=True))  # it trained
    assert torch.equal(artifact.model.thresholds(), thresholds)
    # the model's own forward reads the new weights (the fused projections were rebuilt)
    fused = artifact.model.project(0, torch.ones(1, after[0].in_features), "qkv")
    expected = torch.cat([lin(torch.ones(1, lin.in_features)) for lin in after[:3]], dim=1)
    assert torch.allclose(fused, expected, atol=1e-5)


def test_ort_int8_quantiser_reproduces_weights_on_the_grid(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    from ltp.core.engines.ort import _export, quantize_graph

    linear = nn.Linear(16, 8)
    with torch.no_grad():
        linear.weight.copy_(fake_quantize(torch.randn(8, 16) * 0.05))
    path = _export(linear.eval(), {"x": torch.randn(3, 16)}, tmp_path / "lin.onnx", ("y",),
                   {"x": {0: "n"}})
    graph = onnx.load(str(quantize_graph(path)))
    weights = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    q = next(v for k, v in weights.items() if k.endswith("_quantized"))
    scale = next(v for k, v in weights.items() if k.endswith("_scale") and v.size == 8)
    dequantized = torch.from_numpy(q.astype("float32") * scale).T  # (K, N) -> (N, K)
    assert torch.allclose(dequantized, linear.weight.detach(), rtol=0, atol=1e-7)


def test_a_recipe_switches_it_on(tiny_artifact_dir, tiny_csv, tmp_path):
    data = load_dataset(str(tiny_csv))
    parent = tmp_path / "parent"
    save_artifact(load_artifact(tiny_artifact_dir), parent)
    pruned = prune_model(parent, data, PruneConfig(soft_epochs=0, hard_epochs=1, batch_size=8,
                                                   quantize_aware=True))
    assert pruned.meta.provenance["prune"]["quantize_aware"] is True
    assert all(on_grid(lin.weight.detach()) for lin in encoder_linears(pruned.model))
