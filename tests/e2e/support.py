"""pytest helpers shared by the end-to-end and real-stack tests.

``pytest_runtest_makereport`` attaches the logs of every running stack to a failing test's
report; import it into a conftest to apply it to that directory's tests.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.e2e.livestack import RUNNING_STACKS, LiveStack


def require_default_model() -> None:
    """Fail (never skip) when the shipped default model is missing: the stack would not run."""
    from ml.models import default_model_path

    path = default_model_path()
    if not path.is_file():
        pytest.fail(
            f"The shipped default model {path} is missing; end-to-end tests classify with it. "
            "Train it (`make train`) or restore it from git.",
            pytrace=False,
        )


def start_stack(stack: LiveStack) -> LiveStack:
    """Start ``stack``, turning a start-up failure into a test error that shows the logs."""
    try:
        return stack.start()
    except Exception as error:
        pytest.fail(f"could not start {stack.label}: {error}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for stack in RUNNING_STACKS:
            for name, log in stack.logs().items():
                report.sections.append((f"{stack.label}: {name} log", log or "(empty)"))
    return report
