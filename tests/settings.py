"""Settings of a test run: the platform's own, with a fast password hasher.

pytest-django sets ``DJANGO_SETTINGS_MODULE`` to this module (``pyproject.toml``) and the
processes a test starts (workers, uvicorn, ``manage.py``) inherit the variable, so a
password hashed in the test process is checked with the same hasher there. Job processes
set their own (``digits_site.job_settings``); they never see a password.
"""

from digits_site.settings import *  # noqa: F403

# The ``people`` fixture makes six users per test; the production hasher costs a
# noticeable fraction of a second per user on two busy cores. Login still checks real
# (MD5-hashed) passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
