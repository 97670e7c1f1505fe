from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Membership, Role, Team


class Command(BaseCommand):
    help = (
        "Add a user to a team with a role, for provisioning by script. Refuses a user who "
        "is already a member (change a role in the admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("team", help="The team's slug.")
        parser.add_argument("user", help="The username.")
        parser.add_argument("--role", choices=Role.values, default=Role.MEMBER)

    def handle(self, *args, team, user, role, **options):
        team_obj = Team.objects.filter(slug=team).first()
        if team_obj is None:
            raise CommandError(f"No team “{team}”.")
        user_obj = get_user_model().objects.filter(username=user).first()
        if user_obj is None:
            raise CommandError(f"No user “{user}”.")
        existing = Membership.objects.filter(team=team_obj, user=user_obj).first()
        if existing:
            raise CommandError(
                f"“{user}” is already in “{team}”, as {existing.get_role_display().lower()}."
            )
        Membership.objects.create(team=team_obj, user=user_obj, role=role)
        self.stdout.write(self.style.SUCCESS(f"Added “{user}” to “{team}” as {role}."))
