"""Hypothesis profiles: `default` for local runs and CI; `thorough` for a long soak
(HYPOTHESIS_PROFILE=thorough). No deadline: the first call may compile or read files."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    # our autouse fixtures (network guard, chdir) are safe to share between examples
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("default", max_examples=30, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
