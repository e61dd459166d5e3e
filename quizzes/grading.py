"""Grade a free-text answer by meaning, and say how sure.

A learned cross-encoder (`quizzes.grader_model`) reads each key point of the question beside the
answer and says whether the answer covers it, leaves it out or contradicts it. `decide` turns those
per-key-point probabilities into a verdict, a score and a calibrated confidence, with no model:
tests can give it any model outputs and check the decision itself. Three rules hold by
construction, whatever the model says:

- a key point counts as covered if the whole answer or any one of its sentences covers it, so adding
  a sentence (extra correct detail) can only raise what is covered, and credit only grows with it;
- an answer in which a key point is covered is never marked 0% as contradicting the chapter: such an
  answer goes to an instructor instead;
- whether an answer waits for an instructor is decided in one place, `needs_review`, against the
  one bar `JOURNEY_REVIEW_CONFIDENCE` sets (its default was read off the risk/coverage curve).

Answers that are empty, not in English, or a copy of the question are settled before the model.
`bench/grading/` holds the answers, the labels, the training and the evaluation on unseen writers.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from quizzes import grader_model
from quizzes.grader_model import CONTRADICTS, COVERS, Calibration

# ---------------------------------------------------------------- public types


@dataclass(frozen=True)
class FreeTextSpec:
    prompt: str
    reference_answer: str
    key_points: tuple[str, ...]
    misconceptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grade:
    score: float  # 0..1
    verdict: str  # "correct" | "partial" | "incorrect" | "needs_review"
    confidence: float  # 0..1, how sure the grader is of the verdict
    covered: tuple[bool, ...]  # per key point
    contradicted: bool  # the answer contradicts a key point of the reference
    feedback: str  # one or two sentences for the student


VERDICTS = ("correct", "partial", "incorrect", "needs_review")
ORDER = ("correct", "partial", "incorrect")  # the ordinal model's three outcomes
SCORES = {"correct": 1.0, "partial": 0.5, "incorrect": 0.0}
COVERED_AT = 0.5  # a key point whose cover probability reaches this counts as made

# ---------------------------------------------------------------- text

MAX_CHARS = 20_000
# An answer is read whole (in windows of this many words when longer) and sentence by sentence.
WINDOW_WORDS = 90
MAX_WINDOWS = 24  # about 1,500 words; past that the rest is not read and an instructor decides


def clean_text(text: str) -> str:
    """Plain text from whatever the student typed or pasted: no markup, no control characters.
    The one cleaning the grader applies (the form has already cut the length and dropped NULs)."""
    text = (text or "")[:MAX_CHARS]
    if "<" in text:
        text = re.sub(r"(?is)<(script|style)\b.*?(</\1\s*>|$)", " ", text)
        text = re.sub(r"(?s)<!--.*?-->", " ", text)
        text = re.sub(r"(?i)<\s*(br|/p|/li|/div|/h\d|li|p)\b[^>]{0,500}>", "\n", text)
        text = re.sub(r"<[^<>]{0,500}>", " ", text)
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return re.sub(r"[ \t\u00a0]+", " ", text).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n+\s*")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if any(ch.isalnum() for ch in s)]


def windows(text: str) -> tuple[list[str], int, bool]:
    """What the model reads: the whole answer (in overlapping windows when long), then each sentence
    on its own when there are several. Returns the windows, how many of them read the answer whole,
    and whether it was too long to read all of."""
    words = text.split()
    step = WINDOW_WORDS // 2
    starts = range(0, len(words) - step, step) if len(words) > WINDOW_WORDS else [0]
    whole = [" ".join(words[s : s + WINDOW_WORDS]) for s in starts]
    parts = sentences(text)
    extra = [p for p in parts if p not in whole] if len(parts) > 1 else []
    result = whole + list(dict.fromkeys(extra))
    return result[:MAX_WINDOWS], min(len(whole), MAX_WINDOWS), len(result) > MAX_WINDOWS


# Function words of the languages students here write in besides English. An answer that uses more
# of them than English ones is read by an instructor: the model reads English only.
_FOREIGN = frozenset(
    """le les des une est et que qui pour dans avec sur pas du au ce cette sont il elle nous vous ils
    très aussi mais donc parce être avoir fait peut plus
    el los las una es y del al como más pero porque también muy esto esta son hay puede para por con
    um não uma os também mais pelo pela são isso
    der das und ist nicht ein eine mit für von zu den dem im auf auch wird werden sind sich dass
    oder aber weil wenn kann man nur""".split()
)
_ENGLISH = frozenset(
    """the a an of to and is are was were be it its this that these those with as by at from for on in
    not no or but so because if when which who what how why they them their you your we our he she
    has have had do does did can could would should will than then there here into about only also
    model data training images image set learning""".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_english(text: str) -> bool:
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return True
    letters = [ch for ch in text if ch.isalpha()]
    if sum(1 for ch in letters if ord(ch) < 0x250) < 0.6 * len(letters):
        return False  # another script
    foreign = sum(1 for w in words if w in _FOREIGN)
    english = sum(1 for w in words if w in _ENGLISH)
    return not (foreign >= 2 and foreign > english)


_STOP = frozenset(
    """a an the of to in on for and or is are was were be been it its this that these those with as by at
    from do does did what which who why how when where they their them there you your i my me we our""".split()
)


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in _STOP]


def copy_share(prompt: str, text: str) -> float:
    """The share of the answer's content words that are the question's own."""
    asked = set(_content_words(prompt))
    words = _content_words(text)
    return sum(1 for w in words if w in asked) / max(len(words), 1)


COPY_AT = 0.85  # at least this share of the question's words, and nothing much else: a copy

# ---------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Analysis:
    """What the model says about one answer; `decide` turns it into a Grade without the model."""

    status: str  # "ok" | "empty" | "other_language" | "copy"
    n_key_points: int
    cover: tuple[float, ...] = ()  # per key point: its best cover probability over the windows
    contradicts: tuple[float, ...] = ()  # per key point: contradiction probability, answer read whole
    truncated: bool = False


def screen(spec: FreeTextSpec, text: str) -> str:
    """What can be said of an answer before the model reads it."""
    if not any(ch.isalnum() for ch in text):
        return "empty"
    if not is_english(text):
        return "other_language"
    if copy_share(spec.prompt, text) >= COPY_AT:
        return "copy"
    return "ok"


def model_pairs(spec: FreeTextSpec, parts: list[str]) -> list[tuple[str, str]]:
    """(key point and question, window) for every key point and window, key point by key point."""
    return [(grader_model.first_text(spec.prompt, k), w) for k in spec.key_points for w in parts]


def analysis_from_probabilities(
    spec: FreeTextSpec, probs: np.ndarray, n_windows: int, n_whole: int, truncated: bool
) -> Analysis:
    """Per key point: cover = the best over all windows; contradiction = the best over the windows
    that read the answer whole, since a sentence out of its context can seem to deny what the
    answer says."""
    n = len(spec.key_points)
    grid = probs.reshape(n, n_windows, -1)
    return Analysis(
        status="ok",
        n_key_points=n,
        cover=tuple(float(x) for x in grid[:, :, COVERS].max(axis=1)),
        contradicts=tuple(float(x) for x in grid[:, :n_whole, CONTRADICTS].max(axis=1)),
        truncated=truncated,
    )


def analyse(spec: FreeTextSpec, answer: str, model=None) -> Analysis:
    """Everything the model says about one answer, before any decision."""
    spec = _normalised(spec)
    text = clean_text(answer)
    status = screen(spec, text)
    if status != "ok":
        return Analysis(status=status, n_key_points=len(spec.key_points))
    parts, n_whole, truncated = windows(text)
    model = model or grader_model.load()
    probs = model.probabilities(model_pairs(spec, parts))
    return analysis_from_probabilities(spec, probs, len(parts), n_whole, truncated)


def _normalised(spec: FreeTextSpec) -> FreeTextSpec:
    """Hashable (lists become tuples) and with at least one key point: the reference answer if none."""
    key_points = tuple(k for k in spec.key_points if k and k.strip()) or (spec.reference_answer,)
    misconceptions = tuple(m for m in spec.misconceptions if m and m.strip())
    return FreeTextSpec(spec.prompt or "", spec.reference_answer or "", key_points, misconceptions)


# ---------------------------------------------------------------- decision


def features(cover: tuple[float, ...]) -> np.ndarray:
    """What the verdict is read from: the mean, the least and the best cover. Each only grows when
    a key point's cover grows, and the weights on them are never negative."""
    c = np.asarray(cover, dtype=float)
    return np.array([c.mean(), c.min(), c.max()])


def contradiction_features(contradicts: tuple[float, ...]) -> np.ndarray:
    c = np.asarray(contradicts or (0.0,), dtype=float)
    return np.array([c.max(), c.mean()])


def verdict_probabilities(a: Analysis, cal: Calibration) -> np.ndarray:
    """P(correct), P(partial), P(incorrect) from an ordinal logistic model: cover raises the score,
    contradiction lowers it (both weights are kept non-negative, so neither ever works backwards)."""
    z = float(np.dot(np.maximum(cal.weights, 0.0), features(a.cover)))
    z -= float(np.dot(np.maximum(cal.against, 0.0), contradiction_features(a.contradicts)))
    at_least_partial = 1.0 / (1.0 + np.exp(-(z - cal.cuts[0])))
    correct = 1.0 / (1.0 + np.exp(-(z - cal.cuts[1])))
    return np.array([correct, max(at_least_partial - correct, 0.0), 1.0 - at_least_partial])


def decide(spec: FreeTextSpec, a: Analysis, cal: Calibration | None = None) -> Grade:
    """Turn what the model saw into a verdict, a score, a confidence and feedback; no model here."""
    spec = _normalised(spec)
    cal = cal or grader_model.calibration()
    n = a.n_key_points
    nothing = (False,) * n
    if a.status == "empty":
        return Grade(0.0, "incorrect", 1.0, nothing, False, "No answer was given.")
    if a.status == "other_language":
        return Grade(
            0.0,
            "needs_review",
            0.0,
            nothing,
            False,
            "This answer is not in English, so an instructor will read it; an answer in English gets feedback at once.",
        )
    if a.status == "copy":
        copied = "Your answer repeats the question: answer it in your own words."
        return Grade(0.0, "incorrect", 0.95, nothing, False, copied)

    probs = verdict_probabilities(a, cal)
    covered = tuple(c >= COVERED_AT for c in a.cover)
    contradicted = max(a.contradicts, default=0.0) >= cal.contradicts_at
    best = int(np.argmax(probs))
    verdict, confidence = ORDER[best], float(probs[best])
    if contradicted and any(covered):
        # Right about one point and against another: never 0% for contradicting, never full marks
        # either. Partial stands; anything else is for an instructor.
        if verdict != "partial":
            verdict, confidence = "needs_review", min(confidence, 0.5)
    elif contradicted:
        verdict, confidence = "incorrect", max(float(probs[2]), max(a.contradicts))
    if a.truncated:
        confidence = min(confidence, 0.5)
        verdict = "needs_review" if verdict != "partial" else verdict
    suggestion = verdict if verdict != "needs_review" else ORDER[best]
    if contradicted and any(covered) and suggestion == "incorrect":
        suggestion = "partial"  # what the instructor sees suggested: never 0% for such an answer
    feedback = _feedback(spec, suggestion, covered, a, cal)
    if a.truncated:
        feedback += " Your answer is very long, so only its beginning was read; an instructor will check it."
    return Grade(SCORES[suggestion], verdict, round(confidence, 3), covered, contradicted, feedback)


def needs_review(grade: Grade, review_below: float) -> bool:
    """The one place that decides whether an instructor reads an answer before its student sees a
    grade: the grader declined to decide, or is less sure than the bar."""
    return grade.verdict == "needs_review" or grade.confidence < review_below


def _feedback(spec: FreeTextSpec, verdict: str, covered, a: Analysis, cal: Calibration) -> str:
    missing = [k for k, c in zip(spec.key_points, covered) if not c]
    denied = [k for k, p in zip(spec.key_points, a.contradicts) if p >= cal.contradicts_at]
    if verdict == "correct":
        if missing:
            return f"Well done. You could also mention this: {missing[0]}"
        return "Well done: your answer makes the key points."
    if verdict == "partial":
        head = f"Partly right: your answer makes {sum(covered)} of {len(covered)} key points."
        if denied:
            return f"{head} Check this one again: {denied[0]}"
        return f"{head} Still missing: {missing[0]}" if missing else head
    if denied:
        return f"Your answer seems to say the opposite of a key point. In fact: {denied[0]}"
    return f"Your answer does not yet make the key points of this question. The main one: {spec.key_points[0]}"


def grade_free_text(spec: FreeTextSpec, answer: str) -> Grade:
    """Grade one answer. The model loads once per process (a worker loads it when it starts)."""
    spec = _normalised(spec)
    return decide(spec, analyse(spec, answer))


def warm_up() -> None:
    """Load the model and run it once, so the first student of the day does not wait for it."""
    spec = FreeTextSpec("What is a key point?", "A key point.", ("A key point is one thing an answer must say.",))
    grade_free_text(spec, "It is one of the things a good answer says.")
