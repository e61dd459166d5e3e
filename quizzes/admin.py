from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from accounts.history import AnnouncesHistory
from courses.rendering import render_markdown
from quizzes.loader import TYPE_KEYS, question_problems
from quizzes.models import Answer, Attempt, Question
from quizzes.services import question_regrade

_EMPTY = (None, "", [], {})
_OPTIONAL = {"unit", "tolerance", "misconceptions"}


class QuestionAdminForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = [
            "slug", "section", "order", "type", "source_ref", "is_active", "prompt", "explanation", "terms",
            "options", "answer", "tolerance", "unit", "pairs", "answers", "case_sensitive", "reference_answer",
            "key_points", "misconceptions",
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        qtype = cleaned.get("type")
        # The same checks as the bank's loader, on the fields this type uses.
        data = {
            "slug": cleaned.get("slug"),
            "type": qtype,
            "prompt": cleaned.get("prompt"),
            "explanation": cleaned.get("explanation"),
            "terms": [t.slug for t in cleaned.get("terms") or []],
        }
        for key in sorted({k for keys in TYPE_KEYS.values() for k in keys} - {"case_sensitive"}):
            value = cleaned.get(key)
            empty = value in _EMPTY or (key == "tolerance" and value == 0)
            if key in TYPE_KEYS.get(qtype, ()):
                if not (empty and key in _OPTIONAL):
                    data[key] = value  # a required field left empty is reported by the check
            elif not empty:
                data[key] = value  # reported as not applying to this type
        for field, message in question_problems(data):
            self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionAdminForm
    list_display = ("slug", "section", "type", "source_ref", "is_active", "updated_at")
    list_filter = ("type", "section", "is_active")
    list_select_related = ("section",)
    search_fields = ("slug", "prompt", "explanation")
    filter_horizontal = ("terms",)
    actions = ["regrade_selected"]
    fieldsets = [
        (None, {"fields": ("slug", "section", "order", "type", "source_ref", "is_active", "prompt", "explanation")}),
        ("Glossary", {"fields": ("terms",)}),
        ("Key: single and multiple choice", {"fields": ("options",)}),
        ("Key: true or false, number", {"fields": ("answer", "tolerance", "unit")}),
        ("Key: matching", {"fields": ("pairs",)}),
        ("Key: fill in the blank", {"fields": ("answers", "case_sensitive")}),
        ("Key: free text", {"fields": ("reference_answer", "key_points", "misconceptions")}),
    ]

    def save_model(self, request, obj, form, change):
        # Admin edits go through the same sanitizing renderer as loadcourse.
        obj.prompt_html = render_markdown(obj.prompt)
        obj.explanation_html = render_markdown(obj.explanation)
        super().save_model(request, obj, form, change)
        if change and set(form.changed_data) & set(Question.KEY_FIELDS):
            handed_in = Answer.objects.filter(question=obj).exclude(attempt__state=Attempt.State.IN_PROGRESS)
            if n := handed_in.count():
                self.message_user(
                    request,
                    f"The key of {obj.slug} changed and {n} handed-in answer(s) were marked with the old one. "
                    "Use “Regrade answers” on the question's page (or the action in the list) to mark them again.",
                    messages.WARNING,
                )

    @admin.action(description="Regrade every handed-in answer to the selected questions")
    def regrade_selected(self, request, queryset):
        for question in queryset:
            self.message_user(request, f"{question.slug}: {question_regrade(question=question)}")

    def get_urls(self):
        regrade = require_POST(self.admin_site.admin_view(self.regrade_view))
        return [path("<int:object_id>/regrade/", regrade, name="quizzes_question_regrade"), *super().get_urls()]

    def regrade_view(self, request, object_id):
        question = get_object_or_404(Question, pk=object_id)
        if not self.has_change_permission(request, question):
            raise PermissionDenied
        self.message_user(request, f"{question.slug}: {question_regrade(question=question)}")
        return redirect(reverse("admin:quizzes_question_change", args=[question.pk]))


class AnswerInline(admin.TabularInline):
    model = Answer
    extra = 0
    can_delete = False
    fields = ("position", "question", "response", "score", "verdict", "graded_by", "needs_review")
    readonly_fields = fields


@admin.register(Attempt)
class AttemptAdmin(AnnouncesHistory, admin.ModelAdmin):
    list_display = ("id", "user", "quiz", "mode", "state", "score", "started_at", "submitted_at", "timed_out")
    list_filter = ("mode", "state", "quiz")
    list_select_related = ("user",)
    readonly_fields = ("question_ids", "shuffles")
    inlines = [AnswerInline]


@admin.register(Answer)
class AnswerAdmin(AnnouncesHistory, admin.ModelAdmin):
    history_owner = "attempt__user_id"
    list_display = ("id", "attempt", "question", "score", "verdict", "graded_by", "needs_review")
    list_filter = ("needs_review", "graded_by", "verdict", "question__type")
    list_select_related = ("attempt__user", "question")
    raw_id_fields = ("attempt", "question", "reviewed_by")
