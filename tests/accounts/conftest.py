import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The ``people`` fixture makes six users per test; the production hasher would
    # dominate the run time. Login still checks real (MD5-hashed) passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
