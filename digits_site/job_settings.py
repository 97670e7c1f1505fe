"""Settings of a job process: the apps and plugins, and nothing that opens a door.

The worker starts job processes with an allow-listed environment
(``apps.jobs.sandbox``): no database URL, secret key, S3 keys, broker or channel
layer URL reaches them. These settings add what that leaves: a random secret
key, no database (any query raises ``ImproperlyConfigured``), and the artifact
store reached through the worker's gate.
"""

import os

os.environ["DIGITS_JOB_PROCESS"] = "1"

from digits_site.settings import *  # noqa: E402,F403

DIGITS_JOB_ARTIFACT_SOCKET = os.environ.get("DIGITS_JOB_ARTIFACT_SOCKET", "")
DIGITS_S3 = {}

#: A job process serves no admin: its app without ``autodiscover()``, which imported every
#: app's and plugin's ``admin`` module into each job and model process (about 40 ms of a
#: small job's ~0.3 s of CPU on a slow 2-core machine).
INSTALLED_APPS = [  # noqa: F405
    "django.contrib.admin.apps.SimpleAdminConfig" if app == "django.contrib.admin" else app
    for app in INSTALLED_APPS  # noqa: F405
]
