"""How the apps above accounts say that some students' history changed (a section read, a flashcard
reviewed, a test started or graded, an experiment queued or ended), without knowing who keeps
anything of it.

Every service that changes what a student has done calls `history_announce` inside its own
transaction; whatever keeps summaries of a student's history (dashboard.signals) receives
`history_changed` there and then, in that transaction, so a summary never outlives the change that
made it stale. With no receiver connected the announcement does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal

# Sent with `user_ids`: the students whose history changed (any iterable of ids, a queryset's
# values_list included; None and repeats may be in it); and `seen_at`, a time, when all that changed
# is that they were active then (nothing a summary counts): receivers may then only move "last seen".
history_changed = Signal()


def history_announce(*, user_ids: Iterable[int | None], sender=None, seen_at: datetime | None = None) -> None:
    """Say that these students' history changed. Call it inside the transaction that changed it,
    once per batch of changes (a regrade touching 1,000 students calls it once). With `seen_at`,
    the change is only that they were active at that time (an attempt started)."""
    history_changed.send(sender=sender, user_ids=user_ids, seen_at=seen_at)


class AnnouncesHistory:
    """For the admin of a model that is part of a student's history (attempts, answers, jobs, reading,
    reviews): an edit or a deletion there bypasses the services, so it announces the students it
    touched itself. `history_owner` is the lookup from the model to the student's id."""

    history_owner = "user_id"

    def _owners(self, queryset) -> list[int]:
        return list(queryset.order_by().values_list(self.history_owner, flat=True).distinct())

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = self._owners(type(obj).objects.filter(pk=obj.pk)) if obj.pk else []
            super().save_model(request, obj, form, change)
            history_announce(user_ids=before + self._owners(type(obj).objects.filter(pk=obj.pk)), sender=type(obj))

    def delete_model(self, request, obj):
        with transaction.atomic():
            owners = self._owners(type(obj).objects.filter(pk=obj.pk))
            super().delete_model(request, obj)
            history_announce(user_ids=owners, sender=type(obj))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            owners = self._owners(queryset)
            super().delete_queryset(request, queryset)
            history_announce(user_ids=owners, sender=queryset.model)
