"""Training: dense fine-tuning, then the two LTP stages.

* ``finetune``: dense mode, cross-entropy (optionally class-weighted); optionally measured
  on the dev split every few steps, stopped early when it stops improving, and restored to
  its best checkpoint.
* ``soft stage``: soft mode; loss = task loss + lambda x regulariser; thresholds learn in
  their own optimiser group (no weight decay, their own learning rate).
* ``hard stage``: thresholds frozen, compact mode (dropped tokens really leave, so this
  stage is also cheaper than dense), weights fine-tuned; optionally distilled from the
  dense parent's logits and its classifier token's hidden states.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ltp.core.artifact import Artifact
from ltp.core.heads import SINGLE_LABEL, targets
from ltp.core.model import ForwardOutput
from ltp.core.text import PaddedBatch
from ltp.data.datasets import Example
from ltp.data.encoding import encode_examples
from ltp.train.config import TrainConfig
from ltp.train.losses import distillation_loss, hidden_distillation_loss, soft_regularizer, task_loss
from ltp.train.ranking import ranking_loss

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    stage: str
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    kept_fraction: float = 1.0
    thresholds: list[float] = field(default_factory=list)
    # with dev evaluation: (step, headline figure (accuracy, micro-F1 or Spearman),
    # tie-breaker (macro-F1, or minus the MAE), loss) per evaluation, the step restored
    dev_history: list[tuple[int, float, float, float]] = field(default_factory=list)
    best_step: int | None = None
    planned_steps: int | None = None

    def to_dict(self) -> dict:
        window = max(1, min(10, len(self.losses) // 4))  # mean loss over the first / last steps
        first, last = _mean(self.losses[:window]), _mean(self.losses[-window:])
        out = {"stage": self.stage, "steps": self.steps, "seconds": round(self.seconds, 1),
               "first_loss": first, "last_loss": last, "kept_fraction": self.kept_fraction,
               "thresholds": self.thresholds}
        if self.dev_history:
            out |= {"planned_steps": self.planned_steps, "best_step": self.best_step,
                    "stopped_early": self.steps < (self.planned_steps or self.steps),
                    "dev_history": [[s, round(a, 4), round(f, 4), round(lo, 4)]
                                    for s, a, f, lo in self.dev_history]}
        return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def training_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within pools of 50 batches, cut."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _optimizer(artifact: Artifact, cfg: TrainConfig, thresholds: bool) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in artifact.model.hf.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if thresholds:
        groups.append({"params": [artifact.model.threshold_delta], "weight_decay": 0.0,
                       "lr": cfg.threshold_lr})
    return torch.optim.AdamW(groups, lr=cfg.lr)


def total_steps(n_examples: int, cfg: TrainConfig) -> int:
    """Optimiser steps of a stage: ``cfg.steps``, or epochs x batches per epoch."""
    if cfg.steps is not None:
        return max(1, int(cfg.steps))
    return max(1, int(math.ceil(n_examples / cfg.batch_size) * cfg.epochs))


def _schedule(optimizer, total: int, warmup: float):
    warm = max(1, int(total * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


LossFn = Callable[[ForwardOutput, torch.Tensor, PaddedBatch], torch.Tensor]


def _dev_score(artifact: Artifact, dev: list[Example], mode: str) -> tuple[float, float, float]:
    """The head's headline figure on dev, a tie-breaker (macro-F1, or minus the MAE), loss."""
    from ltp.eval.evaluate import evaluate

    artifact.model.eval()
    ev = evaluate(artifact, dev, mode=mode)
    artifact.model.train()
    second = ev["macro_f1"] if "macro_f1" in ev else -ev["mae"]  # the tie-breaker
    return ev["score"], second, ev["loss"]


def run_stage(artifact: Artifact, train: list[Example], cfg: TrainConfig, stage: str,
              mode: str, loss_fn: LossFn, thresholds: bool,
              dev: list[Example] | None = None, cls_states: bool = False) -> StageResult:
    """The shared training loop, with a progress bar showing loss, kept tokens and, for a
    single-label head, accuracy. ``cls_states``: the forward also returns every layer's
    classifier-token output for ``loss_fn``.

    With ``cfg.eval_every`` and a ``dev`` split: the head's headline figure on dev every
    that many steps (and at the end), early stop after ``cfg.patience`` evaluations without
    a gain, and the best checkpoint (headline figure, then the tie-breaker, then lower
    loss) restored at the end.
    """
    model = artifact.model
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    encoded = encode_examples(artifact.tokenizer, train, cfg.max_length)
    labels = targets(cfg.problem_type, [e.label for e in train], model.encoder.num_labels)
    lengths = [e.num_tokens for e in encoded]
    total = total_steps(len(encoded), cfg)
    model.threshold_delta.requires_grad_(thresholds)
    optimizer = _optimizer(artifact, cfg, thresholds)
    scheduler = _schedule(optimizer, total, cfg.warmup)
    result = StageResult(stage=stage, steps=total, seconds=0.0)
    model.train()
    start, kept_sum, token_sum, correct, seen = time.perf_counter(), 0.0, 0.0, 0, 0
    bar = tqdm(total=total, desc=stage, unit="step", dynamic_ncols=True)
    step = 0
    watch = bool(cfg.eval_every and dev)
    best, best_state, since_best, dev_score = None, None, 0, float("nan")

    def check_dev() -> bool:
        """Evaluate on dev, keep the best state; True when patience has run out."""
        nonlocal best, best_state, since_best, dev_score
        acc, f1, dev_loss = _dev_score(artifact, dev, mode)
        result.dev_history.append((step, acc, f1, dev_loss))
        dev_score = acc
        score = (round(acc, 6), round(f1, 6), -dev_loss)
        if best is None or score > best:
            best, since_best, result.best_step = score, 0, step
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        return bool(cfg.patience) and since_best >= cfg.patience

    stop = False
    while step < total and not stop:
        for group in training_batches(lengths, cfg.batch_size, rng):
            if step >= total or stop:
                break
            batch = artifact.pad([encoded[i] for i in group])
            y = labels[group].to(artifact.device)
            out = model.run(batch, mode=mode, cls_states=cls_states)
            loss = loss_fn(out, y, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            result.losses.append(float(loss.detach()))
            seen += len(group)
            kept_sum += float(out.kept_tokens[:, :-1].sum())
            token_sum += float(out.input_tokens.sum()) * (out.kept_tokens.shape[1] - 1)
            postfix = dict(loss=f"{_mean(result.losses[-20:]):.3f}",
                           kept=f"{kept_sum / max(token_sum, 1):.2f}")
            if cfg.problem_type == SINGLE_LABEL:
                correct += int((out.logits.argmax(-1) == y).sum())
                postfix["acc"] = f"{correct / seen:.3f}"
            if watch and (step % cfg.eval_every == 0 or step == total):
                stop = check_dev()
            if watch:
                postfix["dev"] = f"{dev_score:.3f}"
            bar.set_postfix(**postfix)
            bar.update()
    bar.close()
    if watch:
        if not result.dev_history or result.dev_history[-1][0] != step:
            check_dev()
        result.planned_steps, result.steps = total, step
        model.load_state_dict(best_state)
        log.info("%s: best dev %s %.4f at step %d of %d (planned %d)", stage,
                 artifact.meta.head.metric, best[0], result.best_step, step, total)
    model.eval()
    model.threshold_delta.requires_grad_(False)
    model.sync_config()
    result.seconds = time.perf_counter() - start
    result.kept_fraction = kept_sum / max(token_sum, 1)
    result.thresholds = [float(t) for t in model.thresholds()]
    log.info("%s: %d steps in %.0f s, kept fraction %.3f", stage, result.steps, result.seconds,
             result.kept_fraction)
    return result


def finetune(artifact: Artifact, train: list[Example], cfg: TrainConfig,
             dev: list[Example] | None = None) -> StageResult:
    """Dense fine-tuning of a classifier (with ``dev``: early stopping, best checkpoint)."""
    return run_stage(artifact, train, cfg, "finetune", "dense",
                     lambda out, y, _: task_loss(out.logits, y, cfg), thresholds=False, dev=dev)


def soft_loss(artifact: Artifact, cfg: TrainConfig, teacher: Artifact | None = None) -> LossFn:
    """The soft stage's loss: task loss + lambda x the FLOPs penalty (its excess over the
    budget), and with ``cfg.ranking`` and a ``teacher`` the ranking distillation of every
    pruning layer's scores (``ltp.train.ranking``). The ranking term trains the weights
    only: its gradient on the thresholds is taken back out, since dropping every token would
    also rank no pair wrongly."""
    model, enc = artifact.model, artifact.model.encoder

    def loss(out: ForwardOutput, y: torch.Tensor, batch: PaddedBatch) -> torch.Tensor:
        reg = soft_regularizer(out, cfg.regularizer, enc.hidden_size, enc.intermediate_size)
        if cfg.target_flops is not None:  # a budget: only the excess over it is penalised
            reg = F.relu(reg - cfg.target_flops * enc.num_layers)
        total = task_loss(out.logits, y, cfg) + cfg.lam * reg
        if teacher is None or cfg.ranking <= 0:
            return total
        rank = cfg.ranking * ranking_term(out, teacher, batch, cfg.ranking_top)
        delta = model.threshold_delta
        if delta.requires_grad:
            (on_thresholds,) = torch.autograd.grad(rank, delta, retain_graph=True,
                                                   allow_unused=True)
            if on_thresholds is not None:
                handle = None

                def without_ranking(grad: torch.Tensor) -> torch.Tensor:
                    handle.remove()  # this backward only
                    return grad - on_thresholds

                handle = delta.register_hook(without_ranking)
        return total + rank

    return loss


def soft_stage(artifact: Artifact, train: list[Example], cfg: TrainConfig,
               teacher: Artifact | None = None) -> StageResult:
    """Learn the thresholds (and adapt the weights) under a soft-mask relaxation
    (``soft_loss``)."""
    return run_stage(artifact, train, cfg, "soft", "soft", soft_loss(artifact, cfg, teacher),
                     thresholds=True)


def ranking_term(out: ForwardOutput, teacher: Artifact, batch: PaddedBatch, top: int) -> torch.Tensor:
    """The ranking loss of every pruning layer's scores against the teacher's last scored
    layer (no token dropped: the dense forward's ranking), averaged over the layers."""
    with torch.no_grad():
        reference = teacher.model.dense_scores(batch)[-1]
    losses = [ranking_loss(scores, reference, live, top) for scores, live in out.scores]
    return torch.stack(losses).mean()


def hard_stage(artifact: Artifact, train: list[Example], cfg: TrainConfig,
               teacher: Artifact | None = None) -> StageResult:
    """Thresholds frozen; fine-tune the weights with tokens really pruned: the task loss,
    with a ``teacher`` mixed with distillation of its logits (``cfg.distill`` of the
    weight) plus ``cfg.distill_hidden`` x that of its classifier token's hidden states."""
    hidden = teacher is not None and cfg.distill_hidden > 0

    def loss(out: ForwardOutput, y: torch.Tensor, batch: PaddedBatch) -> torch.Tensor:
        total = task_loss(out.logits, y, cfg)
        if teacher is None or (cfg.distill <= 0 and not hidden):
            return total
        with torch.no_grad():
            ref = teacher.model.run(batch, mode="dense", cls_states=hidden)
        if cfg.distill > 0:
            kl = distillation_loss(out.logits, ref.logits, cfg.distill_temperature,
                                   cfg.problem_type, cfg.target_scale)
            total = (1 - cfg.distill) * total + cfg.distill * kl
        if hidden:
            total = total + cfg.distill_hidden * hidden_distillation_loss(out.cls_states,
                                                                          ref.cls_states)
        return total

    return run_stage(artifact, train, cfg, "hard", "compact", loss, thresholds=False,
                     cls_states=hidden)


def measure_step_seconds(artifact: Artifact, examples: list[Example], batch_size: int,
                         max_length: int, mode: str = "dense", repeats: int = 2) -> float:
    """Seconds of one training step (forward + backward) on a typical batch of ``examples``.

    Training batches hold inputs of similar lengths (``training_batches``), so the typical
    batch is ``batch_size`` inputs around the mean length. Gradients are computed and thrown
    away: the weights do not change.
    """
    model = artifact.model
    sample = random.Random(1).sample(examples, min(len(examples), 2000))
    encoded = encode_examples(artifact.tokenizer, sample, max_length)
    mean = sum(e.num_tokens for e in encoded) / len(encoded)
    typical = sorted(encoded, key=lambda e: abs(e.num_tokens - mean))[:batch_size]
    batch = artifact.pad(typical)
    model.train()
    times = []
    for _ in range(repeats + 1):  # the first round warms up
        start = time.perf_counter()
        out = model.run(batch, mode=mode)
        out.logits.float().sum().backward()
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    model.eval()
    return min(times[1:])
