"""Print the labelled answers for a second, blind rater: each question's prompt, reference answer
and key points, then its answers in a shuffled order, without label, kind or split.

    .venv/bin/python bench/grading/rater2.py [--file answers.jsonl] [--question SLUG]
    .venv/bin/python bench/grading/rater2.py --agreement

The rater writes labels_rater2.jsonl (one {"id", "question", "label"} per line, id = the answer's
line number in answers.jsonl, counted from 0). --agreement compares the two raters.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter

from common import HERE, LABELS, agreement, load_specs


def rows_with_ids(name: str) -> list[dict]:
    lines = (HERE / name).read_text().splitlines()
    return [dict(json.loads(line), id=i) for i, line in enumerate(lines) if line.strip()]


def show(name: str, only: str | None) -> None:
    specs = load_specs()
    rows = rows_with_ids(name)
    for slug, spec in specs.items():
        if only and slug != only:
            continue
        mine = [r for r in rows if r["question"] == slug]
        if not mine:
            continue
        random.Random(slug).shuffle(mine)  # the file's order groups answers by kind
        print(f"=== {slug}\nQ: {spec.prompt.strip()}\nREF: {spec.reference_answer.strip()}")
        for point in spec.key_points:
            print(f"  KP: {point}")
        for m in spec.misconceptions:
            print(f"  MISC: {m}")
        for r in mine:
            print(f"--- [{r['id']}] {r['answer']!r}")
        print()


def compare() -> None:
    rows = {r["id"]: r for r in rows_with_ids("answers.jsonl")}
    second = [json.loads(line) for line in (HERE / "labels_rater2.jsonl").read_text().splitlines() if line.strip()]
    assert len(second) == len(rows) and {s["id"] for s in second} == set(rows), "rater 2 must label every answer"
    for split in (None, "dev", "test"):
        pairs = [(rows[s["id"]]["label"], s["label"]) for s in second if split in (None, rows[s["id"]]["split"])]
        acc, kappa = agreement([a for a, _ in pairs], [b for _, b in pairs])
        print(f"{split or 'all'}: {len(pairs)} answers, agreement {acc:.3f}, Cohen's kappa {kappa:.3f}")
    print("\nrows: rater 1 (original labels), columns: rater 2\n")
    print("| | " + " | ".join(LABELS) + " |\n|---|---|---|---|")
    for a in LABELS:
        c = Counter(s["label"] for s in second if rows[s["id"]]["label"] == a)
        print(f"| {a} | " + " | ".join(str(c.get(b, 0)) for b in LABELS) + " |")
    print("\ndisagreements by kind (rater 1 -> rater 2):\n")
    by_kind: dict[str, Counter] = {}
    for s in second:
        r = rows[s["id"]]
        if r["label"] != s["label"]:
            by_kind.setdefault(r["kind"], Counter())[f"{r['label']} -> {s['label']}"] += 1
    for kind, c in sorted(by_kind.items()):
        print(f"  {kind}: " + ", ".join(f"{k} {n}" for k, n in c.most_common()))
    print("\neach disagreement:\n")
    for s in second:
        r = rows[s["id"]]
        if r["label"] != s["label"]:
            where = f"[{s['id']}] {r['question']} ({r['kind']}, {r['split']})"
            print(f"  {where}: {r['label']} -> {s['label']}: {r['answer']!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", default="answers.jsonl")
    parser.add_argument("--question")
    parser.add_argument("--agreement", action="store_true")
    args = parser.parse_args()
    compare() if args.agreement else show(args.file, args.question)
