"""Every setting .env.example documents works written as it is documented."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(\S+)")


def documented_settings() -> dict[str, str]:
    """NAME=value from .env.example's commented lines (those with a value)."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := EXAMPLE_LINE.match(line):
            values[match[1]] = match[2]
    return values


def settings_under(env: dict[str, str], *names: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh process with `env` and print the named settings."""
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env, DJANGO_SETTINGS_MODULE="voicesurvey.settings")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True
    )


def test_every_documented_example_value_loads():
    documented = documented_settings()
    assert "SIMULATED_OUTCOMES" in documented and "DIALLER_BATCH_SIZE" in documented
    result = settings_under(documented, "SIMULATED_OUTCOMES", "SIMULATED_DELAY")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["SIMULATED_OUTCOMES"] == {
        "completed": 60,
        "busy": 10,
        "no_answer": 15,
        "machine": 8,
        "hangup": 5,
        "failed": 2,
    }
    assert loaded["SIMULATED_DELAY"] == [0.5, 3.0]


def test_outcome_weights_may_also_be_separated_by_semicolons():
    result = settings_under({"SIMULATED_OUTCOMES": "completed=3;busy=1"}, "SIMULATED_OUTCOMES")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "SIMULATED_OUTCOMES": {"completed": 3, "busy": 1}
    }


@pytest.mark.parametrize("value", ["completed=lots", "completed", "=5", "busy=-1"])
def test_a_malformed_outcome_mix_names_the_setting_and_the_bad_pair(value):
    result = settings_under({"SIMULATED_OUTCOMES": value}, "SIMULATED_OUTCOMES")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SIMULATED_OUTCOMES" in result.stderr
