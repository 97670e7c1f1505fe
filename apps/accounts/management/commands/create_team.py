from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.management.commands.create_user import validation_message
from apps.accounts.models import Team


class Command(BaseCommand):
    help = "Create a team, for provisioning by script. Refuses an existing slug or name."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The team's short name in URLs and the API.")
        parser.add_argument("--name", help="Its display name (default: the slug).")
        parser.add_argument("--description", default="")

    def handle(self, *args, slug, name, description, **options):
        team = Team(slug=slug, name=name or slug, description=description)
        try:
            team.full_clean()
        except ValidationError as exc:
            raise CommandError(f"Team “{slug}” not created: {validation_message(exc)}") from None
        team.save()
        self.stdout.write(self.style.SUCCESS(f"Created the team “{team.name}” ({slug})."))
