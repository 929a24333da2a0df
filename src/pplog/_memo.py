"""Answers kept across the batches of one query, for Python called per batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeptAnswers(Generic[K, V]):
    """`compute` of values, each value computed once while at most `kept`
    answers are held (past that they are forgotten and computed again).

    polars calls a query's Python function from several threads: one
    computes what is new while the others wait for its answers, rather than
    computing them too. `compute` takes a list of values and gives their
    answers in order.
    """

    def __init__(self, compute: Callable[[list[K]], Sequence[V]], kept: int) -> None:
        self.compute = compute
        self.kept = kept
        self.known: dict[K, V] = {}
        self.lock = threading.Lock()

    def __call__(self, values: list[K]) -> list[V]:
        """The answers for `values` (distinct), in their order."""
        with self.lock:
            new = [v for v in values if v not in self.known]
            if new:
                if len(self.known) + len(new) > self.kept:
                    self.known.clear()
                self.known.update(zip(new, self.compute(new), strict=True))
            if all(v in self.known for v in values):
                return [self.known[v] for v in values]
        # more distinct values than `kept` in one call: some were forgotten
        return list(self.compute(values))
