import os

import pytest
from hypothesis import settings

import bnb_core  # noqa: F401  (registers the ops)
from bnb_core import conformance

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

DEVICES = conformance.available_devices()

_unsupported: list[str] = []


def report_unsupported(line: str) -> None:
    _unsupported.append(line)


def pytest_terminal_summary(terminalreporter):
    if _unsupported:
        terminalreporter.section("unsupported conformance cases (reported, not skipped)")
        for line in _unsupported:
            terminalreporter.write_line(line)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
