"""Engines beyond the layer loop's own tests (test_model.py runs every engine against the
masked reference): ONNX Runtime's whole-forward graph and when it stands aside."""

import pytest
import torch

from ltp.core.config import PruningConfig
from ltp.core.model import LTPModel
from tests.ltp.core.test_model import pruning_half, run

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("scores", ["fixed", "median", "median, all but the classifier token"])
def test_the_whole_graph_runs_threshold_models_as_the_layer_loop_does(hf_model, batch, scores):
    ids, mask = batch
    pruning = pruning_half()
    pruning.score_norm = "fixed" if scores == "fixed" else "median"
    if scores.startswith("median,"):  # layer 0 keeps only the classifier token: later medians of none
        pruning.delta = [1e3] * 3
    model = LTPModel(hf_model, pruning).eval()
    engine = model.set_engine("ort", threads=1)
    with torch.no_grad():
        whole = engine.whole(ids, mask, None)
        loop = model(ids, mask, mode="compact", track_tokens=True)  # tracking: the loop
    assert whole is not None
    logits, kept = whole
    assert torch.equal(kept, loop.kept_tokens)
    torch.testing.assert_close(logits, loop.logits, atol=1e-5, rtol=1e-5)
    assert (kept[:, 0] < mask.sum(1)).any(), "it really pruned"
    if scores.startswith("median,"):
        assert bool((kept == 1).all())
    masked = run(model, ids, mask, "masked", "ort")
    assert torch.equal(run(model, ids, mask, "compact", "ort").kept_tokens, masked.kept_tokens)


def test_a_batch_side_by_side_equals_one_input_at_a_time(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    one = model.set_engine("ort", threads=1).whole(ids, mask, None)
    two = model.set_engine("ort", threads=2).whole(ids, mask, None)
    assert torch.equal(one[1], two[1]) and torch.equal(one[0], two[0])


def test_top_k_and_changed_thresholds_fall_back_to_the_loop(hf_model, batch):
    ids, mask = batch
    cascade = PruningConfig.cascade(3, 0.5)
    model = LTPModel(hf_model, cascade).eval()
    assert model.set_engine("ort").whole(ids, mask, None) is None  # top-k: layer by layer
    compact, masked = run(model, ids, mask, "compact", "ort"), run(model, ids, mask, "masked", "ort")
    assert torch.equal(compact.kept_tokens, masked.kept_tokens)
    model = LTPModel(hf_model, pruning_half()).eval()
    engine = model.set_engine("ort")
    model.set_pruning(PruningConfig(num_layers=3, normalizer=16, final_threshold=0.0))
    assert engine.whole(ids, mask, None) is None, "its graph has the old thresholds"
    compact = run(model, ids, mask, "compact", "ort")
    assert (compact.kept_tokens[:, :-1] == mask.sum(1, keepdim=True)).all(), "zero thresholds keep all"


def test_thresholds_changed_in_place_fall_back_until_they_are_the_graphs_again(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    engine = model.set_engine("ort", threads=1)
    before = engine.whole(ids, mask, None)
    assert before is not None
    with torch.no_grad():
        model.threshold_delta.add_(1.0)  # as an optimiser step does
        assert engine.whole(ids, mask, None) is None, "the graph has the old thresholds"
        kept = run(model, ids, mask, "compact", "ort").kept_tokens
        assert (kept == 1).all(), "the loop ran the new ones"
        model.threshold_delta.sub_(1.0)
        again = engine.whole(ids, mask, None)
    assert again is not None and torch.equal(again[1], before[1])


def test_a_model_made_under_inference_mode_runs_on_both_engines(hf_model, batch):
    """Tensors made under inference mode keep no version to tell a change by: the fused
    projections and the graph's thresholds are then checked by value."""
    ids, mask = batch
    reference = run(LTPModel(hf_model, pruning_half()).eval(), ids, mask, "compact")
    with torch.inference_mode():
        model = LTPModel(hf_model, pruning_half()).eval()
        assert model.threshold_delta.is_inference()
        eager = model(ids, mask, mode="compact")
        whole = model.set_engine("ort", threads=1).whole(ids, mask, None)
        model.threshold_delta.add_(1.0)
        assert model.engine.whole(ids, mask, None) is None, "a change is still seen"
    assert torch.equal(eager.kept_tokens, reference.kept_tokens)
    assert whole is not None and torch.equal(whole[1], reference.kept_tokens)


@pytest.mark.parametrize("scores", ["fixed", "median"])
def test_the_whole_graph_fuses_dropped_tokens_as_the_layer_loop_does(hf_model, batch, scores):
    from dataclasses import replace

    ids, mask = batch
    model = LTPModel(hf_model, replace(pruning_half(), fuse=True, score_norm=scores)).eval()
    with torch.no_grad():
        loop = run(model, ids, mask, "compact")  # eager
        plain = LTPModel(hf_model, replace(pruning_half(), score_norm=scores)).eval()
        unfused = run(plain, ids, mask, "compact")
        engine = model.set_engine("ort", threads=2)
        assert engine.group == 1, "fused tokens run one input a call"
        whole = engine.whole(ids, mask, None)
    assert whole is not None
    logits, kept = whole
    assert torch.equal(kept, loop.kept_tokens)
    torch.testing.assert_close(logits, loop.logits, atol=1e-5, rtol=1e-5)
    assert (kept[:, 0] > unfused.kept_tokens[:, 0]).any(), "fused tokens were counted"
    model.set_pruning(replace(model.pruning, fuse=False))
    assert engine.whole(ids, mask, None) is None, "the graph fuses; the model no longer does"


@pytest.mark.parametrize("rows", [False, True])
def test_int8_graphs_keep_most_decisions_of_fp32(hf_model, batch, rows):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    fp32 = model.set_engine("ort", precision="fp32").whole(ids, mask, None)
    int8 = model.set_engine("ort", precision="int8", rows=rows).whole(ids, mask, None)
    assert (fp32[1] == int8[1]).float().mean() >= 0.5
    assert (fp32[0] - int8[0]).abs().max() < 0.5
    assert model.engine.describe()["precision"] == "int8"
    assert model.engine.describe()["int8_activations"] == ("per row" if rows else "per call")


def test_rows_quantised_on_their_own_range_do_not_depend_on_the_others(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    import onnxruntime as ort

    from ltp.core.engines.graphs import Projection
    from ltp.core.engines.ort import _export, quantize_graph

    linear = torch.nn.Linear(16, 8)
    path = _export(Projection([linear]).eval(), {"x": torch.randn(3, 16)}, tmp_path / "lin.onnx", ("y",),
                   {"x": {0: "n"}})
    graph = quantize_graph(path, tmp_path / "rows.onnx", rows=True)
    assert "MatMulIntegerToFloat" in {n.op_type for n in onnx.load(str(graph)).graph.node}
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 16)
    big = torch.cat([x, 1000 * torch.randn(1, 16)])  # a row of far larger range beside them
    alone = session.run(None, {"x": x.numpy()})[0]
    beside = session.run(None, {"x": big.numpy()})[0][:4]
    np.testing.assert_array_equal(alone, beside)  # per call, the large row would coarsen all
    expected = linear(x).detach().numpy()
    assert np.abs(alone - expected).max() < 0.02 * np.abs(expected).max() + 1e-3


@pytest.mark.parametrize("group", [1, 3, 8])
def test_packed_groups_give_each_input_its_lone_figures(hf_model, group):
    from tests.conftest import padded_batch

    lengths = [5, 23, 9, 30, 17, 2, 12, 30, 8, 21]  # longer than the exported sample, and shorter
    ids, mask = padded_batch(hf_model.config.pad_token_id or 0, lengths=lengths, seed=3)
    pruning = pruning_half()
    pruning.score_norm = "median"
    model = LTPModel(hf_model, pruning).eval()
    engine = model.set_engine("ort", threads=2, group=group)
    groups = engine.groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert len(groups) >= 2 and max(map(len, groups)) <= group
    by_length = [lengths[i] for g in groups for i in g]
    assert by_length == sorted(by_length), "a group holds inputs of similar length"
    with torch.no_grad():
        logits, kept = engine.whole(ids, mask, None)
        alone = [engine.whole(ids[i:i + 1, :n], mask[i:i + 1, :n], None)
                 for i, n in enumerate(lengths)]
        loop = model(ids, mask, mode="compact", track_tokens=True)
    assert torch.equal(kept, torch.cat([k for _, k in alone]))
    assert torch.equal(kept, loop.kept_tokens)
    assert (kept[:, 0] < mask.sum(1)).any() and (kept[:, 0] > 1).any(), "it pruned, not all"
    torch.testing.assert_close(logits, torch.cat([lg for lg, _ in alone]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, loop.logits, atol=1e-5, rtol=1e-5)


def test_int8_rows_packed_give_each_input_its_lone_figures_and_per_call_runs_one_a_call(hf_model):
    """Per row, an input's int8 answer does not depend on the inputs packed beside it; per
    call, one activation range would span them, so int8 runs one input a call by default."""
    from ltp.core.engines.ort import GROUP
    from tests.conftest import padded_batch

    lengths = [5, 23, 9, 30, 17, 2, 12]
    ids, mask = padded_batch(hf_model.config.pad_token_id or 0, lengths=lengths, seed=5)
    model = LTPModel(hf_model, pruning_half()).eval()
    engine = model.set_engine("ort", precision="int8", threads=1, group=4, rows=True)
    with torch.no_grad():
        logits, kept = engine.whole(ids, mask, None)
        alone = [engine.whole(ids[i:i + 1, :n], mask[i:i + 1, :n], None)
                 for i, n in enumerate(lengths)]
    assert max(map(len, engine.groups(lengths))) > 1, "inputs ran packed"
    assert torch.equal(kept, torch.cat([k for _, k in alone]))
    torch.testing.assert_close(logits, torch.cat([lg for lg, _ in alone]), atol=1e-5, rtol=1e-5)
    assert GROUP["int8"] == 1 and GROUP["fp32"] > 1
    assert model.set_engine("ort", precision="int8").describe()["group"] == 1
    assert model.set_engine("ort", precision="fp32").describe()["group"] == GROUP["fp32"]


def test_a_group_is_at_least_one_input():
    from tests.conftest import tiny_classifier

    model = LTPModel(tiny_classifier("bert"), pruning_half()).eval()
    with pytest.raises(ValueError, match="at least one"):
        model.set_engine("ort", group=0)


def test_too_little_room_for_the_graphs_is_said_plainly(monkeypatch, tmp_path):
    import shutil
    from collections import namedtuple

    from ltp.core.engines import EngineError
    from tests.conftest import tiny_classifier

    model = LTPModel(tiny_classifier("bert"), pruning_half()).eval()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**10, 2**10))
    with pytest.raises(EngineError, match="MiB free: give it more room"):
        model.set_engine("ort")


def test_packed_counts_give_each_input_the_rows_that_fall_in_its_span():
    import numpy as np

    from ltp.core.engines.graphs import KEPT, packed_counts

    # inputs of 3 and 5 rows, then a filler input's row (8) that no count may take
    outputs = {KEPT.format(1): np.array([0, 2, 3, 4, 6, 8]),  # 2 of the first, 3 of the second
               KEPT.format(3): np.array([0, 2, 3, 5])}  # of rows 0-1 and 2-4: 1 and 2
    assert packed_counts([3, 5], outputs, 5) == [[3, 2, 2, 1, 1], [5, 3, 3, 2, 1]]
    assert packed_counts([3], {KEPT.format(1): np.array([1])}, 3) == [[3, 1, 1]]
    assert packed_counts([4, 2], {}, 3) == [[4, 4, 1], [2, 2, 1]], "nothing pruned"
