"""``digits``: the command-line client, on the SDK.

    digits login --url http://127.0.0.1:8000 --username ursula
    digits datasets create --name digits --folder ./digits --option width=28 --option height=28 --watch
    digits models train --dataset 1 --name lenet --network lenet --epochs 5 --watch
    digits classify 1 seven.png
    digits download 1 -o lenet.tar.gz

Every command takes ``--json`` for scripting (one JSON document, or JSON lines for
``watch``). The server and token come from ``--url``/``--token``, ``DIGITS_URL``/
``DIGITS_TOKEN`` or the config file ``digits login`` writes. Exit status: 0 on success,
1 when the server refused (the message names each field at fault) or a watched job
failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from digits.client import completion, config
from digits.client.api import Client
from digits.client.errors import APIError, DigitsError
from digits.client.render import Printer, ProgressLine


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    out = Printer(json_output=args.json)
    try:
        return args.handler(args, out) or 0
    except APIError as exc:
        out.error(exc)
        return 1
    except (DigitsError, OSError) as exc:
        out.fail(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


def client_of(args) -> Client:
    return Client(args.url, args.token)


# --- commands -------------------------------------------------------------------------------
def cmd_login(args, out: Printer) -> int:
    username = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    client, token = Client.login(
        args.url, username, password, name=args.name, scope=args.scope,
        expires_in_days=args.expires_in_days,
    )  # fmt: skip
    path = config.write_file({"url": client.url, "token": token.key or ""})
    out.result(
        {"url": client.url, "username": username, "token": token.id, "scope": token.scope,
         "expires_at": token.expires_at, "config": str(path)},
        f"Logged in to {client.url} as {username} (token “{token.name}”, {token.scope}); "
        f"saved in {path}.",
    )  # fmt: skip
    return 0


def cmd_whoami(args, out: Printer) -> int:
    me = client_of(args).me()
    out.result(me, f"{me['username']} on {client_of(args).url}")
    return 0


def cmd_datasets_list(args, out: Printer) -> int:
    rows = client_of(args).datasets.list(type=args.type, status=args.status)
    out.table(rows, ["id", "name", "type", "status", "visibility"])
    return 0


def cmd_datasets_show(args, out: Printer) -> int:
    dataset = client_of(args).datasets.get(args.id)
    counts = ", ".join(f"{stage} {n}" for stage, n in dataset.counts().items()) or "not built"
    out.result(
        dataset.raw, f"{dataset.id} {dataset.name} ({dataset.type}): {dataset.status}; {counts}"
    )
    return 0


def cmd_datasets_create(args, out: Printer) -> int:
    client = client_of(args)
    options = {**parse_json(args.options_json, "--options-json"), **parse_pairs(args.option)}
    bar = ProgressLine(out, "Uploading")
    if args.folder:
        dataset = client.datasets.create_from_folder(
            args.folder, args.name, type=args.type, progress=bar.bytes, **options
        )
    else:
        files = dict(parse_pairs(args.file, numbers=False))
        dataset = client.datasets.create(
            args.type, args.name, options, files=files, progress=bar.bytes
        )
    bar.close()
    out.result(dataset.raw, f"Dataset {dataset.id} “{dataset.name}”: building (job {dataset.job}).")
    return follow(client, dataset.job, out) if args.watch else 0


def cmd_models_list(args, out: Printer) -> int:
    rows = client_of(args).models.list(status=args.status, dataset=args.dataset)
    out.table(rows, ["id", "name", "status", "dataset", "best_epoch", "best.val_accuracy"])
    return 0


def cmd_models_show(args, out: Printer) -> int:
    model = client_of(args).models.get(args.id)
    best = ", ".join(f"{k} {v:.4g}" for k, v in model.best.items() if isinstance(v, float))
    out.result(
        model.raw, f"{model.id} {model.name}: {model.status}; best epoch {model.best_epoch} {best}"
    )
    return 0


def cmd_models_compare(args, out: Printer) -> int:
    client = client_of(args)
    models = [client.models.get(model_id) for model_id in args.ids]
    columns = ["id", "name", "status", "best.epoch", "best.val_accuracy", "best.val_loss",
               "best.accuracy", "best.loss"]  # fmt: skip
    out.table(models, columns)
    return 0


def cmd_models_train(args, out: Printer) -> int:
    client = client_of(args)
    solver = {**parse_json(args.solver_json, "--solver-json"), **parse_pairs(args.option)}
    for name in ("epochs", "batch_size", "base_lr", "seed"):
        if getattr(args, name) is not None:
            solver[name] = getattr(args, name)
    models = client.models.train(args.dataset, args.name, network=args.network, **solver)
    out.table(models, ["id", "name", "status", "job"])
    if args.watch:
        return max(follow(client, model.job, out) for model in models)
    return 0


def cmd_jobs_list(args, out: Printer) -> int:
    rows = client_of(args).jobs.list(status=args.status, kind=args.kind)
    out.table(rows, ["id", "kind", "status", "progress", "name"])
    return 0


def cmd_jobs_watch(args, out: Printer) -> int:
    return follow(client_of(args), args.id, out, logs=args.logs)


def cmd_jobs_abort(args, out: Printer) -> int:
    job = client_of(args).jobs.abort(args.id)
    out.result(job.raw, f"Job {job.id}: {job.status} ({job.status_text})")
    return 0


def cmd_classify(args, out: Printer) -> int:
    answer = client_of(args).models.classify(
        args.model, args.image, stage=args.stage, index=args.index, epoch=args.epoch,
        top_n=args.top_n,
    )  # fmt: skip
    predictions = answer.get("predictions", [])
    lines = [f"{p['probability']:7.2%}  {p['label']}" for p in predictions]
    out.result(answer, "\n".join(lines) or json.dumps(answer))
    return 0


def cmd_evaluate(args, out: Printer) -> int:
    """Start an evaluation, follow its job, print its figures (and save its CSV)."""
    client = client_of(args)
    source = "archive" if args.archive else "list" if args.list else "stage"
    fields = {"top_n": args.top_n, "epoch": args.epoch}
    evaluation = client.evaluations.create(
        args.model, source, stage=args.stage, dataset=args.dataset, archive=args.archive,
        list=args.list, **{k: v for k, v in fields.items() if v is not None},
    )  # fmt: skip
    if follow(client, evaluation["job"], out) != 0:
        return 1
    evaluation = client.evaluations.get(evaluation["id"])
    if args.csv:
        client.evaluations.download_csv(evaluation["id"], args.csv)
    out.result(evaluation, summary_text(evaluation))
    return 0


def summary_text(evaluation: dict[str, Any]) -> str:
    summary = evaluation.get("summary") or {}
    n = summary.get("top_n")

    def share(value):
        return "-" if value is None else f"{value:.2%}"

    lines = [
        f"Evaluation {evaluation['id']}: {summary.get('count', 0)} entries, "
        f"{summary.get('labelled', 0)} labelled; top-1 {share(summary.get('accuracy'))}, "
        f"top-{n} {share(summary.get('top_n_accuracy'))}",
        "class        precision  recall  f1      support",
    ]
    for row in summary.get("classes", []):
        lines.append(
            f"{row['name'][:12]:<12} {row['precision']:<10.3f} {row['recall']:<7.3f} "
            f"{row['f1']:<7.3f} {row['support']}"
        )
    return "\n".join(lines)


def cmd_download(args, out: Printer) -> int:
    bar = ProgressLine(out, "Downloading")
    path = client_of(args).models.download(
        args.model, args.output or f"model-{args.model}.tar.gz", args.epoch, progress=bar.bytes
    )
    bar.close()
    out.result({"path": str(path), "size": path.stat().st_size}, f"Saved {path}")
    return 0


def cmd_completion(args, out: Printer) -> int:
    print(completion.script(build_parser(), args.shell))
    return 0


def follow(client: Client, job_id: int, out: Printer, logs: bool = False) -> int:
    """Follow a job to its end, showing progress and metrics; 0 if it is done, else 1."""
    bar = ProgressLine(out, f"Job {job_id}")
    final = None
    for event in client.jobs.watch(job_id):
        out.event(event) if out.json_output else bar.event(event, logs=logs)
        final = event.final_status or final
    bar.close()
    job = client.jobs.get(job_id)
    if not out.json_output:
        out.say(f"Job {job_id}: {job.status}" + (f": {job.error}" if job.error else ""))
    return 0 if (final or job.status) == "done" else 1


# --- arguments --------------------------------------------------------------------------------
def parse_pairs(pairs: list[str] | None, numbers: bool = True) -> dict[str, Any]:
    """``["width=28", "source=folder"]`` → ``{"width": 28, "source": "folder"}``."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DigitsError(f"Expected KEY=VALUE, got {pair!r}.")
        values[key] = _scalar(value) if numbers else value
    return values


def _scalar(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_json(text: str | None, flag: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DigitsError(f"{flag}: not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise DigitsError(f"{flag}: must be a JSON object.")
    return value


def build_parser() -> argparse.ArgumentParser:
    from digits.client.parser import build

    return build(globals())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
