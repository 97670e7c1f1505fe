from django.conf import settings
from django.core.management.base import BaseCommand

from apps.jobs import reaper


class Command(BaseCommand):
    help = (
        "Reconcile jobs forever: retry or fail jobs with a stale heartbeat, resend lost messages."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=None)
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args, interval, once, **options):
        if once:
            self.stdout.write(str(reaper.reap()))
            return
        from apps.jobs import tasks  # noqa: F401  declares the actors the reaper sends to

        self.stdout.write(f"Reaper running every {interval or settings.DIGITS_REAPER_INTERVAL} s")
        reaper.run_forever(interval)
