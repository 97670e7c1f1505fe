from django.core.management.base import BaseCommand, CommandError

from apps.core import health


class Command(BaseCommand):
    help = "Exit 0 when this node reaches the database and the broker (worker liveness probe)."

    def handle(self, *args, **options):
        for name in ("database", "broker"):
            try:
                health.CHECKS[name]()
            except Exception as exc:
                raise CommandError(f"{name}: {exc}") from exc
        self.stdout.write("ok")
