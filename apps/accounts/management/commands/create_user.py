import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Create a user, for provisioning by script. The password comes from a file or from "
        "standard input (never from the command line, where other users and the shell's "
        "history would see it) and must pass the password validators; without one, the user "
        "cannot log in until given one. Refuses an existing username."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--staff", action="store_true", help="May use the admin site.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--password-file", metavar="FILE", help="Read the password from FILE's first line."
        )
        source.add_argument(
            "--password-stdin", action="store_true", help="Read the password from stdin."
        )

    def handle(self, *args, username, email, staff, password_file, password_stdin, **options):
        password = self._password(password_file, password_stdin)
        user = get_user_model()(username=username, email=email, is_staff=staff)
        try:
            user.full_clean(exclude=["password"])
            if password is not None:
                validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(
                f"User “{username}” not created: {validation_message(exc)}"
            ) from None
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save()
        how = "" if password is not None else " (no password yet: it cannot log in)"
        kind = "staff user" if staff else "user"
        self.stdout.write(self.style.SUCCESS(f"Created the {kind} “{username}”{how}."))

    def _password(self, password_file, password_stdin) -> str | None:
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as f:
                    text = f.readline()
            except OSError as exc:
                raise CommandError(f"Cannot read the password file: {exc}") from None
        elif password_stdin:
            text = sys.stdin.readline()
        else:
            return None
        password = text.rstrip("\r\n")
        if not password:
            raise CommandError("The password is empty.")
        return password
