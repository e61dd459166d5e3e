from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import is_instructor
from config.health import broker_ok, database_ok
from courses.selectors import sections_with_progress
from dashboard.views import instructor_home


def home(request):
    """A student's home is the chapter; an instructor's, the classes they teach (where log-in lands)."""
    if is_instructor(request.user):
        return instructor_home(request)
    sections = sections_with_progress(user=request.user)
    return render(request, "home.html", {"sections": sections})


@require_GET
@never_cache
def healthz(request):
    db, db_detail = database_ok()
    broker, broker_detail = broker_ok()
    status = 200 if db and broker else 503
    return JsonResponse(
        {"database": db_detail, "broker": broker_detail, "ok": db and broker},
        status=status,
    )
