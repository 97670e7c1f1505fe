"""Entry point of a job process: ``python -m apps.jobs.child <events-fd>``.

The worker writes the job spec as JSON on stdin; the job reports on the file
descriptor given as argument (see ``apps.jobs.context``). Before anything of the
job runs, the process confines itself as the spec says (``apps.jobs.confine``)
and then sets Django up with ``digits_site.job_settings``: no database, no secret.
stdout and stderr are captured by the worker as log lines, so a user's ``print``
still shows up.
Exit status: 0 done, 1 failed (a ``failure`` message says why), 3 aborted, 4 the
infrastructure failed it (the artifact store stayed unreachable: ``StoreUnavailable``),
which the worker retries without using up one of the user's attempts.
"""

import json
import os
import sys
import traceback

EXIT_DONE, EXIT_FAILED, EXIT_ABORTED, EXIT_INFRA = 0, 1, 3, 4


def infrastructure_fault(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is the store being unreachable."""
    from apps.core.storage.base import StoreUnavailable

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, StoreUnavailable):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str]) -> int:
    channel = os.fdopen(int(argv[1]), "w", buffering=1, encoding="utf-8")
    spec = json.load(sys.stdin)

    def report(type_: str, **data) -> None:
        channel.write(json.dumps({"type": type_, "data": data}) + "\n")
        channel.flush()

    from apps.jobs.confine import Confinement, ConfinementError, enter

    try:
        enter(Confinement(**spec["sandbox"]))
    except (ConfinementError, OSError) as exc:
        report("failure", error=f"The job could not be sandboxed: {exc}", traceback="")
        return EXIT_FAILED

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.job_settings")
    import django

    django.setup()

    from apps.jobs.context import JobAborted, JobContext
    from apps.jobs.kinds import get_kind

    ctx = JobContext(
        job_id=spec["job_id"],
        kind=spec["kind"],
        params=spec["params"],
        attempt=spec["attempt"],
        staging_prefix=spec["staging_prefix"],
        channel=channel,
    )
    ctx.install_signal_handlers()

    try:
        result = get_kind(spec["kind"]).run(ctx)
    except JobAborted:
        return EXIT_ABORTED
    except Exception as exc:
        infra = infrastructure_fault(exc)
        report(
            "failure", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
            kind="infrastructure" if infra else "job",
        )  # fmt: skip
        return EXIT_INFRA if infra else EXIT_FAILED
    report("result", result=result or {})
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main(sys.argv))
