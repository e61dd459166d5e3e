"""Where a form may send the user back to: the `next` it carries, if it is a path on this site."""

from django.utils.http import url_has_allowed_host_and_scheme


def back_to(request, default: str | None) -> str | None:
    """The request's `next` (POST, then GET) when it is a path on this site and never another host,
    else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default
