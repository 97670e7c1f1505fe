"""How pages show a refused submission: as an error of the form that submitted it."""

from apps.usage.quotas import ParameterLimitExceeded, QuotaExceeded

#: What ``apps.jobs.services.submit`` raises for a job over a quota or a parameter limit.
REFUSALS = (QuotaExceeded, ParameterLimitExceeded)


def add_refusal(form, exc) -> None:
    """Add ``exc`` (one of ``REFUSALS``) to ``form``: on the field it names where the form
    has that field (``solver.epochs`` → ``epochs``), else as an error of the whole form."""
    field = None
    if isinstance(exc, ParameterLimitExceeded):
        for name in (exc.field, exc.field.rsplit(".", 1)[-1], exc.field.replace(".", "-")):
            if name in form.fields:
                field = name
                break
    form.add_error(field, exc.message)
