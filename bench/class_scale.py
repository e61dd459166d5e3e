"""The instructors' pages at scale: a generated class of 1,000 students, timed against a trivial view.

    .venv/bin/python bench/class_scale.py [--students 1000] [--repeats 20]

Builds the class (dashboard/classgen.py: 60 questions of the real bank, 5 handed-in tests and 3 jobs per
student) in a fresh SQLite database under var/bench-scale/, or in the database DATABASE_URL names
(PostgreSQL; the generated class is added to what is there). Then, as the logged-in instructor with
Django's test Client, it GETs in turn: the trivial view (below), the roster, the roster sorted by one
quiz's column, the questions page, the CSV export (whose streamed body it reads to the end) and the
first page of the class's experiments. Rounds are interleaved, so a change in the machine's load
touches every page alike. For each page: the queries of one request, p50 and p95, and the ratio of
its p50 to the trivial view's p50. Last, what keeping the summaries costs a write (`write_cost`).

The trivial view lives only in this script's URLconf: `login_required`, then HttpResponse("ok").
It goes through the same middleware (session, user) as the pages, so the ratio is the pages' own work.
"""

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "var" / "bench-scale"
sys.path.insert(0, str(REPO))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["JOURNEY_VAR_DIR"] = str(BENCH)
os.environ["DEBUG"] = "0"  # DEBUG keeps every query's SQL in memory: not what a real server does
BENCH.mkdir(parents=True, exist_ok=True)
if not os.environ.get("DATABASE_URL"):
    (BENCH / "journey.sqlite3").unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse, StreamingHttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import include, path, reverse  # noqa: E402

from dashboard.classgen import bank_ensure, class_generate  # noqa: E402


@login_required
def trivial(request):
    return HttpResponse("ok")


urlpatterns = [path("bench/trivial/", trivial), path("", include("config.urls"))]


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fetch(client, url):
    """One GET, the whole body read (a streamed one to its end); returns the response and the body."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def main(n_students, repeats):
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    bank_ensure()
    instructor = get_user_model().objects.create_user(username=f"bench-teacher-{time.time_ns()}")
    gen = class_generate(instructor=instructor, n_students=n_students, prefix=f"b{time.time_ns() % 10**6}-")
    built = time.perf_counter() - t0
    if connection.vendor == "postgresql":
        # Rows bulk-inserted a moment ago have no planner statistics yet; a running database's
        # autovacuum would have gathered them. Without them PostgreSQL picks nested loops over 1,000 rows.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    cid = gen.classroom.pk
    print(
        f"{connection.vendor}: {n_students} students, {len(gen.questions)} questions, "
        f"quizzes {', '.join(gen.quizzes)}; built in {built:.1f} s"
    )

    client = Client()
    client.force_login(instructor)
    roster = reverse("dashboard:class_dashboard", args=[cid])
    pages = {
        "trivial view (baseline)": "/bench/trivial/",
        "roster": roster,
        "roster, sorted by one quiz's best": f"{roster}?sort=-quiz:{gen.quizzes[0]}:best",
        "roster, behind 50%": f"{roster}?behind=50",
        "questions": reverse("dashboard:class_questions", args=[cid]),
        "CSV export": reverse("dashboard:class_export", args=[cid]),
        "experiments (first page of 50)": reverse("dashboard:class_jobs", args=[cid]),
    }
    queries, sizes, streamed = {}, {}, {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as ctx:
            response, body = fetch(client, url)
        queries[name], sizes[name] = len(ctx.captured_queries), len(body)
        streamed[name] = isinstance(response, StreamingHttpResponse)
    csv_rows = fetch(client, pages["CSV export"])[1].decode().count("\r\n") - 1
    assert csv_rows == n_students, csv_rows
    assert streamed["CSV export"], "the CSV is not streamed"

    times = {name: [] for name in pages}
    for _ in range(repeats):
        for name, url in pages.items():
            t = time.perf_counter()
            fetch(client, url)
            times[name].append(time.perf_counter() - t)

    base = percentile(times["trivial view (baseline)"], 0.5)
    print(f"\n{repeats} requests each, interleaved\n")
    print("| page | queries | p50 | p95 | p50 / trivial | body |")
    print("|---|---|---|---|---|---|")
    for name in pages:
        p50, p95 = percentile(times[name], 0.5), percentile(times[name], 0.95)
        print(
            f"| {name} | {queries[name]} | {p50 * 1000:,.1f} ms | {p95 * 1000:,.1f} ms | {p50 / base:,.1f}x "
            f"| {sizes[name] / 1024:,.0f} KiB |"
        )
    print(f"\nCSV: StreamingHttpResponse {streamed['CSV export']}, {csv_rows} student rows")
    write_cost(gen.students[0].pk, repeats)


def write_cost(student_id, repeats):
    """What keeping the summaries costs the writes: the refresh every service runs for the student
    whose history it changed, with this class's sums kept, against the same refresh with the class
    sums left out (as for a student in no class), interleaved. Before each refresh one of the
    student's graded answers changes score (as an instructor's review does), so there is a
    difference to carry into the class's sums."""
    from unittest import mock

    from dashboard import progress
    from quizzes.models import Answer

    answer = Answer.objects.filter(attempt__user_id=student_id, attempt__mode="test").order_by("pk").first()

    runs = {"refresh, class sums kept": None, "refresh, class sums left out (baseline)": {}}
    times = {name: [] for name in runs}
    queries = {}
    for _ in range(repeats):
        for name, classes in runs.items():
            patch = mock.patch.object(progress, "_classes_of", return_value=classes) if classes is not None else None
            with patch or contextlib.nullcontext():
                answer.score = 1.0 - (answer.score or 0.0)
                answer.save(update_fields=["score"])
                with CaptureQueriesContext(connection) as ctx:
                    t = time.perf_counter()
                    progress.progress_refresh(user_ids=[student_id])
                    times[name].append(time.perf_counter() - t)
                queries[name] = len(ctx.captured_queries)
    base = percentile(times["refresh, class sums left out (baseline)"], 0.5)
    print("\nOne student's summaries refreshed (what every write to their history adds)\n")
    print("| refresh | queries | p50 | p95 | p50 / baseline |")
    print("|---|---|---|---|---|")
    for name in runs:
        p50, p95 = percentile(times[name], 0.5), percentile(times[name], 0.95)
        print(f"| {name} | {queries[name]} | {p50 * 1000:,.1f} ms | {p95 * 1000:,.1f} ms | {p50 / base:,.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    main(args.students, args.repeats)
