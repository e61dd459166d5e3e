"""The grader's labelled answers (bench/grading/data/) are what bench/grading/README.md says they are:
every answer labelled once per key point, the final labels rater 1's with the settled disagreements."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "bench" / "grading" / "data"
ROUNDS = {"rounds 1-2": (DATA, 14), "round 3": (DATA / "round3", 6)}


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key_points() -> dict[str, int]:
    out = {}
    for path in (REPO / "content" / "chapter-1" / "questions").glob("*.yaml"):
        for q in yaml.safe_load(path.read_text()):
            if q.get("type") == "free_text":
                out[q["slug"]] = len(q["key_points"])
    return out


@pytest.mark.parametrize("name", ROUNDS)
def test_every_answer_has_labels_that_fit_its_question(name):
    folder, n_writers = ROUNDS[name]
    answers = {a["id"]: a for a in read(folder / "answers.jsonl")}
    counts = key_points()
    assert len(answers) == 216 * n_writers
    per_writer = Counter((a["writer"], a["question"]) for a in answers.values())
    assert set(per_writer.values()) == {12} and len({w for w, _ in per_writer}) == n_writers
    assert {q for _, q in per_writer} == set(counts)
    for file in ("labels.jsonl", "labels_rater1.jsonl"):
        labels = read(folder / file)
        assert sorted(label["id"] for label in labels) == sorted(answers), file
        for label in labels:
            assert len(label["kp"]) == counts[answers[label["id"]]["question"]], label
            assert set(label["kp"]) <= {"covered", "missing", "contradicted"}
            assert label["verdict"] in {"correct", "partial", "incorrect"}


@pytest.mark.parametrize("name", ROUNDS)
def test_the_final_labels_are_rater_ones_with_each_disagreement_settled(name):
    folder, _ = ROUNDS[name]
    first = {r["id"]: r for r in read(folder / "labels_rater1.jsonl")}
    second = {r["id"]: r for r in read(folder / "labels_rater2.jsonl")}
    settled = {r["id"]: r for r in read(folder / "adjudicated.jsonl")}
    disagreed = {i for i, r in second.items() if (r["kp"], r["verdict"]) != (first[i]["kp"], first[i]["verdict"])}
    assert set(settled) == disagreed
    for label in read(folder / "labels.jsonl"):
        expected = settled.get(label["id"], first[label["id"]])
        assert (label["kp"], label["verdict"]) == (expected["kp"], expected["verdict"])


def test_no_writer_is_in_two_rounds():
    writers = [{a["writer"] for a in read(folder / "answers.jsonl")} for folder, _ in ROUNDS.values()]
    assert not writers[0] & writers[1]
