"""Membership changes reach the classes' sums (accounts.progress) from wherever they are made: the
join and co-instructor services, the admin, and the cascade when a user or a class is deleted.
Log-ins, wherever they are made, count their wrong passwords (accounts.services, log-in limits)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from accounts import services
from accounts.backends import client_ip
from accounts.models import ClassMembership, Classroom, Role
from accounts.progress import class_member_changed, class_sums_rebuild


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


@receiver(user_login_failed, dispatch_uid="login_failure_counted")
def _login_failed(sender, credentials, request=None, **kwargs):
    if request is None or getattr(request, "login_locked", False):
        return
    username = credentials.get(get_user_model().USERNAME_FIELD)
    if username is not None:
        services.login_failure_record(username=username, ip=client_ip(request))


@receiver(user_logged_in, dispatch_uid="login_failures_cleared")
def _logged_in(sender, request, user, **kwargs):
    if request is not None:
        services.login_failures_clear(username=user.get_username(), ip=client_ip(request))
