"""What a batch costs: seconds on one worker as a line in its tokens, and a text's tokens
as a line in its characters, both learned while serving."""

from __future__ import annotations

import math


class CostModel:
    """``seconds = per_batch_s + per_token_s x tokens`` for one model on one worker.

    Fitted by least squares over the batches seen, each weighted by ``decay`` per newer
    batch, so the estimate follows the machine (another process, a CPU-frequency change)
    within a few hundred batches. Tokens are the sequences' real (unpadded) tokens: the
    packed forward's projections and feed-forward cost that, not the padded width.
    Until the batches seen span a range of sizes, only the per-token cost is fitted.
    """

    def __init__(self, per_batch_s: float = 2e-3, per_token_s: float = 1e-4,
                 decay: float = 0.99) -> None:
        self.per_batch_s, self.per_token_s, self.decay = per_batch_s, per_token_s, decay
        self._n = self._x = self._y = self._xx = self._xy = 0.0
        self.batches = 0

    def observe(self, tokens: int, seconds: float) -> None:
        """Add one finished batch: its real tokens and its forward seconds."""
        d = self.decay
        self._n, self._x, self._y = d * self._n + 1, d * self._x + tokens, d * self._y + seconds
        self._xx, self._xy = d * self._xx + tokens * tokens, d * self._xy + tokens * seconds
        self.batches += 1
        spread = self._n * self._xx - self._x * self._x
        if self.batches >= 8 and spread > 0.05 * self._x * self._x:
            slope = (self._n * self._xy - self._x * self._y) / spread
            intercept = (self._y - slope * self._x) / self._n
            if slope > 0 and intercept >= 0:
                self.per_batch_s, self.per_token_s = intercept, slope
                return
        # one line through the origin's neighbourhood: keep the intercept, refit the slope
        if self._x > 0:
            self.per_token_s = max(1e-7, (self._y - self.per_batch_s * self._n) / self._x)

    def seconds(self, sequences: int, tokens: int, max_batch_size: int) -> float:
        """Worker-seconds to compute ``sequences`` of ``tokens`` in full batches."""
        if sequences <= 0:
            return 0.0
        batches = math.ceil(sequences / max_batch_size)
        return batches * self.per_batch_s + tokens * self.per_token_s


class LengthModel:
    """``tokens = 2 + ratio x characters`` for one model's tokenizer: what the queue orders
    and costs a text by before the worker tokenises it.

    The ratio is learned from the texts the workers tokenise, each batch weighted by
    ``decay`` per newer one, so it follows the traffic's language and style. It starts at
    one token per four characters, English prose under a WordPiece vocabulary."""

    SPECIALS = 2  # [CLS] and [SEP], or <s> and </s>

    def __init__(self, ratio: float = 0.25, decay: float = 0.99) -> None:
        self.ratio, self.decay = ratio, decay
        self._chars = self._tokens = 0.0

    def tokens(self, chars: int) -> int:
        return self.SPECIALS + math.ceil(self.ratio * chars)

    def observe(self, chars: int, tokens: int, texts: int) -> None:
        """Add one batch's tokenised texts: how many, their characters and tokens."""
        d = self.decay
        self._chars = d * self._chars + chars
        self._tokens = d * self._tokens + max(0, tokens - self.SPECIALS * texts)
        if self._chars > 0:
            self.ratio = self._tokens / self._chars
