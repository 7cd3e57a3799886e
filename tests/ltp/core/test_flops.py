"""FLOPs accounting against hand computation."""

import torch

from ltp.core.flops import dense_kept, encoder_flops, model_flops


def test_encoder_flops_by_hand():
    d, d_ff = 4, 16
    n_in = torch.tensor([5])
    kept = torch.tensor([[3, 2, 1]])
    # layer 1: n_a=5, n_f=3; layer 2: n_a=3, n_f=2; layer 3: n_a=2, n_f=1
    by_hand = 0
    for n_a, n_f in [(5, 3), (3, 2), (2, 1)]:
        by_hand += 2 * (2 * d * n_a * n_a + 4 * d * d * n_a + 2 * d * d_ff * n_f)
    assert encoder_flops(d, d_ff, n_in, kept).item() == by_hand == 2 * (
        (200 + 320 + 384) + (72 + 192 + 256) + (32 + 128 + 128))


def test_notes_formula_with_4d_feed_forward():
    d, n = 384, 91
    flops = encoder_flops(d, 4 * d, torch.tensor([n]), torch.tensor([[n]]))
    assert flops.item() == 2 * (2 * d * n * n + 4 * d * d * n + 8 * d * d * n)


def test_dense_kept_and_relative_flops():
    n_in = torch.tensor([10, 4])
    full = dense_kept(n_in, 3)
    assert full.tolist() == [[10, 10, 10], [4, 4, 4]]
    pruned = torch.tensor([[6, 3, 1], [4, 2, 1]])
    assert (encoder_flops(8, 32, n_in, pruned) < encoder_flops(8, 32, n_in, full)).all()


def test_model_flops_by_hand():
    d, d_ff, c = 4, 16, 2
    n_in, kept = torch.tensor([5]), torch.tensor([[3, 1]])
    # layer 1: q on 5, k/v on 5, attention 5x5, o and ffn on 3
    l1 = 2 * d * 5 * 5 + d * d * (5 + 2 * 5 + 3) + 2 * d * d_ff * 3
    # last layer: one query over 3 keys; k/v on 3; o and ffn on 1
    l2 = 2 * d * 1 * 3 + d * d * (1 + 2 * 3 + 1) + 2 * d * d_ff * 1
    head = d * d + d * c
    assert model_flops(d, d_ff, c, n_in, kept, dense=False).item() == 2 * (l1 + l2 + head)
    dense = 2 * (2 * (2 * d * 25 + d * d * 20 + 2 * d * d_ff * 5) + head)
    assert model_flops(d, d_ff, c, n_in, dense_kept(n_in, 2), dense=True).item() == dense
