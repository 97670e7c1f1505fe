import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.core.env import envsecret


class Command(BaseCommand):
    help = "Create a first administrator account if there is none, and say how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, username, url, **options):
        User = get_user_model()
        password_file = settings.DATA_DIR / "initial_admin_password"
        if not User.objects.filter(is_superuser=True).exists():
            password = envsecret("DIGITS_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            User.objects.create_superuser(username, email="", password=password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            self.stdout.write(
                self.style.SUCCESS(f"Created the administrator account “{username}”.")
            )
        if password_file.exists():
            password = password_file.read_text().strip()
            self.stdout.write(
                f"Log in at {url} as “{username}” with password “{password}” "
                f"(kept in {password_file}; delete that file once you have changed it)."
            )
