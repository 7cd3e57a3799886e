"""The bucket queue's policy: buckets, budget, starvation bound, deadlines, cancellation."""

from dataclasses import dataclass

from app.engine.queue import BucketQueue, QueueLimits
from app.settings import Settings


@dataclass
class Item:
    num_tokens: int
    enqueued_at: float = 0.0
    deadline: float = float("inf")
    gone: bool = False
    model: str = "m"

    def abandoned(self) -> bool:
        return self.gone


def queue(**limits) -> BucketQueue:
    """A queue with the service's default limits, some overridden."""
    if "max_sequences" in limits:
        limits["max_queue_sequences"] = limits.pop("max_sequences")
    return BucketQueue(QueueLimits.from_settings(Settings(**limits)))


def test_batches_group_similar_lengths():
    q = queue(max_batch_size=4, max_batch_tokens=10_000)
    items = [Item(n, enqueued_at=i) for i, n in enumerate([100, 10, 101, 12, 99, 11, 98, 13])]
    for it in items:
        q.put(it)
    first, _ = q.next_batch(now=100)
    assert sorted(i.num_tokens for i in first) == [98, 99, 100, 101]
    second, _ = q.next_batch(now=100)
    assert sorted(i.num_tokens for i in second) == [10, 11, 12, 13]
    assert len(q) == 0 and q.num_tokens == 0


def test_padded_token_budget_is_respected():
    q = queue(max_batch_size=32, max_batch_tokens=300)
    for i in range(10):
        q.put(Item(100, enqueued_at=i))
    batch, _ = q.next_batch(now=10)
    assert len(batch) == 3  # 3 x 100 padded tokens fit, 4 would not
    assert max(i.num_tokens for i in batch) * len(batch) <= 300


def test_oldest_always_rides_even_when_alone_over_budget():
    q = queue(max_batch_size=8, max_batch_tokens=64)
    q.put(Item(500, enqueued_at=0))
    q.put(Item(8, enqueued_at=1))
    batch, _ = q.next_batch(now=2)
    assert [i.num_tokens for i in batch] == [500]


def test_no_starvation_of_a_lonely_length():
    q = queue(max_batch_size=2, max_batch_tokens=10_000)
    lonely = Item(200, enqueued_at=0)
    q.put(lonely)
    for t in range(1, 50):  # a stream of short inputs keeps arriving
        q.put(Item(10, enqueued_at=t))
    batch, _ = q.next_batch(now=50)
    assert lonely in batch, "the oldest entry is served first whatever its length"


def test_expired_and_abandoned_entries_leave_without_being_batched():
    q = queue()
    expired, gone, fine = Item(10, deadline=5), Item(10, gone=True), Item(10, deadline=100)
    for it in (expired, gone, fine):
        q.put(it)
    batch, dropped = q.next_batch(now=10)
    assert batch == [fine]
    assert dropped.expired == [expired] and dropped.abandoned == [gone]
    assert len(q) == 0


def test_batch_size_limit_and_room():
    q = queue(max_batch_size=3, max_sequences=5)
    for i in range(5):
        q.put(Item(10, enqueued_at=i))
    batch, _ = q.next_batch(now=5)
    assert len(batch) == 3 and [i.enqueued_at for i in batch] == [0, 1, 2]
    assert q.oldest_age(now=10) == 7


def test_padding_cap_keeps_lengths_apart():
    q = queue(max_batch_size=8, max_batch_tokens=10_000, max_padding_ratio=0.3)
    for i, n in enumerate([100, 90, 80, 8, 5]):
        q.put(Item(n, enqueued_at=i))
    batch, _ = q.next_batch(now=10)
    # 8 more would make 1 - 278/400 = 30.5% padding
    assert sorted(i.num_tokens for i in batch) == [80, 90, 100]
    rest, _ = q.next_batch(now=10)
    assert sorted(i.num_tokens for i in rest) == [5, 8]
