"""What a locked-out login is told (django-axes), on the login page and in the API alike."""

from django.conf import settings


def lockout_minutes() -> int | None:
    """The cool-off in minutes, or None when a lockout lasts until an administrator lifts it."""
    cooloff = settings.AXES_COOLOFF_TIME
    return int(cooloff.total_seconds() // 60) if cooloff else None


def lockout_message() -> str:
    minutes = lockout_minutes()
    wait = f"try again in {minutes} minutes" if minutes else "ask an administrator to unlock it"
    return f"Too many failed logins for this account from this address; {wait}."
