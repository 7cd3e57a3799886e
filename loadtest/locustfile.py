"""Locust traffic for /classify, drawn from a data set's test split (its real lengths).

Settings (environment variables):
  LTP_LOAD_DATASET   data set name or path (default amazon-food)
  LTP_LOAD_MODEL     model to ask for (default: the service's default; not sent when empty)
  LTP_LOAD_THINK_S   think time between a user's requests, seconds (default 0)
  LTP_LOAD_LIST_SIZE inputs in a list request (default 4)
  LTP_LOAD_LIST_SHARE fraction of requests that send a list (default 0.2)
"""

from __future__ import annotations

import os
import random

import gevent
from locust import FastHttpUser, constant, task

from ltp.data.datasets import load_dataset

DATASET = os.environ.get("LTP_LOAD_DATASET", "amazon-food")
MODEL = os.environ.get("LTP_LOAD_MODEL", "")
THINK_S = float(os.environ.get("LTP_LOAD_THINK_S", "0"))
LIST_SIZE = int(os.environ.get("LTP_LOAD_LIST_SIZE", "4"))
LIST_SHARE = float(os.environ.get("LTP_LOAD_LIST_SHARE", "0.2"))
TEXTS = [e.text for e in load_dataset(DATASET).test]
# gevent's loop keeps the time of its last turn: loading the data set took seconds in which
# it did not turn, and Locust's --run-time timer, set from that stale time, would end the
# run that much early
gevent.get_hub().loop.update_now()


class ClassifyUser(FastHttpUser):
    # FastHttpUser (geventhttpclient): several times less CPU per request than HttpUser, which
    # matters when the load generator shares the machine with the service.
    wait_time = constant(THINK_S)

    def on_start(self) -> None:
        self.rng = random.Random(id(self))

    def _post(self, inputs, name: str) -> None:
        body = {"inputs": inputs}
        if MODEL:
            body["model"] = MODEL
        backoff = 0.0
        with self.client.post("/classify", json=body, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")  # 0: no answer, no body
            if r.status_code == 429:  # overloaded: wait as told, as a real client does
                backoff = float(r.headers.get("Retry-After") or 1) * self.rng.uniform(0.5, 1.5)
        if backoff:
            gevent.sleep(backoff)

    @task
    def classify(self) -> None:
        if self.rng.random() < LIST_SHARE:
            self._post(self.rng.sample(TEXTS, LIST_SIZE), "/classify [list]")
        else:
            self._post(self.rng.choice(TEXTS), "/classify")
