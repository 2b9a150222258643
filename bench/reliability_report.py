"""docs/RELIABILITY.md, regenerated from the tests that prove it.

Usage::

    python -m bench.reliability_report                # run everything, write the document
    python -m bench.reliability_report --no-run       # rebuild it from the last results

``make reliability-doc`` starts MariaDB and Redis if needed and runs the first form:

1. One pytest run of the fault tests (tests/realstack/test_faults.py: MariaDB, Redis, daphne
   and Celery processes), the bad-input tests (tests/security/test_bad_input.py) and the
   authorization tests (tests/security/test_authorization.py, test_deploy_check.py) and the
   security findings' tests (SECURITY_FINDINGS), with junit XML into var/reliability/junit.xml.
2. The load test: ``python -m bench.load --out var/reliability/load.json``.
3. The document: each fault injected and whether the stack survived it (from the test names,
   docstrings and outcomes), each bad input with the status and message it gets (from the
   tests' own table), each authorization check, each security finding's tests, the load
   figures, the date and the commands.

The same results give the same bytes: no timings of single tests, fixed number formats, tests in
collection order. Exits 1 when a test did not pass or the load did not hold; the document still
says so.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("var/reliability")
DOCUMENT = Path("docs/RELIABILITY.md")
FAULTS = "tests/realstack/test_faults.py"
BAD_INPUT = "tests/security/test_bad_input.py"
AUTHORIZATION = ("tests/security/test_authorization.py", "tests/security/test_deploy_check.py")
# What an outside probe found (issue 19), one file per finding, each test failing on the code
# before its fix; in the order of the findings, most severe first.
SECURITY_FINDINGS = (
    "tests/security/test_account_takeover.py",
    "tests/security/test_request_size.py",
    "tests/security/test_request_size_server.py",
    "tests/security/test_admin_delete.py",
    "tests/security/test_login_limits.py",
    "tests/security/test_forwarded_headers.py",
    "tests/security/test_headers.py",
    "tests/security/test_token_guessing.py",
    "tests/security/test_idempotency.py",
    "tests/security/test_webhook_targets.py",
    "tests/security/test_websocket_origin.py",
)
TEST_FILES = (FAULTS, BAD_INPUT, *AUTHORIZATION, *SECURITY_FINDINGS)
# The two parametrized tests that send every refused input, through the web form and the API.
WEB_REFUSAL = "test_the_web_form_refuses_it_with_a_message_and_leaves_nothing"
API_REFUSAL = "test_the_api_refuses_it_with_a_problem_and_leaves_nothing"


@dataclass(frozen=True)
class TestResult:
    """One test case from the junit XML."""

    __test__ = False  # not a pytest class

    module: str  # "tests.security.test_bad_input"
    function: str  # "test_the_api_refuses_it_with_a_problem_and_leaves_nothing"
    params: str  # the parametrization id, "PDF"; "" when there is none
    outcome: str  # "passed", "failed", "error" or "skipped"
    message: str = ""  # the first line of what went wrong

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class BadInput:
    """One refused input, as tests/security/test_bad_input.py's REFUSED table states it."""

    case: str
    web_message: str
    api_status: int
    api_words: str


@dataclass(frozen=True)
class Sources:
    """What the document quotes from the tests' source: overviews, docstrings, the bad inputs."""

    faults_overview: str
    authorization_overview: str
    docstrings: dict[str, str]  # "module.function" → first paragraph
    refused: list[BadInput]
    finding_overviews: dict[str, str] = field(
        default_factory=dict
    )  # path → module docstring's first paragraph


# --- Reading the results and the sources ---------------------------------------------------------


def parse_junit(xml_text: str) -> list[TestResult]:
    """Every test case in a pytest junit XML report, in the order pytest ran them."""
    results = []
    for case in ElementTree.fromstring(xml_text).iter("testcase"):
        name = case.get("name", "")
        function, _, params = name.partition("[")
        outcome, message = "passed", ""
        for kind in ("skipped", "failure", "error"):  # the last found wins: an error outranks all
            element = case.find(kind)
            if element is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                text = element.get("message") or element.text or ""
                message = text.strip().splitlines()[0] if text.strip() else ""
        results.append(
            TestResult(case.get("classname", ""), function, params.removesuffix("]"), outcome, message)
        )
    return results


def _docstring_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split()).rstrip(".")


def _refused_table() -> dict[str, tuple[str, int, str]]:
    """tests/security/test_bad_input.py's REFUSED: case → (web message, API status, API words).

    Imported, as its values are built from the guard's messages; the module needs Django set up
    with the test settings (pytest has done that already).
    """
    import importlib
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    module = importlib.import_module(BAD_INPUT.removesuffix(".py").replace("/", "."))
    return dict(module.REFUSED)


def read_sources(root: Path = REPO_ROOT) -> Sources:
    """Module overviews and test docstrings (read with ast), and the bad-input table."""
    docstrings: dict[str, str] = {}
    trees = {}
    for path in TEST_FILES:
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
        trees[path] = tree
        module = path.removesuffix(".py").replace("/", ".")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and ast.get_docstring(node):
                docstrings[f"{module}.{node.name}"] = _docstring_paragraph(ast.get_docstring(node))
    refused_table = _refused_table()
    return Sources(
        faults_overview=ast.get_docstring(trees[FAULTS]) or "",
        authorization_overview=ast.get_docstring(trees[AUTHORIZATION[0]]) or "",
        docstrings=docstrings,
        refused=[BadInput(case, *row) for case, row in refused_table.items()],
        finding_overviews={
            path: _docstring_paragraph(ast.get_docstring(trees[path])) for path in SECURITY_FINDINGS
        },
    )


# --- Building the document -------------------------------------------------------------------------


def sentence(function: str) -> str:
    """`test_a_worker_is_killed` → "A worker is killed"."""
    words = function.removeprefix("test_").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def cell(text: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def describe(result: TestResult, sources: Sources) -> str:
    text = sources.docstrings.get(f"{result.module}.{result.function}") or sentence(result.function)
    return text + (f" [{result.params}]" if result.params else "")


def verdict(result: TestResult | None, good: str) -> str:
    if result is None:
        return "not run"
    if result.passed:
        return good
    detail = f": {result.message}" if result.message else ""
    return {"skipped": "skipped", "error": "could not run"}.get(result.outcome, "NO") + detail


def _module(results: Sequence[TestResult], path: str) -> list[TestResult]:
    module = path.removesuffix(".py").replace("/", ".")
    return [result for result in results if result.module == module]


def _counts(results: Sequence[TestResult]) -> str:
    passed = sum(result.passed for result in results)
    return f"{passed} of {len(results)} passed"


def _faults_section(
    results: Sequence[TestResult], sources: Sources, recovery: dict[str, float] | None = None
) -> list[str]:
    faults = _module(results, FAULTS)
    lines = [
        "## Faults injected",
        "",
        f"`{FAULTS}`, against MariaDB, Redis, daphne and separate Celery worker and beat processes. "
        f"{_counts(faults)}.",
        "",
        "| fault and what must hold | survived |",
        "|---|---|",
    ]
    lines += [f"| {cell(describe(result, sources))} | {cell(verdict(result, 'yes'))} |" for result in faults]
    if not faults:
        lines.append("| (no fault test ran) | not run |")
    if recovery:
        measured = "; ".join(f"{fault} {seconds:.1f} s" for fault, seconds in sorted(recovery.items()))
        lines += [
            "",
            "Recovery measured by the lease tests, from the fault to the job's claim by another worker "
            f"(the bound is 30 s): {measured}.",
        ]
    lines += ["", "How each is injected (from the test module):", ""]
    lines += [f"> {line}".rstrip() for line in sources.faults_overview.splitlines()]
    return lines


def _bad_input_section(results: Sequence[TestResult], sources: Sources) -> list[str]:
    tests = _module(results, BAD_INPUT)
    by_door = {(result.function, result.params): result for result in tests}
    lines = [
        "## Bad inputs",
        "",
        f"`{BAD_INPUT}`: each input goes through the web form (`/upload/`) and the API "
        "(`POST /api/v1/batches/`); each must get the status and message below, store no row and "
        f"leave no file (media or temporary). {_counts(tests)}.",
        "",
        "| input | web form answers | API answers | refused, nothing left |",
        "|---|---|---|---|",
    ]
    for bad in sources.refused:
        web, api = by_door.get((WEB_REFUSAL, bad.case)), by_door.get((API_REFUSAL, bad.case))
        both = [web, api]
        if all(result is not None and result.passed for result in both):
            outcome = "yes"
        else:
            outcome = "; ".join(
                f"{door}: {verdict(result, 'yes')}" for door, result in zip(("web", "API"), both, strict=True)
            )
        lines.append(
            f"| {cell(bad.case)} | 400 “{cell(bad.web_message)}” | {bad.api_status}, detail holds "
            f"“{cell(bad.api_words)}” | {cell(outcome)} |"
        )
    others = [result for result in tests if result.function not in (WEB_REFUSAL, API_REFUSAL)]
    lines += ["", "Also checked (too many files, hostile names, EXIF orientation, re-encoding, audit):", ""]
    lines += [f"- {describe(result, sources)}: **{verdict(result, 'passed')}**" for result in others]
    return lines


def _authorization_section(results: Sequence[TestResult], sources: Sources) -> list[str]:
    tests = [result for path in AUTHORIZATION for result in _module(results, path)]
    lines = [
        "## Authorization",
        "",
        f"{', '.join(f'`{path}`' for path in AUTHORIZATION)}. {_counts(tests)}.",
        "",
    ]
    lines += [f"- {describe(result, sources)}: **{verdict(result, 'passed')}**" for result in tests]
    lines += ["", "Scope (from the test module):", ""]
    lines += [f"> {line}".rstrip() for line in sources.authorization_overview.splitlines()]
    return lines


def _findings_section(results: Sequence[TestResult], sources: Sources) -> list[str]:
    tests = [result for path in SECURITY_FINDINGS for result in _module(results, path)]
    lines = [
        "## Security findings",
        "",
        "What an outside probe broke (issue 19), each closed by a change. Each file holds tests that "
        "failed on the code before the change, and guards of what already held. "
        f"{_counts(tests)}.",
    ]
    for path in SECURITY_FINDINGS:
        overview = sources.finding_overviews.get(path, "")
        lines += ["", f"### `{path}`", ""]
        lines += [overview, ""] if overview else []
        lines += [
            f"- {describe(result, sources)}: **{verdict(result, 'passed')}**"
            for result in _module(results, path)
        ]
    return lines


def _milliseconds(figures: dict[str, Any]) -> str:
    if not figures.get("count"):
        return "| - | - | - | 0 |"
    return f"| {figures['p50']:.0f} | {figures['p95']:.0f} | {figures['max']:.0f} | {figures['count']} |"


def _load_section(load: dict[str, Any] | None) -> list[str]:
    lines = ["## Load", ""]
    if load is None:
        return [*lines, "Not run: no load report was found."]
    config, errors, throughput = load["config"], load["errors"], load["throughput"]
    machine = load.get("machine", {})
    held = "held" if load["held"] else "NOT held"
    lines += [
        f"{config['clients']} API clients for {config['duration_s']:g} s against daphne (one process) "
        f"and {config['workers']} separate Celery worker processes, MariaDB and Redis, on 127.0.0.1"
        + (f", {machine['logical_cpus']} CPUs" if machine.get("logical_cpus") else "")
        + f". Each client submits one image (`POST /api/v1/batches/`) and polls its job "
        f"(`GET /api/v1/jobs/{{id}}/`) every {config['poll_interval_s']:g} s until it has finished; "
        "then the database is drained and checked. "
        f"Result: **{held}** ({errors['5xx']} responses 5xx, {load['lost_jobs']} lost jobs).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests (submit, poll) | {load['requests']['total']} "
        f"({load['requests']['submit']}, {load['requests']['poll']}) |",
        f"| submissions accepted | {load['submissions']} |",
        f"| completions (succeeded, failed) | {load['completions']} "
        f"({load['succeeded']}, {load['failed']}) |",
        f"| throughput | {throughput['jobs_per_s']:.2f} jobs/s, {throughput['requests_per_s']:.2f} "
        f"requests/s over {load['window_s']:.1f} s |",
        f"| 5xx responses | {errors['5xx']} |",
        f"| other errors | {errors['other']}"
        + "".join(f", {cell(kind)} {count}" for kind, count in errors["other_by_kind"].items())
        + " |",
        f"| lost jobs (not succeeded with exactly one prediction) | {load['lost_jobs']} of "
        f"{load['jobs_in_database']} jobs in the database |",
        "",
        "| latency, ms | p50 | p95 | max | count |",
        "|---|---|---|---|---|",
        "| submit " + _milliseconds(load["latency_ms"]["submit"]),
        "| poll " + _milliseconds(load["latency_ms"]["poll"]),
        "| submit → result (seen by polling) " + _milliseconds(load["latency_ms"]["submit_to_result"]),
    ]
    if load.get("when"):
        lines += ["", f"Measured {load['when']}."]
    return lines


def build_document(
    *,
    results: Sequence[TestResult],
    sources: Sources,
    load: dict[str, Any] | None,
    generated: dt.date,
    commands: Sequence[str],
    recovery: dict[str, float] | None = None,
) -> str:
    """The markdown of docs/RELIABILITY.md: a pure function of its arguments."""
    parts = [
        ("faults injected", _module(results, FAULTS), "all survived"),
        ("bad inputs", _module(results, BAD_INPUT), "all refused or cleaned"),
        ("authorization", [r for path in AUTHORIZATION for r in _module(results, path)], "all held"),
        (
            "security findings",
            [r for path in SECURITY_FINDINGS for r in _module(results, path)],
            "all closed",
        ),
    ]
    load_verdict = "not run" if load is None else ("held" if load["held"] else "NOT held")
    lines = [
        "# Reliability: nothing lost, no one let in",
        "",
        f"Generated on {generated.isoformat()} by `make reliability-doc`; do not edit by hand. "
        "It ran these commands from the repository root:",
        "",
        "```sh",
        *commands,
        "```",
        "",
        "| part | tests | result |",
        "|---|---|---|",
        *(
            f"| {name} | {_counts(tests)} | {good if tests and all(r.passed for r in tests) else 'NO'} |"
            for name, tests, good in parts
        ),
        f"| load | bench/load.py | {load_verdict} |",
        "",
        *_faults_section(results, sources, recovery),
        "",
        *_bad_input_section(results, sources),
        "",
        *_authorization_section(results, sources),
        "",
        *_findings_section(results, sources),
        "",
        *_load_section(load),
    ]
    return "\n".join(lines) + "\n"


def everything_held(results: Sequence[TestResult], sources: Sources, load: dict[str, Any] | None) -> bool:
    """Every test file ran and passed, every bad input went through both doors, the load held."""
    ran_each = all(_module(results, path) for path in TEST_FILES)
    sent = {(result.function, result.params) for result in _module(results, BAD_INPUT)}
    both_doors = all(
        (door, bad.case) in sent for bad in sources.refused for door in (WEB_REFUSAL, API_REFUSAL)
    )
    passed = all(result.passed for result in results)
    return ran_each and both_doors and passed and load is not None and load["held"]


# --- Running it ------------------------------------------------------------------------------------


def commands(results_dir: Path) -> tuple[list[str], list[str]]:
    """The pytest and load commands, as argument lists relative to the repository root."""
    pytest_command = ["-m", "pytest", "-m", "", "-p", "no:cacheprovider"]
    pytest_command += [f"--junitxml={results_dir / 'junit.xml'}", *TEST_FILES]
    load_command = ["-m", "bench.load", "--out", str(results_dir / "load.json")]
    return pytest_command, load_command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reliability_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DOCUMENT, help="the markdown to write")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for junit.xml and load.json")
    parser.add_argument("--no-run", action="store_true", help="rebuild from the results already there")
    parser.add_argument(
        "--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC)"
    )
    args = parser.parse_args(argv)
    pytest_command, load_command = commands(args.results)
    recovery_path = REPO_ROOT / args.results / "recovery.json"  # written by the lease fault tests
    if not args.no_run:
        (REPO_ROOT / args.results).mkdir(parents=True, exist_ok=True)
        recovery_path.unlink(missing_ok=True)
        for command in (pytest_command, load_command):
            print(f"==> python {shlex.join(command)}", flush=True)
            subprocess.run([sys.executable, *command], cwd=REPO_ROOT, check=False)
    junit = REPO_ROOT / args.results / "junit.xml"
    load_path = REPO_ROOT / args.results / "load.json"
    results = parse_junit(junit.read_text(encoding="utf-8")) if junit.is_file() else []
    load = json.loads(load_path.read_text(encoding="utf-8")) if load_path.is_file() else None
    recovery = json.loads(recovery_path.read_text(encoding="utf-8")) if recovery_path.is_file() else None
    sources = read_sources()
    document = build_document(
        results=results,
        sources=sources,
        load=load,
        generated=args.date or dt.datetime.now(dt.UTC).date(),
        commands=[f"python {shlex.join(command)}" for command in (pytest_command, load_command)],
        recovery=recovery,
    )
    (REPO_ROOT / args.out).write_text(document, encoding="utf-8")
    held = everything_held(results, sources, load)
    print(f"wrote {args.out}: " + ("everything held" if held else "NOT everything held (see the document)"))
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
