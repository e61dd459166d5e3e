"""The grading page's status poll, rendering every answer's block against only the changed ones.

    DATABASE_URL=postgres://... .venv/bin/python bench/status_poll.py [--repeats 30]

On a database with handed-in tests (the load test's last step leaves one: `<name>_load`), as the
test's student, in one process: the poll as the page sent it before (no `known`: every block
rendered) and as it sends it now (`known` = what the page shows: nothing rendered until a status
changes). Prints the median of each, their ratio and the queries of each.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--attempts", type=int, default=5, help="the last N handed-in tests")
    args = p.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from quizzes.models import Attempt

    settings.ALLOWED_HOSTS = ["*"]
    attempts = list(Attempt.objects.exclude(submitted_at=None).order_by("-pk")[: args.attempts])
    if not attempts:
        sys.exit("no handed-in test in this database: run the load test first (bench/load/run.py)")
    ratios = []
    for attempt in attempts:
        client = Client()
        client.force_login(attempt.user)
        url = f"/quizzes/attempts/{attempt.pk}/status/"
        rows = client.get(url).json()["answers"]
        known = {"known": ",".join(f"{r['n']}:{r.get('status', 'unchecked')}" for r in rows)}
        out = {}
        for name, params in (("every block", {}), ("changed blocks only", known)):
            client.get(url, params)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = client.get(url, params)
                times.append((time.perf_counter() - t0) * 1000)
            with CaptureQueriesContext(connection) as q:
                client.get(url, params)
            out[name] = statistics.median(times)
            print(f"attempt {attempt.pk} ({len(rows)} answers), {name}: median {out[name]:.1f} ms, {len(q)} queries, "
                  f"{len(r.content)} bytes")  # fmt: skip
        ratios.append(out["every block"] / out["changed blocks only"])
    print(f"median ratio, every block / changed blocks only: {statistics.median(ratios):.1f}x "
          f"over {len(attempts)} tests, {args.repeats} polls each")  # fmt: skip


if __name__ == "__main__":
    main()
