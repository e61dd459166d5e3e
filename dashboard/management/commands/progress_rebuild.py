"""Fill the class pages' summaries from every student's history, from scratch.

For a database filled by other means than the services (an import, a restore, rows written by hand);
the services keep the summaries up to date on their own.
"""

from django.core.management.base import BaseCommand

from dashboard.progress import progress_rebuild


class Command(BaseCommand):
    help = "Recompute every student's progress summaries (roster, quiz scores, activity, question tallies)."

    def handle(self, *args, **options):
        n = progress_rebuild()
        self.stdout.write(f"Summaries rebuilt: {n} student(s) with some history.")
