import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.core.env import envsecret


class Command(BaseCommand):
    help = (
        "Create a first administrator account if there is none. A generated password is "
        "printed once, on creation, and kept nowhere; DIGITS_ADMIN_PASSWORD (or _FILE) "
        "sets it instead and must pass the password validators."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, username, url, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"An administrator account exists; log in at {url}.")
            # Versions before this one kept the generated password in this file.
            old_file = settings.DATA_DIR / "initial_admin_password"
            if old_file.exists():
                self.stdout.write(
                    self.style.WARNING(
                        f"{old_file} still holds the first password: delete it once you "
                        "have changed that password."
                    )
                )
            return

        given = envsecret("DIGITS_ADMIN_PASSWORD")
        if given:
            try:
                validate_password(given, User(username=username))
            except ValidationError as exc:
                raise CommandError(
                    "DIGITS_ADMIN_PASSWORD is not accepted: " + " ".join(exc.messages)
                ) from None
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(f"Created the administrator account “{username}”."))
        if given:
            self.stdout.write(
                f"Log in at {url} as “{username}” with the password from DIGITS_ADMIN_PASSWORD."
            )
        else:
            self.stdout.write(
                f"Log in at {url} as “{username}” with password “{password}”. "
                "It is shown this once and kept nowhere: note it now, then change it "
                "(Account → Change your password)."
            )
