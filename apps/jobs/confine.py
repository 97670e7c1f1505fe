"""Confining a job process before it runs a job kind (and so a user's code).

Runs in the job process itself (``apps.jobs.child``), before Django is set up,
with nothing but the standard library. The worker decided what the job may see
(``Confinement``, sent in the job's spec); this module makes it so, in one of two
ways:

``namespaces`` (the worker runs as root: a container's root, a node's service)
    The process gets a network namespace of its own (no interface but a loopback
    that is down: no database, broker, S3 server or metadata service can be
    reached) and a mount namespace in which the places that hold credentials or
    other users' data — ``/root``, ``/home``, ``/run``, ``/tmp``, the data folder,
    the folders of secret files, and whatever the admin adds — are empty tmpfs
    mounts. What the job needs from below them (the Python installation, the
    code, the server data roots, the dataset cache, its working folder) is bound
    back, read-only except the working folder. Then it becomes an unprivileged
    user of its own (a uid per job) with no supplementary groups and
    ``no_new_privs``.

``landlock`` (the worker runs as an ordinary user, e.g. a non-root pod)
    A Landlock ruleset lets the process read only the system folders, the Python
    installation, the code and the server data roots, open (not list) files of the
    dataset cache, and write only its working folder; TCP connections and binds
    are refused (Landlock ABI 4+); signals and abstract sockets cannot leave the
    sandbox (ABI 6+). The worker marks itself non-dumpable, so the job cannot read
    its environment through ``/proc``.

``none`` (neither is available)
    Only the allow-listed environment and the credential-free settings protect the
    installation; ``apps.jobs.sandbox.mode()`` says so and the worker logs it.

See docs/decisions/0007-job-sandbox.md for the threat model.
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import asdict, dataclass, field

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38

# Landlock (include/uapi/linux/landlock.h)
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
_WRITE = (
    FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG
    | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_SYM
)  # fmt: skip

#: System folders every job may read (whatever of them exists).
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt",
               "/sys", "/proc")  # fmt: skip
#: Device files a job may use (its GPUs included).
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")


class ConfinementError(RuntimeError):
    """The job process could not be confined as the worker asked; it must not run."""


@dataclass
class Confinement:
    """What a job process may see: decided by the worker, applied by ``enter``."""

    mode: str  # "namespaces" | "landlock" | "none"
    workdir: str
    uid: int = -1
    gid: int = -1
    #: Folders and files read-only for the job (code, Python, data roots).
    read: list[str] = field(default_factory=list)
    #: Folders whose files may be opened by name but not listed (the dataset cache).
    open_only: list[str] = field(default_factory=list)
    #: Folders replaced by empty ones (namespaces) or left out of every rule (landlock).
    hidden: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise ConfinementError(f"{what}: {os.strerror(err)}")
    return result


def _prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def die_with_parent() -> None:
    """Be killed when the worker thread that started us dies (reset by a uid change)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(137)


def make_undumpable() -> None:
    """Hide this process's memory and environment from processes of the same user."""
    _prctl(PR_SET_DUMPABLE, 0)


def make_dumpable() -> None:
    """Undo ``make_undumpable`` (inherited over a fork): as an exec'd process is."""
    _prctl(PR_SET_DUMPABLE, 1)


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _existing(paths) -> list[str]:
    seen: list[str] = []
    for p in paths:
        try:
            real = os.path.realpath(p)
        except OSError:
            continue
        if os.path.exists(real) and real not in seen:
            seen.append(real)
    return seen


def enter(conf: Confinement) -> None:
    """Confine the calling process; raise ConfinementError when that is impossible."""
    if conf.mode == "namespaces":
        _enter_namespaces(conf)
    elif conf.mode == "landlock":
        _enter_landlock(conf)
    elif conf.mode != "none":
        raise ConfinementError(f"unknown confinement mode {conf.mode!r}")
    os.chdir(conf.workdir)


# --- namespaces (root) -------------------------------------------------------------------
def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    _check(
        _libc.mount(
            source.encode() if source else None, target.encode(),
            fstype.encode() if fstype else None, ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )  # fmt: skip


def _hide(path: str) -> None:
    """An empty tmpfs over a folder, /dev/null over a file; nothing when it is not visible."""
    if os.path.isdir(path):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    elif os.path.exists(path):
        _mount("/dev/null", path, None, MS_BIND, None)


def _enter_namespaces(conf: Confinement) -> None:
    if os.geteuid() != 0:
        raise ConfinementError("namespaces confinement needs the worker to run as root")
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    hidden = _existing(conf.hidden)
    # Everything to bring back is opened before it disappears under a tmpfs.
    keep: list[tuple[str, int, bool]] = []
    for path, writable in [(p, False) for p in _existing(conf.read + conf.open_only)] + [
        (os.path.realpath(conf.workdir), True)
    ]:
        if any(_is_within(path, h) for h in hidden):
            keep.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC), writable))
    # Outermost first, a folder hidden before what is bound back into it: a hidden folder
    # inside a folder bound back (the data folder inside a checkout under /tmp) is hidden
    # again, and what is kept inside it bound back once more.
    steps = [(h, 0, -1, False) for h in hidden] + [(p, 1, fd, w) for p, fd, w in keep]
    for path, kind, fd, writable in sorted(steps, key=lambda step: (len(step[0]), step[1])):
        if kind == 0:
            _hide(path)
            continue
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        if not writable:
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None)
        os.close(fd)
    os.setgroups([])
    os.setresgid(conf.gid, conf.gid, conf.gid)
    os.setresuid(conf.uid, conf.uid, conf.uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    die_with_parent()


# --- Landlock (any user) -----------------------------------------------------------------
class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    result = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(result, 0)


def _fs_access(abi: int) -> int:
    access = _READ | _WRITE | FS_MAKE_CHAR | FS_MAKE_BLOCK
    if abi >= 2:
        access |= FS_REFER
    if abi >= 3:
        access |= FS_TRUNCATE
    if abi >= 5:
        access |= FS_IOCTL_DEV
    return access


def _allowed_below(folder: str, hidden: list[str]) -> list[str]:
    """``folder`` itself, or — when a hidden path lies below it — its other children."""
    inner = [h for h in hidden if _is_within(h, folder)]
    if not inner:
        return [folder]
    if folder in inner:
        return []
    allowed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            allowed += _allowed_below(os.path.realpath(entry.path), hidden)
    return allowed


def _enter_landlock(conf: Confinement) -> None:
    abi = landlock_abi()
    if abi < 1:
        raise ConfinementError("Landlock is not available in this kernel")
    everything = _fs_access(abi)
    attr = _RulesetAttr(
        handled_access_fs=everything,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _check(
        _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0),
        "landlock_create_ruleset",
    )
    hidden = _existing(conf.hidden)
    workdir = os.path.realpath(conf.workdir)
    file_only = FS_EXECUTE | FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV
    rules: list[tuple[str, int]] = []
    for path in _existing(SYSTEM_READ) + _existing(conf.read):
        rules += [(p, _READ) for p in _allowed_below(path, hidden)]
    rules += [(p, FS_READ_FILE) for p in _existing(conf.open_only)]
    rules += [(p, (FS_READ_FILE | FS_WRITE_FILE) & file_only) for p in _existing(DEVICES)]
    rules += [(p, everything) for p in _existing(["/dev/shm", workdir])]
    rules += [(p, FS_READ_FILE | FS_WRITE_FILE | FS_IOCTL_DEV) for p in _gpu_devices()]
    try:
        for path, access in rules:
            if not os.path.isdir(path):
                access &= file_only  # directory rights on a file are refused
            access &= everything
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                _check(
                    _libc.syscall(
                        _SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0
                    ),
                    f"landlock_add_rule {path}",
                )
            finally:
                os.close(fd)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _gpu_devices() -> list[str]:
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return [f"/dev/{n}" for n in names if n.startswith(("nvidia", "dri"))]


def can_unshare() -> bool:
    """Whether this process may make namespaces (root, and not forbidden by a seccomp policy).

    Meant for a throw-away process: it leaves the caller in new namespaces when it succeeds.
    """
    return os.geteuid() == 0 and _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) == 0
