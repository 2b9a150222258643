"""bench.reliability_report: docs/RELIABILITY.md built from a tiny fake junit XML and load report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from bench.reliability_report import (
    BAD_INPUT,
    SECURITY_FINDINGS,
    BadInput,
    Sources,
    build_document,
    everything_held,
    parse_junit,
    read_sources,
    sentence,
)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="0" tests="8">
<testcase classname="tests.realstack.test_faults"
          name="test_a_worker_killed_mid_task_is_redelivered_and_completes_exactly_once" time="20.1"/>
<testcase classname="tests.realstack.test_faults" name="test_jobs_survive_a_redis_restart" time="9.0">
  <failure message="AssertionError: 2 jobs still queued&#10;more detail">trace</failure>
</testcase>
<testcase classname="tests.security.test_bad_input"
          name="test_the_web_form_refuses_it_with_a_message_and_leaves_nothing[PDF]" time="0.1"/>
<testcase classname="tests.security.test_bad_input"
          name="test_the_api_refuses_it_with_a_problem_and_leaves_nothing[PDF]" time="0.1"/>
<testcase classname="tests.security.test_bad_input"
          name="test_500_files_in_one_api_upload_get_our_message" time="0.3"/>
<testcase classname="tests.security.test_authorization"
          name="test_another_users_session_gets_404_from_the_api[/api/v1/jobs/{job}/]" time="0.1"/>
<testcase classname="tests.security.test_account_takeover"
          name="test_a_password_reset_by_the_emailed_link_revokes_every_token" time="0.2"/>
<testcase classname="tests.security.test_deploy_check"
          name="test_the_check_would_catch_a_weakened_setting[debug on]">
  <error message="setup failed">boom</error>
</testcase>
</testsuite></testsuites>
"""

LOAD = {
    "config": {"clients": 50, "duration_s": 60.0, "workers": 2, "poll_interval_s": 1.0},
    "window_s": 63.46,
    "requests": {"total": 1652, "submit": 564, "poll": 1088},
    "submissions": 564,
    "completions": 564,
    "succeeded": 564,
    "failed": 0,
    "throughput": {"jobs_per_s": 8.88, "requests_per_s": 26.02},
    "latency_ms": {
        "submit": {"count": 564, "p50": 1694.4, "p95": 5029.4, "max": 5089.5},
        "poll": {"count": 1088, "p50": 752.1, "p95": 2013.9, "max": 2716.4},
        "submit_to_result": {"count": 564, "p50": 4940.8, "p95": 8670.6, "max": 11833.7},
    },
    "errors": {"5xx": 0, "5xx_by_request": {}, "other": 1, "other_by_kind": {"ReadTimeout": 1}},
    "jobs_in_database": 566,
    "lost_jobs": 0,
    "lost": [],
    "held": True,
    "machine": {"logical_cpus": 2},
    "when": "2026-11-29T18:12:14+00:00",
}

SOURCES = Sources(
    faults_overview="No job lost.\n\na. A worker is killed.",
    authorization_overview="Bob never reaches alice's data.",
    docstrings={
        "tests.realstack.test_faults.test_jobs_survive_a_redis_restart": "Redis restarts while jobs wait"
    },
    refused=[BadInput("PDF", "scan.pdf: is not a JPEG or PNG image.", 415, "is not a JPEG or PNG")],
    finding_overviews={"tests/security/test_account_takeover.py": "Account pre-hijacking"},
)


def document(load: dict | None = LOAD) -> str:
    return build_document(
        results=parse_junit(JUNIT),
        sources=SOURCES,
        load=json.loads(json.dumps(load)),
        generated=dt.date(2026, 11, 29),
        commands=["python -m pytest …", "python -m bench.load --out var/reliability/load.json"],
    )


def test_junit_cases_are_read_with_their_parameters_and_outcomes():
    results = parse_junit(JUNIT)

    assert [(r.module.rsplit(".", 1)[1], r.params, r.outcome) for r in results] == [
        ("test_faults", "", "passed"),
        ("test_faults", "", "failed"),
        ("test_bad_input", "PDF", "passed"),
        ("test_bad_input", "PDF", "passed"),
        ("test_bad_input", "", "passed"),
        ("test_authorization", "/api/v1/jobs/{job}/", "passed"),
        ("test_account_takeover", "", "passed"),
        ("test_deploy_check", "debug on", "error"),
    ]
    assert results[1].message == "AssertionError: 2 jobs still queued"


def test_the_document_opens_with_the_date_the_commands_and_a_verdict_per_part():
    text = document()

    assert text.startswith("# Reliability: nothing lost, no one let in\n\nGenerated on 2026-11-29 by")
    assert "```sh\npython -m pytest …\npython -m bench.load --out var/reliability/load.json\n```" in text
    assert "| faults injected | 1 of 2 passed | NO |" in text
    assert "| bad inputs | 3 of 3 passed | all refused or cleaned |" in text
    assert "| authorization | 1 of 2 passed | NO |" in text
    assert "| load | bench/load.py | held |" in text


def test_each_fault_says_whether_it_was_survived_from_its_name_or_docstring():
    text = document()

    assert "| A worker killed mid task is redelivered and completes exactly once | yes |" in text
    assert "| Redis restarts while jobs wait | NO: AssertionError: 2 jobs still queued |" in text
    assert "> a. A worker is killed." in text


def test_the_measured_recovery_times_are_in_the_fault_section_when_the_lease_tests_wrote_them():
    with_figures = build_document(
        results=parse_junit(JUNIT),
        sources=SOURCES,
        load=LOAD,
        generated=dt.date(2026, 11, 29),
        commands=[],
        recovery={"SIGSTOP": 17.7, "SIGKILL": 12.1},
    )
    assert "(the bound is 30 s): SIGKILL 12.1 s; SIGSTOP 17.7 s." in with_figures
    assert "Recovery measured" not in document()


def test_each_bad_input_shows_the_status_and_message_it_gets_through_both_doors():
    text = document()

    row = "| PDF | 400 “scan.pdf: is not a JPEG or PNG image.” | 415, detail holds “is not a JPEG or PNG” |"
    assert row + " yes |" in text
    assert "- 500 files in one api upload get our message: **passed**" in text


def test_authorization_checks_are_listed_with_their_outcomes():
    text = document()

    assert "- Another users session gets 404 from the api [/api/v1/jobs/{job}/]: **passed**" in text
    assert "- The check would catch a weakened setting [debug on]: **could not run: setup failed**" in text
    assert "> Bob never reaches alice's data." in text


def test_each_security_finding_lists_its_tests_under_its_file_and_overview():
    text = document()

    assert "| security findings | 1 of 1 passed | all closed |" in text
    section = text[text.index("## Security findings") : text.index("## Load")]
    assert "### `tests/security/test_account_takeover.py`\n\nAccount pre-hijacking\n" in section
    assert "- A password reset by the emailed link revokes every token: **passed**" in section
    assert all(f"### `{path}`" in section for path in SECURITY_FINDINGS)


def test_the_load_figures_are_in_the_document():
    text = document()

    assert "Result: **held** (0 responses 5xx, 0 lost jobs)" in text
    assert "| throughput | 8.88 jobs/s, 26.02 requests/s over 63.5 s |" in text
    assert "| other errors | 1, ReadTimeout 1 |" in text
    assert "| lost jobs (not succeeded with exactly one prediction) | 0 of 566 jobs in the database |" in text
    assert "| submit → result (seen by polling) | 4941 | 8671 | 11834 | 564 |" in text


def test_a_missing_load_report_is_said_and_fails_the_whole():
    assert "## Load\n\nNot run: no load report was found.\n" in document(load=None)
    assert not everything_held(parse_junit(JUNIT), SOURCES, None)


def test_the_same_results_give_the_same_bytes():
    assert document() == document()


def test_any_failed_test_means_not_everything_held():
    assert not everything_held(parse_junit(JUNIT), SOURCES, LOAD)


def test_everything_held_needs_every_file_every_bad_input_through_both_doors_and_the_load():
    passing = [result for result in parse_junit(JUNIT) if result.passed]
    faults, bad, authorization = passing[0], passing[1:4], passing[4]
    deploy = dataclasses.replace(authorization, module="tests.security.test_deploy_check")
    findings = [
        dataclasses.replace(authorization, module=path.removesuffix(".py").replace("/", "."))
        for path in SECURITY_FINDINGS
    ]
    results = [faults, *bad, authorization, deploy, *findings]

    assert everything_held(results, SOURCES, LOAD)
    assert not everything_held(results, SOURCES, {**LOAD, "held": False})
    unsent = BadInput("SVG", "ecg.svg: is not a JPEG or PNG image.", 415, "is not a JPEG or PNG")
    assert not everything_held(
        results, dataclasses.replace(SOURCES, refused=[*SOURCES.refused, unsent]), LOAD
    )
    assert not everything_held([faults, *bad, authorization, *findings], SOURCES, LOAD)
    assert not everything_held([faults, *bad, authorization, deploy, *findings[1:]], SOURCES, LOAD)


def test_names_become_sentences():
    assert sentence("test_a_revoked_token_reaches_nothing") == "A revoked token reaches nothing"


def test_the_real_sources_have_the_bad_input_table_and_the_module_overviews():
    sources = read_sources()

    assert {bad.case for bad in sources.refused} >= {"empty file", "PDF", "60 MB file"}
    assert all(400 <= bad.api_status < 500 for bad in sources.refused)
    assert "SIGKILL" in sources.faults_overview
    assert "bob" in sources.authorization_overview
    assert BAD_INPUT.endswith("test_bad_input.py")
    assert all(sources.finding_overviews[path] for path in SECURITY_FINDINGS)
