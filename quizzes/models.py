"""Quiz questions imported from content/, students' attempts at quizzes, and their graded answers."""

from __future__ import annotations

import importlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from courses.models import GlossaryTerm, Section

CHAPTER_QUIZ = "chapter"


class QuestionType(models.TextChoices):
    SINGLE = "single", "Single choice"
    MULTIPLE = "multiple", "Multiple choice"
    TRUE_FALSE = "true_false", "True or false"
    NUMERIC = "numeric", "Number"
    MATCHING = "matching", "Matching"
    FILL_BLANK = "fill_blank", "Fill in the blank"
    FREE_TEXT = "free_text", "Free text"


class Question(models.Model):
    """One question of the bank. `content/` is its source; `loadcourse` writes it here."""

    # The fields that decide what counts as right: changing one of them calls for a regrade.
    KEY_FIELDS = (
        "type", "options", "answer", "tolerance", "pairs", "answers", "case_sensitive",
        "reference_answer", "key_points", "misconceptions",
    )  # fmt: skip

    slug = models.SlugField(unique=True, max_length=120)
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="questions")
    order = models.PositiveIntegerField(default=0, help_text="Position in its section's file.")
    type = models.CharField(max_length=20, choices=QuestionType.choices)
    source_ref = models.CharField(max_length=40, blank=True, help_text="The chapter's own question, e.g. Q7.")
    prompt = models.TextField(help_text="Markdown.")
    prompt_html = models.TextField(editable=False, default="")
    explanation = models.TextField(help_text="Markdown, shown once the question is answered.")
    explanation_html = models.TextField(editable=False, default="")
    terms = models.ManyToManyField(GlossaryTerm, blank=True, related_name="questions")
    options = models.JSONField(
        default=list, blank=True, help_text='single/multiple: [{"key": "a", "text": "...", "correct": true}, ...]'
    )
    answer = models.JSONField(null=True, blank=True, help_text="true_false: true or false; numeric: a number.")
    tolerance = models.FloatField(default=0, help_text="numeric: how far from the answer still counts as right.")
    unit = models.CharField(max_length=20, blank=True)
    pairs = models.JSONField(default=list, blank=True, help_text='matching: [{"left": "...", "right": "..."}, ...]')
    answers = models.JSONField(default=list, blank=True, help_text="fill_blank: the accepted answers.")
    case_sensitive = models.BooleanField(
        default=True, help_text="fill_blank: compare letter case exactly (code), or not (ordinary words)."
    )
    reference_answer = models.TextField(blank=True)
    key_points = models.JSONField(default=list, blank=True)
    misconceptions = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Off once the question left the bank; past attempts still show it."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["section__order", "order"]

    def __str__(self):
        return self.slug

    @property
    def is_free_text(self) -> bool:
        return self.type == QuestionType.FREE_TEXT

    def option_keys(self) -> list[str]:
        return [str(o["key"]) for o in self.options]

    def correct_keys(self) -> set[str]:
        return {str(o["key"]) for o in self.options if o.get("correct")}

    def free_text_spec(self):
        """What the free-text grader needs to know about this question."""
        grading = importlib.import_module("quizzes.grading")  # lands separately; the model loads lazily
        return grading.FreeTextSpec(
            prompt=self.prompt,
            reference_answer=self.reference_answer,
            key_points=tuple(self.key_points),
            misconceptions=tuple(self.misconceptions),
        )


class Attempt(models.Model):
    class Mode(models.TextChoices):
        PRACTICE = "practice", "Practice"
        TEST = "test", "Test"

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted, grades still coming"
        GRADED = "graded", "Graded"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts")
    quiz = models.CharField(max_length=60, help_text=f"A section's slug, or {CHAPTER_QUIZ!r} for the chapter quiz.")
    mode = models.CharField(max_length=10, choices=Mode.choices)
    question_ids = models.JSONField(default=list, help_text="The questions drawn for this attempt, in order.")
    shuffles = models.JSONField(
        default=dict, help_text="Per question id: the order its options (or matching answers) are shown in."
    )
    started_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    timed_out = models.BooleanField(default=False, help_text="Closed by the server when its time ran out.")
    score = models.FloatField(null=True, blank=True, help_text="0 to 1; answers still waiting count as 0.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "quiz", "state"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="attempt_score_0_to_1"
            ),
            # A second open test of a quiz would let a student hand one in blank to read the key
            # for the other; attempt_start resumes the open one, and this settles a race of two starts.
            models.UniqueConstraint(
                fields=["user", "quiz"], condition=Q(state="in_progress", mode="test"), name="one_open_test_per_quiz"
            ),
        ]

    def __str__(self):
        return f"{self.user} · {self.quiz} · {self.mode} #{self.pk}"

    def get_absolute_url(self):
        from django.urls import reverse

        if self.state == self.State.IN_PROGRESS:
            return reverse("quizzes:attempt", args=[self.pk])
        return reverse("quizzes:review", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.state == self.State.IN_PROGRESS

    @property
    def is_practice(self) -> bool:
        return self.mode == self.Mode.PRACTICE


class Verdict(models.TextChoices):
    CORRECT = "correct", "Right"
    PARTIAL = "partial", "Partly right"
    INCORRECT = "incorrect", "Wrong"
    NEEDS_REVIEW = "needs_review", "Awaiting review"
    PENDING = "pending", "Being graded"


# The grader's own verdicts: a grade that stands on its own (not waiting for anyone).
STANDING_VERDICTS = (Verdict.CORRECT, Verdict.PARTIAL, Verdict.INCORRECT)
REVIEW_REASON_MAX_CHARS = 1000

# Why a student may not ask a person to look at an answer (Answer.review_request_refusal).
MSG_REVIEW_NOT_HANDED_IN = "Hand the attempt in first: only handed-in answers can be reviewed."
MSG_REVIEW_NOT_FREE_TEXT = "Only written answers go to a person for review; this one was marked by its key."
MSG_REVIEW_PENDING = "This answer is still being graded. Once its grade is in, you can ask for a review."
MSG_REVIEW_ASKED_ALREADY = "You already asked for a review of this answer. An instructor will look at it."
MSG_REVIEW_WAITING = "This answer is already waiting for an instructor to grade it."
MSG_REVIEW_DECIDED = "An instructor has already graded this answer, so it is not one a person can review again."
MSG_REVIEW_NOTHING = "This answer has no grade from the free-text grader, so there is nothing for a person to review."


class GradedBy(models.TextChoices):
    AUTO = "auto", "Automatic"
    GRADER = "grader", "Free-text grader"
    INSTRUCTOR = "instructor", "Instructor"


class Answer(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="student_answers")
    position = models.PositiveSmallIntegerField(help_text="1 for the attempt's first question.")
    response = models.JSONField(null=True, blank=True, help_text="The student's answer; empty when unanswered.")
    saved_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=12, choices=Verdict.choices, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    graded_by = models.CharField(max_length=10, choices=GradedBy.choices, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True, help_text="What the grader says to the student.")
    grader_result = models.JSONField(null=True, blank=True, help_text="The free-text grader's own suggestion.")
    needs_review = models.BooleanField(default=False, db_index=True)
    instructor_comment = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When the student asked a person to look at the grader's grade."
    )
    review_request = models.TextField(blank=True, help_text="The student's reason for asking, if they gave one.")
    checks = models.PositiveSmallIntegerField(default=0, help_text="Practice: how often the student checked it.")
    # Each time the answer is sent to the free-text grader the round goes up; a result for an
    # older round (the student changed the answer meanwhile) is dropped.
    grading_round = models.PositiveIntegerField(default=0)
    grading_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "question"], name="one_answer_per_question"),
            models.UniqueConstraint(fields=["attempt", "position"], name="one_answer_per_position"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="answer_score_0_to_1"
            ),
        ]

    def __str__(self):
        return f"attempt {self.attempt_id} · {self.position}"

    @property
    def is_pending(self) -> bool:
        return self.verdict == Verdict.PENDING

    @property
    def is_final(self) -> bool:
        return bool(self.verdict) and not self.is_pending and not self.needs_review

    def review_request_refusal(self, *, handed_in: bool) -> str:
        """Why its student may not ask a person to look at this answer now; "" when they may. Only
        the free-text grader's own grade, standing on its own, can be sent: not one still being
        graded, already waiting, or decided by an instructor (that decision is final). Reads the
        question: load it with the answer."""
        if not handed_in:
            return MSG_REVIEW_NOT_HANDED_IN
        if not self.question.is_free_text:
            return MSG_REVIEW_NOT_FREE_TEXT
        if self.is_pending:
            return MSG_REVIEW_PENDING
        if self.graded_by == GradedBy.INSTRUCTOR:
            return MSG_REVIEW_DECIDED
        if self.needs_review:
            return MSG_REVIEW_ASKED_ALREADY if self.review_requested_at else MSG_REVIEW_WAITING
        if self.graded_by != GradedBy.GRADER or self.verdict not in STANDING_VERDICTS:
            return MSG_REVIEW_NOTHING
        return ""

    @property
    def grade_stands_in_review(self) -> bool:
        """Waiting for a person because its student asked, while the grader's own grade still counts."""
        return grade_stands_in_review(self.verdict, self.needs_review, self.review_requested_at)


def grade_stands_in_review(verdict: str, needs_review: bool, review_requested_at) -> bool:
    """The rule behind Answer.grade_stands_in_review, for code that reads rows as values."""
    return needs_review and review_requested_at is not None and verdict in STANDING_VERDICTS
