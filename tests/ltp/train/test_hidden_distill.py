"""Hidden-state distillation: the classifier token's states the forward returns, the loss
on them, and the hard stage that uses it."""

from dataclasses import replace

import pytest
import torch

from ltp.core.artifact import load_artifact
from ltp.core.config import PruningConfig
from ltp.core.text import encode, pad_batch
from ltp.data.datasets import load_dataset
from ltp.train.config import TrainConfig
from ltp.train.loop import hard_stage
from ltp.train.losses import hidden_distillation_loss
from ltp.train.stages import PruneConfig, prune_hard, prune_model, prune_soft


def _batch(artifact):
    texts = ["good great fine " * 4, "bad awful " * 6, "fine okay good bad " * 3]
    return pad_batch(encode(artifact.tokenizer, texts, max_length=32),
                     artifact.tokenizer.pad_token_id)


def test_the_last_state_is_what_the_head_reads_in_every_mode(tiny_artifact_dir):
    artifact = load_artifact(tiny_artifact_dir)
    model, batch = artifact.model, _batch(artifact)
    # the middle layer drops all but the classifier token of these (near-uniform) inputs
    model.set_pruning(PruningConfig(num_layers=3, normalizer=16, final_threshold=0.5))
    with torch.no_grad():
        for mode in ("dense", "compact", "unpruned"):
            out = model.run(batch, mode=mode, cls_states=True)
            assert len(out.cls_states) == model.encoder.num_layers, mode
            assert all(s.shape == (3, model.encoder.hidden_size) for s in out.cls_states)
            torch.testing.assert_close(model.encoder.head(out.cls_states[-1]), out.logits)
            # asking for the states changes nothing else
            assert torch.equal(model.run(batch, mode=mode).logits, out.logits), mode
        dense = model.run(batch, mode="dense", cls_states=True).cls_states
        unpruned = model.run(batch, mode="unpruned", cls_states=True).cls_states
        compact = model.run(batch, mode="compact", cls_states=True)
    for a, b in zip(dense, unpruned, strict=True):  # packed rows, the same classifier token
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (compact.kept_tokens[:, -2] < compact.input_tokens).any(), "the fixture prunes"
    torch.testing.assert_close(compact.cls_states[0], dense[0])  # layer 0 sees every token
    assert not torch.allclose(compact.cls_states[-1], dense[-1], atol=1e-4), \
        "pruned layers attend to fewer tokens"


def test_states_are_refused_where_the_forward_has_none(tiny_artifact_dir):
    artifact = load_artifact(tiny_artifact_dir)
    with pytest.raises(ValueError, match="cls_states"):
        artifact.model.run(_batch(artifact), mode="soft", cls_states=True)


def test_the_loss_is_zero_when_equal_one_for_zeros_and_scale_free():
    g = torch.Generator().manual_seed(0)
    teacher = [torch.randn(4, 8, generator=g) for _ in range(3)]
    assert hidden_distillation_loss(teacher, teacher) == 0
    zeros = [torch.zeros_like(t) for t in teacher]
    assert hidden_distillation_loss(zeros, teacher) == pytest.approx(1.0)
    student = [t + 0.3 * torch.randn(4, 8, generator=g) for t in teacher]
    loss = hidden_distillation_loss(student, teacher)
    assert 0 < loss < 1
    scaled = hidden_distillation_loss([10 * s for s in student], [10 * t for t in teacher])
    assert scaled == pytest.approx(float(loss), rel=1e-5)
    with pytest.raises(ValueError, match="layers"):
        hidden_distillation_loss(student[:2], teacher)


def test_the_gradient_reaches_every_layer(tiny_artifact_dir):
    student, teacher = load_artifact(tiny_artifact_dir), load_artifact(tiny_artifact_dir)
    with torch.no_grad():
        for p in student.model.hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    student.model.train()
    batch = _batch(student)
    out = student.model.run(batch, mode="compact", cls_states=True)
    with torch.no_grad():
        ref = teacher.model.run(batch, mode="dense", cls_states=True)
    hidden_distillation_loss(out.cls_states, ref.cls_states).backward()
    layers = student.model.encoder.layers
    for i, layer in enumerate(layers):
        grad = layer.ffn_out.weight.grad
        assert grad is not None and grad.abs().sum() > 0, f"layer {i}"


def test_the_hard_stage_with_hidden_states_trains_toward_the_teacher(tiny_artifact_dir, tiny_csv):
    data = load_dataset(str(tiny_csv))
    teacher = load_artifact(tiny_artifact_dir)
    batch = _batch(teacher)
    with torch.no_grad():
        ref = teacher.model.run(batch, mode="dense", cls_states=True).cls_states
    gaps = {}
    for weight in (0.0, 5.0, 5.0):
        artifact = load_artifact(tiny_artifact_dir)
        with torch.no_grad():  # a student away from its teacher
            torch.manual_seed(1)
            for p in artifact.model.hf.parameters():
                p.add_(0.1 * torch.randn_like(p))
        before = artifact.model.thresholds().clone()
        cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=8, max_length=32, distill=0.5,
                          distill_hidden=weight, seed=3)
        result = hard_stage(artifact, data.train, cfg, teacher)
        assert result.steps > 0
        assert torch.equal(artifact.model.thresholds(), before), "thresholds stay frozen"
        with torch.no_grad():
            out = artifact.model.run(batch, mode="compact", cls_states=True).cls_states
        gaps.setdefault(weight, []).append(float(hidden_distillation_loss(out, ref)))
    assert gaps[5.0][0] == pytest.approx(gaps[5.0][1], rel=1e-4), "same seed, same model"
    assert gaps[5.0][0] < gaps[0.0][0], "the hidden term pulls the states toward the teacher's"


def test_prune_model_is_its_soft_part_then_its_hard_part(tiny_artifact_dir, tiny_csv):
    """A soft stage shared by several hard stages (a paired comparison) gives, for each,
    what a whole build of the same settings gives."""
    data = load_dataset(str(tiny_csv))
    cfg = PruneConfig(target_flops=0.6, score_norm="median", soft_epochs=1, hard_epochs=1,
                      soft_lr=1e-3, hard_lr=1e-3, threshold_lr=1e-3, distill=0.5,
                      distill_hidden=1.0, batch_size=8, seed=2, calibration_examples=16)
    whole = prune_model(tiny_artifact_dir, data, cfg)
    start = prune_soft(tiny_artifact_dir, data, replace(cfg, distill_hidden=0.0))
    branch = start.branch(distill_hidden=1.0)
    assert branch.teacher is start.teacher and branch.artifact is not start.artifact
    split = prune_hard(branch, data)
    assert split.meta.provenance["prune"]["distill_hidden"] == 1.0
    assert split.meta.provenance["calibration"] == whole.meta.provenance["calibration"]
    for a, b in zip(split.model.state_dict().values(), whole.model.state_dict().values(),
                    strict=True):  # the embeddings' gradient sums in threads: not bit for bit
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
