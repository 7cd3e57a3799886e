"""Ranking distillation: the loss, its gradient, and the soft stage that uses it."""

import pytest
import torch

from ltp.core.artifact import load_artifact
from ltp.core.text import encode, pad_batch
from ltp.data.datasets import load_dataset
from ltp.train.config import TrainConfig
from ltp.train.loop import ranking_term, soft_stage
from ltp.train.ranking import ranking_loss, warmup_weight

LIVE = torch.tensor([[True] * 6 + [False] * 2, [True] * 8])


def test_zero_when_the_student_ranks_as_the_teacher_positive_otherwise():
    teacher = torch.rand(2, 8, generator=torch.Generator().manual_seed(0)) + 0.1
    same_order = 3 * teacher + 1  # another scale, the same ranking
    assert ranking_loss(same_order, teacher, LIVE, top=4) == 0
    reversed_ = 1 / teacher  # the opposite ranking
    assert ranking_loss(reversed_, teacher, LIVE, top=4) > 0
    # padding and the classifier token never count: scramble them, the loss stays zero
    scrambled = same_order.clone()
    scrambled[0, 6:] = 100.0
    scrambled[:, 0] = -100.0
    assert ranking_loss(scrambled, teacher, LIVE, top=4) == 0


def test_only_pairs_with_a_teacher_top_token_cost():
    teacher = torch.tensor([[9.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    live = torch.ones(1, 6, dtype=torch.bool)
    student = teacher.clone()
    student[0, [4, 5]] = student[0, [5, 4]]  # a swap below the teacher's top 2
    assert ranking_loss(student, teacher, live, top=2) == 0
    student[0, [1, 5]] = student[0, [5, 1]]  # the teacher's best (after [CLS]) now ranks last
    assert ranking_loss(student, teacher, live, top=2) > 0


def test_the_warmup_falls_linearly_to_its_floor():
    assert warmup_weight(0, 100) == 1.0
    assert warmup_weight(50, 100) == pytest.approx(0.5)
    assert warmup_weight(500, 100) == 0.01
    assert warmup_weight(7, 0) == 1.0


def _batch(artifact):
    texts = ["good great fine " * 4, "bad awful " * 6, "fine okay good bad " * 3]
    encoded = encode(artifact.tokenizer, texts, max_length=32)
    return pad_batch(encoded, artifact.tokenizer.pad_token_id)


def test_the_gradient_reaches_the_thresholds_and_the_weights(tiny_artifact_dir):
    student, teacher = load_artifact(tiny_artifact_dir), load_artifact(tiny_artifact_dir)
    student.model.pruning.temperature = 0.01  # scores are ~1/16 here, not ~1/128
    with torch.no_grad():  # a student that ranks differently from its teacher
        for p in student.model.hf.parameters():
            p.add_(0.2 * torch.randn_like(p))
    student.model.train()
    batch = _batch(student)
    out = student.model.run(batch, mode="soft")
    assert len(out.scores) == student.model.encoder.num_layers - 1
    loss = ranking_term(out, teacher, batch, top=8)
    assert loss > 0
    loss.backward()
    assert student.model.threshold_delta.grad is not None
    assert student.model.threshold_delta.grad[0] != 0, "an earlier threshold shapes later scores"
    grads = [p.grad for p in student.model.hf.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_the_teacher_ranking_is_its_dense_one_whatever_its_thresholds(tiny_artifact_dir):
    artifact = load_artifact(tiny_artifact_dir)  # its thresholds prune
    batch = _batch(artifact)
    with torch.no_grad():
        dense = artifact.model.dense_scores(batch)
        masked = artifact.model.run(batch, mode="masked").scores
    assert torch.equal(dense[0], masked[0][0])  # layer 0 sees every token in both
    assert all(s.shape == batch.input_ids.shape for s in dense)
    live = batch.attention_mask.bool()
    assert all(bool((s[live] > 0).all()) for s in dense), "no token dropped: every live token scored"


def test_the_soft_stage_with_ranking_trains_and_is_reproducible(tiny_artifact_dir, tiny_csv):
    data = load_dataset(str(tiny_csv))
    teacher = load_artifact(tiny_artifact_dir)
    results = []
    for ranking in (1.0, 1.0, 0.0):
        artifact = load_artifact(tiny_artifact_dir)
        artifact.model.pruning.temperature = 0.01
        cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=8, max_length=32, threshold_lr=5e-3,
                          ranking=ranking, ranking_top=8, seed=3)
        soft_stage(artifact, data.train, cfg, teacher)
        results.append(artifact.model.thresholds().detach().clone())
    assert torch.equal(results[0], results[1]), "same seed, same thresholds"
    assert not torch.equal(results[0], results[2]), "the ranking term changes what is learned"


def test_softly_dropped_tokens_do_not_blow_the_loss_up():
    """Most tokens of a late soft layer receive almost nothing: the loss stays on the scale
    of the mean score, not of a near-zero median."""
    teacher = torch.linspace(1.0, 0.1, 8)[None].repeat(2, 1)
    student = torch.full((2, 8), 1e-9)
    student[:, :3] = torch.tensor([1.0, 0.2, 0.9])  # two live tokens, ranked the wrong way round
    loss = ranking_loss(student, teacher, torch.ones(2, 8, dtype=torch.bool), top=4)
    assert 0 < loss < 10


def test_the_soft_loss_ranks_with_the_weights_only(tiny_artifact_dir):
    """Dropping every token would rank no pair wrongly: the ranking term must not reach the
    thresholds through the soft masks, while it does train the weights."""
    from ltp.train.loop import soft_loss

    teacher = load_artifact(tiny_artifact_dir)
    grads = {}
    for ranking in (0.0, 1.0):
        torch.manual_seed(0)
        student = load_artifact(tiny_artifact_dir)
        student.model.pruning.temperature = 0.01
        with torch.no_grad():
            for p in student.model.hf.parameters():
                p.add_(0.2 * torch.randn_like(p))
        student.model.train()
        student.model.threshold_delta.requires_grad_(True)
        batch = _batch(student)
        cfg = TrainConfig(max_length=32, ranking=ranking, ranking_top=8)
        out = student.model.run(batch, mode="soft")
        soft_loss(student, cfg, teacher)(out, torch.tensor([0, 1, 0]), batch).backward()
        grads[ranking] = (student.model.threshold_delta.grad.clone(),
                          student.model.hf.classifier.weight.grad.clone(),
                          next(student.model.hf.parameters()).grad.clone())
    assert torch.allclose(grads[0.0][0], grads[1.0][0], atol=1e-7), "thresholds: task and budget only"
    assert not torch.allclose(grads[0.0][2], grads[1.0][2]), "the encoder's weights feel the ranking"
