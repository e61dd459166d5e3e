"""What the grading benchmark scripts share: the questions, the labelled answers, the scores."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = HERE / "data"  # the writers' answers and the raters' labels
TEAM = HERE / "team"  # the earlier, team-written answers (one writer's style)
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402

from quizzes.grading import FreeTextSpec  # noqa: E402

LABELS = ("correct", "partial", "incorrect")


def load_specs() -> dict[str, FreeTextSpec]:
    specs = {}
    for path in sorted((REPO / "content" / "chapter-1" / "questions").glob("*.yaml")):
        for q in yaml.safe_load(path.read_text()):
            if q.get("type") == "free_text":
                specs[q["slug"]] = FreeTextSpec(
                    prompt=q["prompt"],
                    reference_answer=q["reference_answer"],
                    key_points=tuple(q["key_points"]),
                    misconceptions=tuple(q.get("misconceptions") or ()),
                )
    return specs


SPLITS = ("dev", "test", "heldout")
# answers.jsonl holds the dev and test splits; heldout.jsonl, written and committed later, before the
# grader had read any of it, holds the held-out split.
FILES = ("answers.jsonl", "heldout.jsonl")


def load_answers(*splits: str) -> list[dict]:
    """The labelled answers of the given splits (all of them when none is given)."""
    rows = [json.loads(line) for name in FILES for line in (TEAM / name).read_text().splitlines() if line.strip()]
    return [r for r in rows if not splits or r["split"] in splits]


def agreement(truth: list[str], predicted: list[str]) -> tuple[float, float]:
    """Accuracy and Cohen's kappa over the three labels."""
    if not truth:
        return float("nan"), float("nan")
    accuracy = float(np.mean([t == p for t, p in zip(truth, predicted)]))
    return accuracy, float(cohen_kappa_score(truth, predicted, labels=list(LABELS)))
