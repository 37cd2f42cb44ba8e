"""Run the suite with the process clock moved: `pytest -p tests.clock --clock=2028-02-29T12:00Z`.

The clock travels (and keeps ticking) from before Django is set up until the run ends, so
every test, fixture and module-level default sees that instant as "now". A test that passes
only at some hours of the day depends on the wall clock; `make test-any-hour` runs the suite
at the instants that used to catch such tests out."""

import datetime as dt

import pytest
import time_machine


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 instant with its offset (`Z` or `+02:00`); a naive one would be ambiguous."""
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise pytest.UsageError(f"--clock: not an ISO 8601 instant: {value!r}") from exc
    if instant.tzinfo is None:
        raise pytest.UsageError(f"--clock: give the offset too (Z or +HH:MM): {value!r}")
    return instant


def pytest_addoption(parser):
    parser.addoption(
        "--clock",
        metavar="INSTANT",
        help="Run the suite as if the wall clock started at INSTANT (ISO 8601 with offset).",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # A wrapper runs around every other implementation, pytest-django's django.setup() among
    # them, so nothing Django computes at import time sees the real clock.
    value = early_config.known_args_namespace.clock
    if value:
        traveller = time_machine.travel(parse_instant(value), tick=True)
        traveller.start()
        early_config.add_cleanup(traveller.stop)
    return (yield)


def pytest_report_header(config):
    value = config.getoption("clock")
    if value:
        return f"clock: travelled to {parse_instant(value).isoformat()} (ticking)"
