"""What the class pages show, kept as the history changes: one set of rows per student, and the same
numbers added up per class.

The services of courses, quizzes and mlworker say whose history they changed (accounts.history); the
receivers in dashboard.signals then call dashboard.progress.progress_refresh, in the same transaction,
so that a page over a whole class reads one row per student instead of aggregating every answer and
job on each request. `manage.py progress_rebuild` fills them from scratch. A row exists only for a
student with some history.

The tables keep the names they had when these models lived in accounts (migrations: accounts 0008
and dashboard 0001 moved the models without touching the tables).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Classroom


class StudentProgress(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="progress"
    )
    sections_read = models.PositiveIntegerField(default=0)
    cards_reviewed = models.PositiveIntegerField(default=0)
    tests = models.PositiveIntegerField(default=0, help_text="Tests handed in.")
    jobs = models.PositiveIntegerField(default=0)
    best_error = models.FloatField(null=True, blank=True, help_text="Lowest error rate of a job that succeeded.")
    last_activity = models.DateTimeField(null=True, blank=True)
    answers_waiting = models.PositiveIntegerField(default=0, help_text="Handed-in answers waiting for an instructor.")
    mean_best = models.FloatField(null=True, blank=True, help_text="Mean of the best scores of the quizzes tested.")

    class Meta:
        db_table = "accounts_studentprogress"

    def __str__(self):
        return f"progress of {self.user_id}"


class QuizProgress(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_progress")
    quiz = models.CharField(max_length=60)
    tests = models.PositiveIntegerField(default=0, help_text="Tests of this quiz handed in.")
    best = models.FloatField(null=True, blank=True)
    last = models.FloatField(null=True, blank=True, help_text="Score of the latest test started.")

    class Meta:
        db_table = "accounts_quizprogress"
        constraints = [models.UniqueConstraint(fields=["user", "quiz"], name="one_quiz_progress_per_quiz")]


class DayCounts(models.Model):
    """What happened on one day, for the activity chart: sections read, tests handed in, jobs that
    succeeded. Counts add up, so a class's day is its students' days added together."""

    read = models.PositiveIntegerField(default=0)
    tests = models.PositiveIntegerField(default=0)
    jobs = models.PositiveIntegerField(default=0)

    COUNTS = ("read", "tests", "jobs")

    class Meta:
        abstract = True


class ActivityDay(DayCounts):
    """One student's day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activity_days")
    day = models.DateField()

    class Meta:
        db_table = "accounts_activityday"
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="one_activity_row_per_day")]


class Moments(models.Model):
    """Sums over answers to one question in handed-in tests, from which the questions page computes
    facility (the mean score) and Moodle's discrimination index: the correlation, over those
    answers, between the answer's score x and the score of the rest of its test y (the test's
    summed scores minus x). Sums add up, so a class's are its students' added together."""

    answers = models.PositiveIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)  # Σx
    score_sq = models.FloatField(default=0.0)  # Σx²
    rest_sum = models.FloatField(default=0.0)  # Σy
    rest_sq = models.FloatField(default=0.0)  # Σy²
    cross = models.FloatField(default=0.0)  # Σxy

    MOMENTS = ("answers", "score_sum", "score_sq", "rest_sum", "rest_sq", "cross")

    class Meta:
        abstract = True


class QuestionTally(Moments):
    """One student's answers to one question in handed-in tests."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="question_tallies")
    question = models.ForeignKey("quizzes.Question", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "accounts_questiontally"
        constraints = [models.UniqueConstraint(fields=["user", "question"], name="one_tally_per_question")]


class WrongAnswerTally(models.Model):
    """How often one student gave one wrong answer (as the questions page writes it) to one question."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wrong_tallies")
    question = models.ForeignKey("quizzes.Question", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    n = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_wronganswertally"
        indexes = [models.Index(fields=["user", "question"])]


# ---------------------------------------------------------------- class sums
# The same numbers added up over a class's students, for the pages that show the whole class (the
# charts, the questions page). dashboard.progress keeps them: when a student's rows change it adds
# the difference to each class they sit in as a student, and a change of membership adds or takes
# away the student's rows. A key with nothing left has no row, as after `progress_rebuild`.


class ClassQuestionStats(Moments):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="question_stats")
    question = models.ForeignKey("quizzes.Question", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "accounts_classquestionstats"
        constraints = [models.UniqueConstraint(fields=["classroom", "question"], name="one_stats_row_per_question")]


class ClassWrongAnswer(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="wrong_answers")
    question = models.ForeignKey("quizzes.Question", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    n = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_classwronganswer"
        indexes = [models.Index(fields=["classroom", "question", "-n"])]


class ClassActivityDay(DayCounts):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="activity_days")
    day = models.DateField()

    class Meta:
        db_table = "accounts_classactivityday"
        constraints = [models.UniqueConstraint(fields=["classroom", "day"], name="one_class_activity_row_per_day")]


class ClassScoreBin(models.Model):
    """How many of the class's students have their best score of a quiz in one tenth of the range
    (bin 0 is under 10%, bin 9 is 90% and up, 100% included)."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="score_bins")
    quiz = models.CharField(max_length=60)
    bin = models.PositiveSmallIntegerField()
    students = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_classscorebin"
        constraints = [models.UniqueConstraint(fields=["classroom", "quiz", "bin"], name="one_count_per_bin")]


class ClassWaiting(models.Model):
    """How many of the class's handed-in answers wait for an instructor (the review queue's count)."""

    classroom = models.OneToOneField(Classroom, on_delete=models.CASCADE, related_name="waiting")
    answers = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_classwaiting"
