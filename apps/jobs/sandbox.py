"""The job sandbox as the worker prepares it: environment, working folder, confinement.

A job process starts from an allow-listed environment (no credential, no service
URL), with settings that open no database and hold no secret
(``digits_site.job_settings``), in a private working folder, confined by
``apps.jobs.confine`` and reaching the artifact store only through its worker
(``apps.jobs.artifacts``). docs/decisions/0007-job-sandbox.md has the threat model.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import secrets
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.jobs.confine import Confinement, can_unshare

log = logging.getLogger(__name__)

#: Environment variables a job process inherits (names, or prefixes ending in ``*``).
ENV_ALLOWED = (
    "PATH", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "PYTHONPATH", "PYTHONHASHSEED",
    "PYTHONWARNINGS", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_*",
    "NVIDIA_*", "TF_*", "KERAS_*", "XLA_FLAGS", "OMP_*", "MKL_*", "OPENBLAS_*",
    "DIGITS_SERVER_DATA_ROOTS", "DIGITS_IMPORT_PREFIXES", "DIGITS_MAX_ARCHIVE_BYTES",
    "DIGITS_MAX_ARCHIVE_MEMBERS", "DIGITS_MAX_UPLOAD_MB", "DIGITS_DISABLED_PLUGINS",
    "DIGITS_EXTRA_PLUGINS", "DIGITS_LOG_LEVEL", "DIGITS_TIME_ZONE", "DIGITS_DATA_DIR",
)  # fmt: skip
#: Never passed on, whatever the allow-list says (a ``*_FILE`` names a secret's file).
ENV_NEVER = ("DATABASE_URL", "DIGITS_SECRET_KEY", "DIGITS_S3_ACCESS_KEY", "DIGITS_S3_SECRET_KEY",
             "DIGITS_BROKER_URL", "DIGITS_CHANNEL_LAYER_URL", "DIGITS_ADMIN_PASSWORD")  # fmt: skip

#: Folders a namespaced job sees empty (credentials, other users' files, sockets).
HIDDEN = ("/root", "/home", "/run", "/var/run", "/tmp", "/var/tmp", "/var/lib", "/var/log",
          "/var/spool", "/var/mail", "/var/backups", "/mnt", "/media", "/srv", "/boot")  # fmt: skip


def _allowed(name: str) -> bool:
    if name in ENV_NEVER or name.endswith("_FILE"):
        return False
    patterns = (*ENV_ALLOWED, *settings.DIGITS_JOB_ENV_ALLOW)
    return any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in patterns)


def environment(workdir: Path, socket_path: str) -> dict[str, str]:
    """The whole environment of a job process."""
    env = {name: value for name, value in os.environ.items() if _allowed(name)}
    code = str(settings.BASE_DIR)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code, env.get("PYTHONPATH")) if p)
    tmp = workdir / "tmp"
    env.update(
        HOME=str(workdir), TMPDIR=str(tmp), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
        DJANGO_SETTINGS_MODULE="digits_site.job_settings", DIGITS_JOB_ARTIFACT_SOCKET=socket_path,
        MPLCONFIGDIR=str(tmp),
        # A job's uid has no passwd entry: getpass.getuser() and friends read these first.
        USER="digits-job", LOGNAME="digits-job",
    )  # fmt: skip
    return env


def server_environment() -> dict[str, str]:
    """The environment of a job fork server (``apps.jobs.forkserver``): a job's, with a
    folder of the work root as home; each job process it forks gets its own."""
    home = Path(settings.DIGITS_JOB_WORK_ROOT) / "forkserver"
    home.mkdir(parents=True, exist_ok=True)
    env = environment(home, "")
    env.pop("DIGITS_JOB_ARTIFACT_SOCKET")
    return env


@functools.cache
def mode() -> str:
    """How this worker confines job processes: ``namespaces``, ``landlock`` or ``none``."""
    wanted = settings.DIGITS_JOB_SANDBOX
    if wanted in ("none", "namespaces"):
        return wanted
    if wanted != "landlock" and os.geteuid() == 0 and _child_can_unshare():
        return "namespaces"
    from apps.jobs.confine import landlock_abi

    if wanted == "landlock" or landlock_abi() >= 1:
        _warn_of_local_sockets()
        return "landlock"
    log.warning(
        "job processes are NOT confined (not root with namespaces, no Landlock): only their "
        "environment and settings keep credentials from them. Grant 'run custom code' sparingly."
    )
    return "none"


#: Where local services keep their Unix sockets (PostgreSQL, MySQL, Redis, Docker...).
SOCKET_FOLDERS = ("/run", "/var/run", "/tmp")


def local_sockets(folders: tuple[str, ...] | None = None) -> list[str]:
    """The named Unix sockets in ``folders`` and their subfolders that this process may
    connect to: in ``landlock`` mode its job processes may too (Landlock does not govern
    connecting to a named socket, and they share the worker's user)."""
    found: set[str] = set()

    def scan(folder: str, depth: int) -> None:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        if depth:
                            scan(entry.path, depth - 1)
                    elif stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode) and os.access(
                        entry.path, os.W_OK
                    ):
                        found.add(os.path.realpath(entry.path))  # /var/run is /run

    for folder in SOCKET_FOLDERS if folders is None else folders:
        scan(folder, depth=1)
    return sorted(found)


def _warn_of_local_sockets() -> None:
    sockets = local_sockets()
    if sockets:
        log.warning(
            "job sandbox 'landlock': job processes run as this worker's user and can connect "
            "to the Unix sockets on this machine: %s. A service that trusts local peers "
            "(PostgreSQL 'trust' or 'peer', a Docker socket) is open to users' code; run "
            "workers where none is, or as root ('namespaces'). See "
            "docs/decisions/0007-job-sandbox.md.",
            ", ".join(sockets),
        )


def _child_can_unshare() -> bool:
    """Whether a process of ours may make namespaces: a forked child tries (unsharing
    changes the process that does it) and exits at once. A fork, not a new interpreter:
    about 0.3 s and 0.08 s of CPU less at every worker start."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if can_unshare() else 1)  # the child: no cleanup, no Python left to run
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _secret_folders() -> list[str]:
    folders = []
    for name, value in os.environ.items():
        if name.endswith("_FILE") and value:
            folders.append(str(Path(value).resolve().parent))
    return folders


def code_paths() -> list[str]:
    """Folders a job must read to run: the code, the Python installation, sys.path."""
    paths = [str(settings.BASE_DIR), sys.prefix, sys.base_prefix, sys.exec_prefix]
    paths.append(str(Path(os.path.realpath(sys.executable)).parent.parent))
    paths += [p for p in sys.path if p and os.path.isdir(p)]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return paths


def dataset_cache_root() -> Path:
    return settings.DATA_DIR / "cache" / "datasets"


def jobs_root() -> Path:
    root = Path(settings.DIGITS_JOB_WORK_ROOT)
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        root.chmod(0o711)  # jobs may enter their own folder, not list the others
    return root


@dataclass
class Workspace:
    """A job attempt's private working folder, locked while the attempt runs."""

    path: Path
    lock_fd: int
    owner: tuple[int, int] | None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        (self.path.parent / f".{self.path.name}.lock").unlink(missing_ok=True)
        os.close(self.lock_fd)


def _job_ids(job_pk: int) -> tuple[int, int] | None:
    if mode() != "namespaces":
        return None
    uid = settings.DIGITS_JOB_UID_BASE + job_pk % settings.DIGITS_JOB_UID_COUNT
    return uid, uid


def create_workspace(job_pk: int, attempt: int) -> Workspace:
    """A new working folder for the attempt (its owner is the job's own user, when root)."""
    root = jobs_root()
    remove_stale_workspaces(root)
    name = f"job-{job_pk}-{attempt}-{secrets.token_hex(6)}"
    # Locked before the folder exists: a cleaner only removes folders whose lock is free.
    lock_fd = os.open(
        root / f".{name}.lock", os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600
    )
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    path = root / name
    path.mkdir(mode=0o700)
    (path / "tmp").mkdir()
    owner = _job_ids(job_pk)
    if owner is not None:
        for folder in (path, path / "tmp"):
            os.chown(folder, *owner)
    path.chmod(0o700)
    return Workspace(path, lock_fd, owner)


def remove_stale_workspaces(root: Path | None = None) -> int:
    """Remove the folders of attempts whose worker died (their lock is free); return how many."""
    root = root or jobs_root()
    removed = 0
    for lock in root.glob(".job-*.lock"):
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a running attempt, of this worker or another on the node
        try:
            shutil.rmtree(root / lock.name[1 : -len(".lock")], ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def confinement(workspace: Workspace) -> Confinement:
    """What the job process may see, for ``apps.jobs.confine.enter``."""
    cache = dataset_cache_root()
    cache.mkdir(mode=0o711, parents=True, exist_ok=True)
    for folder in (cache.parent, cache):
        with contextlib.suppress(OSError):
            folder.chmod(0o711)
    hidden = [
        *HIDDEN,
        str(settings.DATA_DIR),
        *_secret_folders(),
        *settings.DIGITS_JOB_HIDDEN_PATHS,
    ]
    uid, gid = workspace.owner or (-1, -1)
    return Confinement(
        mode=mode(), workdir=str(workspace.path), uid=uid, gid=gid,
        read=[*code_paths(), *(str(p) for p in settings.DIGITS_SERVER_DATA_ROOTS)],
        open_only=[str(cache)], hidden=hidden,
    )  # fmt: skip
