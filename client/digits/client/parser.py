"""The ``digits`` command line: its commands, their arguments and help texts."""

from __future__ import annotations

import argparse
from typing import Any


def _common(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """The options every command takes, before or after its name (``digits --json jobs
    list`` or ``digits jobs list --json``): a command's own copy must not reset them."""
    unset = {} if top else {"default": argparse.SUPPRESS}
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--url", help="server URL ($DIGITS_URL, the config file, http://127.0.0.1:8000)",
        **({"default": None} if top else unset),
    )  # fmt: skip
    group.add_argument(
        "--token", help="API token ($DIGITS_TOKEN or the config file)",
        **({"default": None} if top else unset),
    )  # fmt: skip
    group.add_argument(
        "--json", action="store_true", help="print JSON (JSON lines while watching)", **unset
    )


def build(handlers: dict[str, Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digits", description="Command-line client of the digits training platform."
    )
    _common(parser, top=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(parent, name: str, handler: str, help: str) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help)
        _common(sub)
        sub.set_defaults(handler=handlers[handler])
        return sub

    def group(name: str, help: str):
        sub = commands.add_parser(name, help=help, description=help)
        return sub.add_subparsers(title="commands", metavar="COMMAND")

    _login(command, commands)
    _datasets(command, group("datasets", "create, list and show datasets"))
    _models(command, group("models", "train, list, show and compare models"))
    _jobs(command, group("jobs", "list, watch and abort jobs"))
    _inference(command, commands)
    return parser


def _login(command, commands) -> None:
    sub = command(commands, "login", "cmd_login", "get a token with your password and save it")
    sub.add_argument("--username", help="(asked if not given)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_argument("--name", default="digits-cli", help="the new token's name")
    sub.add_argument("--scope", choices=["full", "read"], default="full")
    sub.add_argument("--expires-in-days", type=int, help="(default: never)")
    command(commands, "whoami", "cmd_whoami", "the user the token belongs to")
    sub = command(commands, "completion", "cmd_completion", "print a shell completion script")
    sub.add_argument("shell", choices=["bash", "zsh"])


def _datasets(command, datasets) -> None:
    sub = command(datasets, "list", "cmd_datasets_list", "datasets you may see")
    sub.add_argument("--type")
    sub.add_argument("--status", choices=["building", "ready", "error", "aborted"])
    sub = command(datasets, "show", "cmd_datasets_show", "one dataset, with its counts")
    sub.add_argument("id", type=int)
    sub = command(
        datasets, "create", "cmd_datasets_create", "create a dataset and start building it"
    )
    sub.add_argument("--name", required=True)
    sub.add_argument(
        "--type", default="image-classification", help="see `GET /api/v1/dataset-types/`"
    )
    source = sub.add_mutually_exclusive_group()
    source.add_argument(
        "--folder", help="a local folder (one subfolder per class), zipped and uploaded"
    )
    source.add_argument(
        "--file", action="append", metavar="FIELD=PATH", help="a file field of the type's form"
    )
    sub.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="an option of the type's form"
    )
    sub.add_argument("--options-json", metavar="JSON", help="options as one JSON object")
    sub.add_argument("--watch", action="store_true", help="follow the build job to its end")


def _models(command, models) -> None:
    sub = command(models, "list", "cmd_models_list", "models you may see")
    sub.add_argument("--status", choices=["training", "ready", "error", "aborted"])
    sub.add_argument("--dataset", type=int)
    sub = command(models, "show", "cmd_models_show", "one model and its best epoch")
    sub.add_argument("id", type=int)
    sub = command(models, "compare", "cmd_models_compare", "models side by side, best epochs")
    sub.add_argument("ids", type=int, nargs="+")
    sub = command(
        models, "train", "cmd_models_train", "train a model (a sweep with several values)"
    )
    sub.add_argument("--dataset", type=int, required=True)
    sub.add_argument("--name", required=True)
    sub.add_argument("--network", default="lenet", help="a standard network (default lenet)")
    sub.add_argument("--epochs", type=int)
    sub.add_argument("--batch-size", type=_number_or_list, help="e.g. 64, or 32,64 for a sweep")
    sub.add_argument("--base-lr", type=_number_or_list, help="e.g. 0.01, or 0.01,0.001 for a sweep")
    sub.add_argument("--seed", type=int)
    sub.add_argument("--option", action="append", metavar="KEY=VALUE", help="another solver option")
    sub.add_argument("--solver-json", metavar="JSON", help="solver options as one JSON object")
    sub.add_argument("--watch", action="store_true", help="follow training to its end")


def _jobs(command, jobs) -> None:
    sub = command(
        jobs, "list", "cmd_jobs_list", "your jobs and those shared with you, newest first"
    )
    sub.add_argument("--status", choices=["queued", "running", "done", "error", "aborted"])
    sub.add_argument("--kind")
    sub = command(jobs, "watch", "cmd_jobs_watch", "follow a job live: progress, metrics, its end")
    sub.add_argument("id", type=int)
    sub.add_argument("--logs", action="store_true", help="print the job's log lines too")
    sub = command(jobs, "abort", "cmd_jobs_abort", "abort a queued or running job")
    sub.add_argument("id", type=int)


def _inference(command, commands) -> None:
    sub = command(commands, "classify", "cmd_classify", "classify an image with a model")
    sub.add_argument("model", type=int)
    sub.add_argument("image", nargs="?", help="an image file (or --stage/--index)")
    sub.add_argument("--stage", choices=["train", "val", "test"])
    sub.add_argument("--index", type=int, help="a dataset entry instead of an image")
    sub.add_argument("--epoch", type=int, help="(default: the best)")
    sub.add_argument("--top-n", type=int, help="how many classes to show (default 5)")
    sub = command(
        commands, "evaluate", "cmd_evaluate",
        "classify many: accuracy, top-N, per-class figures, confusion matrix",
    )  # fmt: skip
    sub.add_argument("model", type=int)
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--stage", choices=["train", "val", "test"], help="(default: val)")
    source.add_argument("--archive", help="a zip or tar of images, a folder per class")
    sub.add_argument("--list", help="DIGITS' text list: `path [label]` per line")
    sub.add_argument("--dataset", type=int, help="with --stage (default: the model's)")
    sub.add_argument("--top-n", type=int, help="(default 5)")
    sub.add_argument("--epoch", type=int, help="(default: the best)")
    sub.add_argument("--csv", metavar="PATH", help="save every entry's predictions as CSV")
    sub = command(commands, "download", "cmd_download", "download a model as .tar.gz")
    sub.add_argument("model", type=int)
    sub.add_argument("-o", "--output", help="(default: model-<id>.tar.gz)")
    sub.add_argument("--epoch", type=int, help="(default: the best)")


def _number_or_list(text: str):
    values = [float(v) if "." in v or "e" in v else int(v) for v in text.split(",") if v]
    return values[0] if len(values) == 1 else values
