"""A Content-Security-Policy on every response: the site's pages run only its own scripts and styles,
so an injected <script> or inline handler does nothing."""

from django.conf import settings


def _policy(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Sends settings.JOURNEY_CSP as the Content-Security-Policy header. Django 6.0 has its own
    middleware for this (SECURE_CSP, the same dict); until then this is all the site needs: one fixed
    policy, no nonces, since no page has an inline script, style or handler."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = _policy(settings.JOURNEY_CSP)

    def __call__(self, request):
        response = self.get_response(request)
        # Django's debug pages (a 404 or an error with DEBUG on) style and script themselves inline.
        debug_page = settings.DEBUG and (response.status_code == 404 or response.status_code >= 500)
        if self.header and not debug_page:
            response.headers.setdefault("Content-Security-Policy", self.header)
        return response
