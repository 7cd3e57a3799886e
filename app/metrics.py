"""Every Prometheus metric of the service, defined here and recorded through ``Metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from app.engine.batch import BatchStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
                   0.6, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
UNKNOWN_MODEL = "unknown"  # the label of every model name the server does not serve
TOKEN_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
RATIO_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128)
BATCH_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    """The service's metrics on their own registry (one per app instance)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # process_resident_memory_bytes and friends
        self.models: set[str] = set()  # label values allowed for `model`
        self.requests = Counter("ltp_requests", "Inference requests by model and HTTP status "
                                "(499: the client closed the connection first, abandoned)",
                                ["model", "status"], registry=r)
        self.rejections = Counter("ltp_rejections", "Inference requests that got no result, by "
                                  "error type (one count per request)", ["reason"], registry=r)
        self.dropped_sequences = Counter("ltp_dropped_sequences", "Queued sequences removed "
                                         "without being computed, by reason", ["reason"], registry=r)
        self.backlog_seconds = Gauge("ltp_backlog_seconds", "Expected wait of a new request: "
                                     "queued and running work over the workers", registry=r)
        self.cost_per_token_seconds = Gauge("ltp_cost_per_token_seconds", "Measured forward "
                                            "seconds per input token on one worker", ["model"],
                                            registry=r)
        self.request_seconds = Histogram("ltp_request_seconds", "End-to-end /classify latency",
                                         ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokenize_seconds = Histogram("ltp_tokenize_seconds", "Tokenisation time per request",
                                          ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("ltp_queue_seconds", "Time a sequence waited in the queue",
                                       ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference_seconds = Histogram("ltp_inference_seconds", "Forward time of a batch",
                                           ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.input_tokens = Histogram("ltp_input_tokens", "Input tokens per sequence", ["model"],
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.kept_tokens = Histogram("ltp_kept_tokens",
                                     "Tokens per sequence left after the last pruning layer",
                                     ["model"], buckets=TOKEN_BUCKETS, registry=r)
        self.layer_kept_tokens = Histogram("ltp_layer_kept_tokens",
                                           "Tokens per sequence kept after each layer",
                                           ["model", "layer"], buckets=TOKEN_BUCKETS, registry=r)
        self.flops_saved_ratio = Histogram("ltp_flops_saved_ratio",
                                           "Fraction of encoder FLOPs saved, per sequence",
                                           ["model"], buckets=RATIO_BUCKETS, registry=r)
        self.flops = Counter("ltp_flops", "Encoder FLOPs spent", ["model"], registry=r)
        self.flops_dense = Counter("ltp_flops_dense", "Encoder FLOPs a dense model would spend",
                                   ["model"], registry=r)
        self.sequences = Counter("ltp_sequences", "Sequences classified", ["model"], registry=r)
        self.batch_size = Histogram("ltp_batch_size", "Sequences per batch", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_tokens = Histogram("ltp_batch_tokens", "Padded tokens per batch", ["model"],
                                      buckets=BATCH_TOKEN_BUCKETS, registry=r)
        self.batch_padding_ratio = Histogram("ltp_batch_padding_ratio",
                                             "Fraction of a batch's padded tokens that is padding",
                                             ["model"], buckets=RATIO_BUCKETS, registry=r)
        self.queue_sequences = Gauge("ltp_queue_sequences", "Sequences waiting", registry=r)
        self.queue_tokens = Gauge("ltp_queue_tokens", "Tokens waiting", registry=r)
        self.model_info = Gauge("ltp_model_info", "Loaded models (value 1)",
                                ["model", "family", "device", "dtype", "engine", "default"],
                                registry=r)

    def model_label(self, name: str | None) -> str:
        """The label of a model: its name when served, else one shared value (bounded)."""
        return name if name in self.models else UNKNOWN_MODEL

    def record_batch(self, stats: BatchStats) -> None:
        """Called by the worker after each batch."""
        m = stats.model
        self.inference_seconds.labels(m).observe(stats.seconds)
        self.batch_size.labels(m).observe(stats.size)
        self.batch_tokens.labels(m).observe(stats.padded_tokens)
        self.batch_padding_ratio.labels(m).observe(1 - stats.num_tokens / stats.padded_tokens)
        self.sequences.labels(m).inc(len(stats.results))
        queue, inputs, kept = (self.queue_seconds.labels(m), self.input_tokens.labels(m),
                               self.kept_tokens.labels(m))
        layers = [self.layer_kept_tokens.labels(m, str(i))
                  for i in range(len(stats.results[0].kept_tokens_per_layer))]
        saved = self.flops_saved_ratio.labels(m)
        for res in stats.results:
            queue.observe(res.queue_seconds)
            inputs.observe(res.input_tokens)
            kept.observe(res.kept_tokens)
            for layer, count in zip(layers, res.kept_tokens_per_layer, strict=True):
                layer.observe(count)
            saved.observe(1 - res.flops / res.flops_dense)
        self.flops.labels(m).inc(sum(r.flops for r in stats.results))
        self.flops_dense.labels(m).inc(sum(r.flops_dense for r in stats.results))

    def record_request(self, model: str | None, status: int, seconds: float | None = None,
                       tokenize_seconds: float | None = None, error_type: str | None = None,
                       ) -> None:
        """One inference request's end: its status, and its timings or its error type."""
        model = self.model_label(model)
        self.requests.labels(model, str(status)).inc()
        if error_type is not None:
            self.rejections.labels(error_type).inc()
        if seconds is not None:
            self.request_seconds.labels(model).observe(seconds)
        if tokenize_seconds is not None:
            self.tokenize_seconds.labels(model).observe(tokenize_seconds)

    def set_queue(self, sequences: int, tokens: int) -> None:
        self.queue_sequences.set(sequences)
        self.queue_tokens.set(tokens)
