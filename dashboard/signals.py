"""The summaries follow the history and the classes from wherever they change: a service of courses,
quizzes or mlworker announcing whose history it changed (accounts.history), and membership changes
made by the join and co-instructor services, the admin, or the cascade when a user or a class is
deleted. Connected by DashboardConfig.ready."""

from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from accounts.history import history_changed
from accounts.models import ClassMembership, Classroom, Role
from dashboard.progress import class_member_changed, class_sums_rebuild, progress_refresh, progress_seen


@receiver(history_changed, dispatch_uid="progress_on_history_changed")
def _history_changed(sender, user_ids, seen_at=None, **kwargs):
    # Called inside the announcing service's transaction: the summaries change with the history or not at all.
    if seen_at is not None:
        progress_seen(user_ids=user_ids, at=seen_at)
    else:
        progress_refresh(user_ids=user_ids)


@receiver(post_save, sender=ClassMembership, dispatch_uid="class_sums_on_membership_saved")
def _membership_saved(sender, instance, created, raw=False, **kwargs):
    if raw:  # loaddata: the fixture brings its own rows
        return
    if created:
        if instance.role == Role.STUDENT:
            class_member_changed(classroom_id=instance.classroom_id, user_id=instance.user_id, joined=True)
    else:  # the role may have changed either way: redo this class
        class_sums_rebuild([instance.classroom_id])


@receiver(pre_delete, sender=ClassMembership, dispatch_uid="class_sums_on_membership_deleted")
def _membership_deleted(sender, instance, origin=None, **kwargs):
    # Before anything is deleted (Django sends every pre_delete of a cascade first), so the student's
    # own rows are still there to take away. A class being deleted takes its sums with it.
    deleting_classes = isinstance(origin, Classroom) or (isinstance(origin, QuerySet) and origin.model is Classroom)
    if instance.role == Role.STUDENT and not deleting_classes:
        class_member_changed(classroom_id=instance.classroom_id, user_id=instance.user_id, joined=False)
