"""The real ecgsite processes, started as subprocesses for end-to-end tests and the bench.

``LiveStack`` runs ``manage.py migrate``, then ``daphne`` on a free loopback port, and
optionally a separate ``celery worker``, all from this checkout with the same environment.
With no extra environment it is the embedded default (SQLite in a temporary var dir, the
worker thread inside daphne, the in-process channel layer); with ``DATABASE_URL`` and
``REDIS_URL`` in ``extra_env`` it is the real stack. Every process runs in its own process
group and is stopped (SIGTERM, then SIGKILL) when the stack stops, also on failure.

No pytest here: the bench (``python -m bench.service``) uses this module too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
# The queue that settings.CELERY_TASK_DEFAULT_QUEUE names and the classify task goes to.
CLASSIFY_QUEUE = "classify"
MAINTENANCE_QUEUE = "maintenance"

# The real stack's worker, as the README starts it; gossip and mingle only slow a lone worker.
WORKER_ARGUMENTS = [
    *("worker", "--pool=solo", "--concurrency=1", "-Q", CLASSIFY_QUEUE, "--loglevel=INFO"),
    *("--without-gossip", "--without-mingle"),
]

# Settings the servers read from the environment. The caller's own values must not leak in:
# the embedded stack must not find a DATABASE_URL, and no stack may use another model.
_SETTINGS_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
    "DB_CONN_MAX_AGE",
    "LOG_LEVEL",
)
_SETTINGS_PREFIXES = ("ECGSITE_", "CELERY_", "EMAIL_", "SECURE_")

# Bounded waits. The first classification loads TensorFlow and the model on CPU.
SERVER_START_TIMEOUT_S = 60.0
WORKER_START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


# Stacks that are up right now, so a failing test's report can carry their logs.
RUNNING_STACKS: list[LiveStack] = []


def _prctl() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved here, not in the forked child, where importing is unsafe.
_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if this process dies without stopping it."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)  # type: ignore[operator]


class StackError(RuntimeError):
    """A process of the stack did not start, or died; the message holds its log."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def mail_dir(var_dir: Path) -> Path:
    """Where a stack's site writes the emails it sends, one file per message."""
    return var_dir / "mail"


def site_environment(var_dir: Path, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every stack process: ours minus any site settings, plus ``extra_env``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SETTINGS_VARIABLES and not key.startswith(_SETTINGS_PREFIXES)
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ecgsite.settings",
            "ECGSITE_VAR_DIR": str(var_dir),
            # Each stack's workers beat into their own file, not the machine's /tmp default.
            "ECGSITE_WORKER_HEARTBEAT_FILE": str(var_dir / "worker-heartbeat.json"),
            "PYTHONUNBUFFERED": "1",
            # Mail goes to files, so a test can follow the confirmation link a new account gets.
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir(var_dir)),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # Loopback only: make sure no proxy setting sends local requests elsewhere.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env.update(extra_env or {})
    return env


def tail(path: Path, limit: int = 12_000) -> str:
    """The last ``limit`` characters of a log file ('' when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass
class ManagedProcess:
    """One subprocess in its own process group, with its output in a log file."""

    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, command: list[str], env: Mapping[str, str], log_path: Path) -> ManagedProcess:
        log_file = log_path.open("ab")
        try:
            popen = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches its children
                preexec_fn=_die_with_parent,
            )
        finally:
            log_file.close()
        return cls(name=name, command=command, log_path=log_path, popen=popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log(self, limit: int = 12_000) -> str:
        return tail(self.log_path, limit)

    def children(self) -> list[int]:
        """Pids of this process's direct children (Linux), e.g. a prefork worker's pool."""
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in (task / "children").read_text().split()]
        return pids

    def kill(self) -> None:
        """SIGKILL the process alone, as the OOM killer would; its children are left running."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT_S; idempotent."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        # Children that outlived the leader (none expected) go with the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass(eq=False)
class LiveStack:
    """daphne (and optionally a Celery worker) serving this checkout on a loopback port."""

    extra_env: Mapping[str, str] = field(default_factory=dict)
    with_worker: bool = False
    label: str = "ecgsite"
    var_dir: Path | None = None
    port: int = 0
    processes: list[ManagedProcess] = field(default_factory=list)
    _own_var_dir: bool = False

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws/notifications/"

    @property
    def origin(self) -> str:
        """An Origin header that AllowedHostsOriginValidator accepts (127.0.0.1 is allowed)."""
        return self.base_url

    @property
    def mail_dir(self) -> Path:
        assert self.var_dir is not None, "start() the stack first"
        return mail_dir(self.var_dir)

    @property
    def env(self) -> dict[str, str]:
        assert self.var_dir is not None, "start() the stack first"
        return site_environment(self.var_dir, self.extra_env)

    @property
    def server(self) -> ManagedProcess:
        return self.processes[0]

    @property
    def worker(self) -> ManagedProcess:
        if not self.with_worker or len(self.processes) < 2:
            raise StackError("this stack has no separate worker process")
        return self.processes[1]

    def start(self) -> LiveStack:
        """Migrate, start daphne and wait until it answers, then the worker until it is ready."""
        atexit.register(self.stop)
        RUNNING_STACKS.append(self)
        if self.var_dir is None:
            self.var_dir = Path(tempfile.mkdtemp(prefix=f"{self.label}-var-"))
            self._own_var_dir = True
        self.port = self.port or free_port()
        try:
            self.manage("migrate", "--noinput", timeout=300)
            daphne = ManagedProcess.start(
                "daphne",
                # As the image runs it: daphne with the request-size ceiling (ecgsite/serve.py).
                [
                    PYTHON,
                    "-m",
                    "ecgsite.serve",
                    "-b",
                    LOOPBACK,
                    "-p",
                    str(self.port),
                    "ecgsite.asgi:application",
                ],
                self.env,
                self.var_dir / "daphne.log",
            )
            self.processes.append(daphne)
            self._wait_until_answering(daphne)
            if self.with_worker:
                self.start_worker()
                self.start_maintenance_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def start_worker(
        self, *arguments: str, env: Mapping[str, str] | None = None, wait: bool = True
    ) -> ManagedProcess:
        """Start one more Celery worker (WORKER_ARGUMENTS unless ``arguments`` are given), with
        ``env`` over the stack's environment, and wait until it consumes (unless ``wait`` is off).

        The first is ``stack.worker``; each later one gets its own name, log and hostname.
        """
        assert self.var_dir is not None, "start() the stack first"
        number = sum(process.name.startswith("celery worker") for process in self.processes) + 1
        suffix = "" if number == 1 else f"-{number}"
        worker = ManagedProcess.start(
            f"celery worker{suffix}",
            [
                *(PYTHON, "-m", "celery", "-A", "ecgsite"),
                *(arguments or WORKER_ARGUMENTS),
                *("--hostname", f"{self.label}-{self.port}{suffix}@%h"),
            ],
            {**self.env, **(env or {})},
            self.var_dir / f"worker{suffix}.log",
        )
        self.processes.append(worker)
        if wait:
            self._wait_until_worker_ready(worker)
        return worker

    def start_maintenance_worker(self, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start a worker of the maintenance queue (webhooks, their sweep, the reaper), as the
        README does beside the classify worker; it loads no model."""
        return self.start_worker(
            *("worker", "--pool=solo", "--concurrency=1", "-Q", MAINTENANCE_QUEUE, "--loglevel=INFO"),
            *("--without-gossip", "--without-mingle"),
            env=env,
        )

    def start_beat(self, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start ``celery beat`` (the periodic tasks of settings.CELERY_BEAT_SCHEDULE)."""
        assert self.var_dir is not None, "start() the stack first"
        beat = ManagedProcess.start(
            "celery beat",
            [
                *(PYTHON, "-m", "celery", "-A", "ecgsite", "beat", "--loglevel=INFO"),
                *("--schedule", str(self.var_dir / "celerybeat-schedule")),
            ],
            {**self.env, **(env or {})},
            self.var_dir / "beat.log",
        )
        self.processes.append(beat)
        return beat

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run ``manage.py ARGS`` with the stack's environment; its output, or StackError."""
        assert self.var_dir is not None
        try:
            done = subprocess.run(
                [PYTHON, "manage.py", *args],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"manage.py {' '.join(args)} took over {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise StackError(
                f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def _wait_until_answering(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        url = f"{self.base_url}/accounts/login/"
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not process.is_running():
                raise StackError(
                    f"{process.name} exited with {process.popen.returncode} before answering:\n"
                    f"{process.log()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise StackError(
            f"{process.name} did not answer {url} within {SERVER_START_TIMEOUT_S:.0f}s "
            f"(last: {last_error}):\n{process.log()}"
        )

    def _wait_until_worker_ready(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not process.is_running():
                raise StackError(
                    f"{process.name} exited with {process.popen.returncode} before it was ready:\n"
                    f"{process.log()}"
                )
            # Celery logs "celery@<hostname> ready." once it consumes from its queues.
            if " ready." in process.log(100_000):
                return
            time.sleep(0.2)
        raise StackError(
            f"{process.name} was not ready within {WORKER_START_TIMEOUT_S:.0f}s:\n{process.log()}"
        )

    def logs(self, limit: int = 12_000) -> dict[str, str]:
        """Each process's log tail, by process name."""
        return {process.name: process.log(limit) for process in self.processes}

    def assert_running(self) -> None:
        """Raise StackError, with the logs, if any process of the stack has exited."""
        for process in self.processes:
            if not process.is_running():
                raise StackError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()}")

    def stop(self) -> None:
        """Stop every process (worker first), then remove a var dir this stack created."""
        for process in reversed(self.processes):
            process.stop()
        if self._own_var_dir and self.var_dir is not None and not os.environ.get("E2E_KEEP_VAR_DIR"):
            shutil.rmtree(self.var_dir, ignore_errors=True)
            self._own_var_dir = False
        atexit.unregister(self.stop)
        if self in RUNNING_STACKS:
            RUNNING_STACKS.remove(self)


@contextlib.contextmanager
def running_stack(**kwargs: object) -> Iterator[LiveStack]:
    """``with running_stack(...) as stack:`` starts a LiveStack and always stops it."""
    stack = LiveStack(**kwargs)  # type: ignore[arg-type]
    try:
        yield stack.start()
    finally:
        stack.stop()
