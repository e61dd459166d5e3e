"""Django's log-in, behind the log-in limit: the one authentication backend, so that the site's log-in
page, the admin's and any later way in all count wrong passwords and refuse a paused account."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts import services


def client_ip(request) -> str | None:
    """The client's address. Behind N trusted proxies, each appends the address it saw to
    X-Forwarded-For, so the Nth entry from the right is the one no client can forge."""
    proxies = settings.JOURNEY_TRUSTED_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


class LoginLimitBackend(ModelBackend):
    """ModelBackend that checks no password while the username or the address is paused. The log-in
    forms say so first (accounts.forms.LoginLimitMixin); this refuses whatever path skips them. Wrong
    passwords are counted by the user_login_failed receiver in accounts.signals."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and username is not None:
            if services.login_is_locked(username=username, ip=client_ip(request)):
                request.login_locked = True  # a refused try while paused does not extend the pause
                raise PermissionDenied
        return super().authenticate(request, username=username, password=password, **kwargs)
