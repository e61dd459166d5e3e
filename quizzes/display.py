"""What a question looks like inside one attempt: its choices in the attempt's own order, the
student's current answer, and, on the review page only, the key in words.

Choices carry their position in the shuffled list as their value, never the bank's option key
or the matching solution, so the page source says nothing about which choice is right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quizzes.models import REVIEW_REASON_MAX_CHARS, Answer, Attempt, GradedBy, Question, QuestionType


def display_order(question: Question, attempt: Attempt) -> list:
    """Option keys (single, multiple) or right-side indices (matching) in this attempt's order."""
    if question.type in (QuestionType.SINGLE, QuestionType.MULTIPLE):
        current = question.option_keys()
    elif question.type == QuestionType.MATCHING:
        current = list(range(len(question.pairs)))
    else:
        return []
    saved = attempt.shuffles.get(str(question.pk), [])
    # An option added or removed in the admin after the draw: keep what still exists, add the new.
    return [k for k in saved if k in current] + [k for k in current if k not in saved]


@dataclass
class Choice:
    value: str
    text: str
    selected: bool
    input_id: str


@dataclass
class MatchRow:
    left: str
    field: str
    input_id: str
    selected: str


@dataclass
class QuestionView:
    answer: Answer
    question: Question
    position: int
    field: str
    choices: list[Choice] = field(default_factory=list)
    rights: list[tuple[str, str]] = field(default_factory=list)
    rows: list[MatchRow] = field(default_factory=list)
    text: str = ""
    value: str = ""

    @property
    def type(self) -> str:
        return self.question.type


def question_view(attempt: Attempt, answer: Answer) -> QuestionView:
    question, n = answer.question, answer.position
    response = answer.response or {}
    view = QuestionView(answer=answer, question=question, position=n, field=f"q{n}")
    order = display_order(question, attempt)
    if question.type in (QuestionType.SINGLE, QuestionType.MULTIPLE):
        texts = {str(o["key"]): o["text"] for o in question.options}
        chosen = {str(response["choice"])} if "choice" in response else {str(k) for k in response.get("choices", [])}
        view.choices = [
            Choice(value=str(i), text=texts[key], selected=key in chosen, input_id=f"q{n}-c{i}")
            for i, key in enumerate(order)
        ]
    elif question.type == QuestionType.MATCHING:
        view.rights = [(str(i), question.pairs[right]["right"]) for i, right in enumerate(order)]
        shown_at = {right: str(i) for i, right in enumerate(order)}
        given = response.get("pairs", {})
        for left, pair in enumerate(question.pairs):
            picked = given.get(str(left))
            view.rows.append(
                MatchRow(
                    left=pair["left"],
                    field=f"q{n}-{left}",
                    input_id=f"q{n}-m{left}",
                    selected=shown_at.get(picked, "") if isinstance(picked, int) else "",
                )
            )
    elif question.type == QuestionType.TRUE_FALSE:
        value = response.get("value")
        view.value = "" if value is None else ("true" if value else "false")
    else:
        view.text = str(response.get("text", ""))
    return view


def response_words(question: Question, response: dict | None) -> list[str]:
    """The student's answer in words, for the review page (the template escapes it)."""
    if not response:
        return []
    try:
        if question.type == QuestionType.SINGLE:
            return [o["text"] for o in question.options if str(o["key"]) == str(response["choice"])]
        if question.type == QuestionType.MULTIPLE:
            chosen = {str(k) for k in response["choices"]}
            return [o["text"] for o in question.options if str(o["key"]) in chosen]
        if question.type == QuestionType.TRUE_FALSE:
            return ["True" if response["value"] else "False"]
        if question.type == QuestionType.MATCHING:
            words = []
            for left, pair in enumerate(question.pairs):
                right = response["pairs"].get(str(left))
                fits = isinstance(right, int) and 0 <= right < len(question.pairs)
                shown = question.pairs[right]["right"] if fits else "—"
                words.append(f"{pair['left']} → {shown}")
            return words
        return [str(response["text"])]
    except (KeyError, TypeError, IndexError):
        return ["(this answer no longer fits the question)"]


def key_words(question: Question) -> list[str]:
    """The right answer in words, shown only once an attempt is submitted or an answer checked."""
    if question.type in (QuestionType.SINGLE, QuestionType.MULTIPLE):
        return [o["text"] for o in question.options if o.get("correct")]
    if question.type == QuestionType.TRUE_FALSE:
        return ["True" if question.answer else "False"]
    if question.type == QuestionType.NUMERIC:
        text = f"{question.answer:g}" if isinstance(question.answer, float) else str(question.answer)
        if question.unit:
            text += f" {question.unit}"
        if question.tolerance:
            text += f" (± {question.tolerance:g})"
        return [text]
    if question.type == QuestionType.MATCHING:
        return [f"{p['left']} → {p['right']}" for p in question.pairs]
    if question.type == QuestionType.FILL_BLANK:
        return [str(a) for a in question.answers]
    return [question.reference_answer]


@dataclass
class ResultView:
    """One answer as the review page (or a practice check) shows it."""

    answer: Answer
    question: Question
    position: int
    status: str  # "unchecked", "pending", "review" or "final"
    given: list[str]
    key: list[str]
    key_points: list[tuple[str, bool | None]]
    show_key: bool
    hidden: bool = False  # the right answers are not the student's to see yet: not even right or wrong
    may_ask: bool = False  # the student may ask a person to look at this grade (the page offers the form)
    for_student: bool = True  # the viewer is the student (the page says "you"), not their instructor
    points_by: str = "grader"  # who says which key points the answer covers: "grader" or "instructor"

    reason_max_chars = REVIEW_REASON_MAX_CHARS

    @property
    def score_percent(self) -> int | None:
        return None if self.answer.score is None else round(self.answer.score * 100)


def answer_status(answer: Answer) -> str:
    if answer.verdict == "":
        return "unchecked"
    if answer.is_pending:
        return "pending"
    if answer.needs_review:
        # "requested": its student asked a person to look at it, and the grader's grade counts meanwhile.
        return "requested" if answer.grade_stands_in_review else "review"
    return "final"


def full_marks_from_instructor(answer: Answer) -> bool:
    return answer.graded_by == GradedBy.INSTRUCTOR and answer.score is not None and answer.score >= 1.0


def result_view(
    answer: Answer, *, show_key: bool = True, hidden: bool = False, for_student: bool = True, handed_in: bool = False
) -> ResultView:
    """With `hidden`, only the student's own answer and where its grading stands: no verdict, no
    score, no grader feedback (it quotes key points), no key, no explanation. For the
    student (`for_student`) of a handed-in attempt, it offers a review of the grader's grade where
    they may ask for one; an instructor reading it sees the same page, less the offer.

    Once an instructor gives full marks, every key point shows as covered: their grade says the
    answer has all a full answer needs, and the grader's own marks beside it would go on telling
    the student a point is missing. The list then says it is the instructor's word, not the grader's."""
    question = answer.question
    show_key = show_key and not hidden
    points: list[tuple[str, bool | None]] = []
    points_by = "grader"
    if question.is_free_text and show_key:
        covered = (answer.grader_result or {}).get("covered") or []
        if full_marks_from_instructor(answer):
            covered, points_by = [True] * len(question.key_points), "instructor"
        points = [(p, covered[i] if i < len(covered) else None) for i, p in enumerate(question.key_points)]
    return ResultView(
        answer=answer,
        question=question,
        position=answer.position,
        status=answer_status(answer),
        given=response_words(question, answer.response),
        key=key_words(question) if show_key else [],
        key_points=points,
        show_key=show_key,
        hidden=hidden,
        may_ask=for_student and handed_in and not answer.review_request_refusal(handed_in=True),
        for_student=for_student,
        points_by=points_by,
    )
