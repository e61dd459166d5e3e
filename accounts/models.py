"""Classes an instructor teaches, who is in them, their quiz deadlines, and failed log-ins."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class AnswersShown(models.TextChoices):
    """When a class's students see the right answers of a test they handed in, strictest last."""

    AFTER_HAND_IN = "after_hand_in", "As soon as the test is handed in"
    AFTER_DEADLINE = "after_deadline", "After the quiz's deadline (as soon as it is handed in if the quiz has none)"
    NEVER = "never", "Never"


class Classroom(models.Model):
    name = models.CharField(max_length=100)
    code = models.CharField(max_length=12, unique=True, help_text="What students type (or follow) to join.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    test_answers = models.CharField(
        max_length=20,
        choices=AnswersShown.choices,
        default=AnswersShown.AFTER_DEADLINE,
        help_text="When students see a test's right answers, explanations and key points.",
    )

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("dashboard:class_dashboard", args=[self.pk])


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    INSTRUCTOR = "instructor", "Instructor"


class ClassMembership(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="class_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STUDENT)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classroom", "user"], name="one_membership_per_class")]
        indexes = [models.Index(fields=["user", "role"])]

    def __str__(self):
        return f"{self.user} · {self.classroom} · {self.role}"


class QuizDeadline(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="deadlines")
    quiz = models.CharField(max_length=60, help_text="A section's slug, or 'chapter' for the chapter quiz.")
    due_at = models.DateTimeField()

    class Meta:
        ordering = ["due_at"]
        constraints = [models.UniqueConstraint(fields=["classroom", "quiz"], name="one_deadline_per_quiz")]

    def __str__(self):
        return f"{self.classroom} · {self.quiz} · {self.due_at:%Y-%m-%d %H:%M}"


class Extension(models.Model):
    deadline = models.ForeignKey(QuizDeadline, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extensions")
    due_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deadline", "student"], name="one_extension_per_student")]

    def __str__(self):
        return f"{self.deadline} · {self.student} → {self.due_at:%Y-%m-%d %H:%M}"


class LoginFailure(models.Model):
    """One wrong password; enough of them recently for a username, an address or both pause the log-in."""

    username = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["username", "ip", "at"]), models.Index(fields=["ip", "at"])]
