"""Log-ins, wherever they are made, count their wrong passwords (accounts.services, log-in limits)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts import services
from accounts.backends import client_ip


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
