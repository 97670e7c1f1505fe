"""How a build runs, whatever the dataset's type: the page, the API and the build job all
take these two options, with these limits and defaults (their serializer fields:
``apps.datasets.requests``)."""

DEFAULT_PROCESSES = 2
MAX_PROCESSES = 64
DEFAULT_MAX_ERROR_PERCENT = 10
