from django.core.management.base import BaseCommand, CommandError

from apps.jobs import liveness


class Command(BaseCommand):
    help = (
        "Liveness probe of the reaper or a worker on this node: exit 0 when the process beat "
        "within --max-age seconds (the reaper after each pass, a worker while its consumer "
        "and worker threads are alive). Needs no database."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", choices=liveness.ROLES)
        parser.add_argument("--max-age", type=float, default=30.0)

    def handle(self, *args, role, max_age, **options):
        age = liveness.age(role)
        if age is None:
            raise CommandError(f"{role}: no beat yet")
        if age > max_age:
            raise CommandError(f"{role}: last beat {age:.0f} s ago (more than {max_age:.0f} s)")
        self.stdout.write(f"ok: last beat {age:.1f} s ago")
