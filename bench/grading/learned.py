"""Training and calibrating the learned free-text grader; train.py and evaluate.py share it.

The encoder (quizzes.grader_model) learns, for each (key point and question, answer) pair, whether
the answer covers, leaves out or contradicts the key point, from the raters' per-key-point labels.
Its bottom layers are frozen, so their output is computed once and only the top layers train.
The decision's numbers (temperature, ordinal weights and cut points, the contradiction bar, the
review bar) are then fitted on writers the encoder did not see.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict

import numpy as np
from common import DATA, LABELS, agreement

from quizzes import grader_model, grading
from quizzes.grader_model import Calibration, first_text

KP_LABEL = {"covered": 0, "missing": 1, "contradicted": 2}
REVIEW_LIMIT = 0.15  # at most this share of answers goes to an instructor
RISK_TARGET = 0.07  # wrong verdicts among the answers graded without review, on the calibration writers


def load_rows(folder=DATA) -> list[dict]:
    """The writers' answers with their final labels: id, writer, question, answer, kp, verdict.
    `folder`: the first two rounds (DATA, w1-w14) or the third (DATA / "round3", w15-w20)."""
    answers = {r["id"]: r for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines())}
    rows = []
    for label in map(json.loads, (folder / "labels.jsonl").read_text().splitlines()):
        rows.append({**answers[label["id"]], "kp": label["kp"], "verdict": label["verdict"]})
    return rows


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def training_pairs(rows, specs) -> tuple[list[tuple[str, str]], list[int]]:
    """One pair per key point of every answer the model would read (not empty, English, no copy)."""
    pairs, labels = [], []
    for r in rows:
        spec = specs[r["question"]]
        text = grading.clean_text(r["answer"])
        if grading.screen(spec, text) != "ok":
            continue
        for kp, label in zip(spec.key_points, r["kp"]):
            pairs.append((first_text(spec.prompt, kp), text))
            labels.append(KP_LABEL[label])
    return pairs, labels


def fit_encoder(
    rows,
    specs,
    *,
    seed: int = 0,
    epochs: int = 4,
    batch: int = 32,
    top_layers: int = grader_model.TOP_LAYERS,
    lr: float = 2e-4,
    log=print,
):
    """Fine-tune the top layers and the head on the rows' per-key-point labels."""
    import torch

    seed_everything(seed)
    torch.set_num_threads(2)
    tok = grader_model.tokenizer()
    encoder = grader_model.build_encoder(top_layers)
    pairs, labels = training_pairs(rows, specs)
    enc = tok(
        [a for a, _ in pairs], [b for _, b in pairs], truncation="only_second", max_length=grader_model.MAX_TOKENS
    )
    lengths = [len(x) for x in enc["input_ids"]]
    order = sorted(range(len(pairs)), key=lengths.__getitem__)
    hidden: list = [None] * len(pairs)
    started = time.perf_counter()
    encoder.eval()
    with torch.inference_mode():  # the frozen layers' output, once
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            padded = tok.pad({k: [enc[k][j] for j in idx] for k in enc}, return_tensors="pt")
            h = encoder.bottom(padded["input_ids"], padded["token_type_ids"], padded["attention_mask"])
            for row, j in enumerate(idx):
                hidden[j] = h[row, : lengths[j]].clone()
    log(f"  bottom layers on {len(pairs)} pairs: {time.perf_counter() - started:.0f} s")

    counts = np.bincount(labels, minlength=3)
    class_weight = torch.tensor((counts.sum() / np.maximum(counts, 1)) ** 0.5, dtype=torch.float32)
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    head = list(encoder.head.parameters())
    body = [p for p in trainable if all(p is not q for q in head)]
    optimiser = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": 1e-3}], weight_decay=0.01)
    steps = epochs * math.ceil(len(pairs) / batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[lr, 1e-3], total_steps=steps, pct_start=0.1)
    target = torch.tensor(labels)
    rng = random.Random(seed)
    encoder.train()
    for epoch in range(epochs):
        started, total = time.perf_counter(), 0.0
        # Batches of similar length (little padding), in random order.
        chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(chunks)
        for idx in chunks:
            width = max(lengths[j] for j in idx)
            h = torch.zeros(len(idx), width, hidden[idx[0]].shape[-1])
            mask = torch.zeros(len(idx), width, dtype=torch.long)
            for row, j in enumerate(idx):
                h[row, : lengths[j]] = hidden[j]
                mask[row, : lengths[j]] = 1
            loss = torch.nn.functional.cross_entropy(encoder.top(h, mask), target[idx], weight=class_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        log(f"  epoch {epoch + 1}/{epochs}: loss {total / len(pairs):.4f}, {time.perf_counter() - started:.0f} s")
    encoder.eval()
    return encoder


class TrainedModel:
    """A freshly trained encoder, served the way quizzes.grader_model.KeyPointModel serves the shipped one."""

    def __init__(self, encoder, temperature: float = 1.0):
        self.encoder = encoder
        self.tokenizer = grader_model.tokenizer()
        self.calibration = Calibration(temperature=temperature)

    logits = grader_model.KeyPointModel.logits
    probabilities = grader_model.KeyPointModel.probabilities

    @property
    def _lock(self):
        import contextlib

        return contextlib.nullcontext()

    @property
    def _torch(self):
        import torch

        return torch


def batched_logits(model, pairs: list[tuple[str, str]], size: int = 64) -> np.ndarray:
    """The model's logits for many pairs, in batches of similar length (far faster than one answer
    at a time; the numbers are the same up to float rounding)."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = np.zeros((len(pairs), 3), dtype=np.float32)
    for i in range(0, len(order), size):
        idx = order[i : i + size]
        out[idx] = model.logits([pairs[j] for j in idx])
    return out


def analyses(model, rows, specs) -> list[grading.Analysis]:
    """grading.analyse for every row, with the model's work batched across answers."""
    plans, pairs = [], []
    for r in rows:
        spec = specs[r["question"]]
        text = grading.clean_text(r["answer"])
        status = grading.screen(spec, text)
        if status != "ok":
            plans.append((status, spec, None))
            continue
        parts, n_whole, truncated = grading.windows(text)
        start = len(pairs)
        pairs += grading.model_pairs(spec, parts)
        plans.append((status, spec, (start, len(pairs), len(parts), n_whole, truncated)))
    probs = grader_model.softmax(batched_logits(model, pairs) / model.calibration.temperature) if pairs else None
    found = []
    for status, spec, plan in plans:
        if plan is None:
            found.append(grading.Analysis(status=status, n_key_points=len(spec.key_points)))
            continue
        start, end, n_windows, n_whole, truncated = plan
        found.append(grading.analysis_from_probabilities(spec, probs[start:end], n_windows, n_whole, truncated))
    return found


def whole_answer_logits(model, rows, specs) -> tuple[np.ndarray, np.ndarray]:
    pairs, labels = training_pairs(rows, specs)
    return batched_logits(model, pairs), np.array(labels)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the labels (a grid is enough)."""
    best, best_t = float("inf"), 1.0
    for t in np.arange(0.5, 4.01, 0.05):
        p = grader_model.softmax(logits / t)
        nll = -float(np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))
        if nll < best:
            best, best_t = nll, float(t)
    return round(best_t, 2)


def fit_ordinal(found: list[grading.Analysis], verdicts: list[str]) -> tuple[tuple, tuple, tuple]:
    """Non-negative weights on the cover features, non-negative penalties on the contradiction
    features, and two ordered cut points, by maximum likelihood."""
    import torch

    x = torch.tensor(np.array([grading.features(a.cover) for a in found]), dtype=torch.float64)
    c = torch.tensor(np.array([grading.contradiction_features(a.contradicts) for a in found]), dtype=torch.float64)
    y = torch.tensor([grading.ORDER.index(v) for v in verdicts])
    raw_w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    raw_v = torch.full((2,), -2.0, dtype=torch.float64, requires_grad=True)
    c0 = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    gap = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([raw_w, raw_v, c0, gap], max_iter=500, line_search_fn="strong_wolfe")

    def probabilities():
        w = torch.nn.functional.softplus(raw_w) * 4
        v = torch.nn.functional.softplus(raw_v) * 4
        z = x @ w - c @ v
        lo, hi = c0, c0 + torch.nn.functional.softplus(gap) + 1e-3
        at_least_partial, correct = torch.sigmoid(z - lo), torch.sigmoid(z - hi)
        probs = torch.stack([correct, at_least_partial - correct, 1 - at_least_partial], 1).clamp_min(1e-9)
        return probs, w, v, lo, hi

    def closure():
        opt.zero_grad()
        p, *_ = probabilities()
        loss = -torch.log(p[torch.arange(len(y)), y]).mean()
        loss.backward()
        return loss

    opt.step(closure)
    _, w, v, lo, hi = probabilities()

    def rounded(t):
        return tuple(round(float(e), 4) for e in t)

    return rounded(w), rounded(v), (round(float(lo), 4), round(float(hi), 4))


def decided(specs, rows, found, cal: Calibration) -> list[grading.Grade]:
    return [grading.decide(specs[r["question"]], a, cal) for r, a in zip(rows, found)]


def outcome(rows, grades, review_below: float) -> dict:
    """Agreement with the human verdicts on what is graded without review, and what goes to review."""
    kept = [(r["verdict"], g.verdict) for r, g in zip(rows, grades) if not grading.needs_review(g, review_below)]
    accuracy, kappa = agreement([t for t, _ in kept], [v for _, v in kept])
    correct = [(r, g) for r, g in zip(rows, grades) if r["verdict"] == "correct"]
    wronged = sum(1 for r, g in correct if g.verdict == "incorrect" and not grading.needs_review(g, review_below))
    return {
        "answers": len(rows),
        "review": 1 - len(kept) / max(len(rows), 1),
        "accuracy": accuracy,
        "kappa": kappa,
        "correct_answers": len(correct),
        "correct_graded_incorrect": wronged,
    }


def choose_review_bar(rows, grades) -> float:
    """From the risk/coverage curve: the lowest bar whose kept answers are wrong at most RISK_TARGET
    of the time, but never one that sends more than REVIEW_LIMIT to review."""
    bars = np.round(np.arange(0.34, 0.951, 0.01), 2)
    best = None
    for bar in bars:
        o = outcome(rows, grades, bar)
        if o["review"] > REVIEW_LIMIT:
            break
        best = float(bar)
        if 1 - o["accuracy"] <= RISK_TARGET:
            return best
    return best if best is not None else float(bars[0])


def calibrate(model, rows, specs, log=print) -> Calibration:
    """Fit the decision on writers the encoder was not trained on."""
    logits, labels = whole_answer_logits(model, rows, specs)
    temperature = fit_temperature(logits, labels)
    model.calibration = Calibration(temperature=temperature)
    found = analyses(model, rows, specs)
    usable = [(a, r["verdict"]) for a, r in zip(found, rows) if a.status == "ok"]
    weights, against, cuts = fit_ordinal([a for a, _ in usable], [v for _, v in usable])
    cal = Calibration(temperature=temperature, weights=weights, against=against, cuts=cuts)
    best = None
    for at in np.round(np.arange(0.3, 0.96, 0.05), 2):
        c = Calibration(**{**asdict(cal), "contradicts_at": float(at)})
        o = outcome(rows, decided(specs, rows, found, c), 0.0)
        if best is None or o["kappa"] > best[0]:
            best = (o["kappa"], float(at))
    cal = Calibration(**{**asdict(cal), "contradicts_at": best[1]})
    bar = choose_review_bar(rows, decided(specs, rows, found, cal))
    cal = Calibration(**{**asdict(cal), "review_below": bar})
    log(f"  calibration: {cal}")
    return cal


def split_by_writer(rows, writers) -> list[dict]:
    return [r for r in rows if r["writer"] in writers]


def table(name: str, o: dict) -> str:
    return (
        f"| {name} | {o['answers']} | {o['accuracy']:.3f} | {o['kappa']:.3f} | {o['review']:.1%} | "
        f"{o['correct_graded_incorrect']} of {o['correct_answers']} |"
    )


__all__ = ["LABELS"]
