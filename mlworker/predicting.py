"""Predictions with the chapter's API (`load_learner`, `learn.predict`) and a per-process cache.

Knows nothing of Django. A worker process keeps recently used learners in memory, bounded by
count and by bytes, so a second prediction with the same model does not load it again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PredictionResult:
    label: str
    classes: list[str]
    probabilities: list[float]
    seconds: float
    cache_hit: bool


def _model_bytes(learn) -> int:
    return sum(t.numel() * t.element_size() for t in learn.model.state_dict().values())


class LearnerCache:
    """Least recently used learners, at most `max_models` of them and `max_bytes` in all."""

    def __init__(self, *, max_models: int, max_bytes: int):
        self.max_models, self.max_bytes = max_models, max_bytes
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._items.values())

    def __len__(self):
        return len(self._items)

    def get(self, key: str, path: Path):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0], True
        learn = load(path)
        size = _model_bytes(learn)
        with self._lock:
            self.misses += 1
            self._items[key] = (learn, size)
            self._items.move_to_end(key)
            while len(self._items) > 1 and (len(self._items) > self.max_models or self.bytes > self.max_bytes):
                self._items.popitem(last=False)
        return learn, False

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def load(path: Path):
    import torch
    from fastai.vision.all import load_learner  # .all brings the patches predict relies on (no_bar)

    learn = load_learner(path, cpu=not torch.cuda.is_available())
    learn.model.eval()
    return learn


def predict(learn, image, *, cache_hit: bool = False) -> PredictionResult:
    """`learn.predict` on a PIL image, exactly the chapter's call."""
    from fastai.vision.all import PILImage

    started = time.perf_counter()
    img = PILImage.create(image)
    with learn.no_bar():
        label, _, probs = learn.predict(img)
    classes = [str(c) for c in learn.dls.vocab]
    return PredictionResult(
        label=str(label),
        classes=classes,
        probabilities=[float(p) for p in probs],
        seconds=time.perf_counter() - started,
        cache_hit=cache_hit,
    )
