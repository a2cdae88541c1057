"""Hypothesis settings shared by the property tests (``tests/**/test_*_properties.py``).

Two profiles, chosen with ``TRADEOPS_HYPOTHESIS_PROFILE``:

- ``ci`` (the default): derandomized, so every run (and every CI run) tries the
  same examples and a failure reproduces with the same command; no example
  database is written.
- ``long``: random examples, 25 times as many per test, no deadline; for a
  search before a release or after changing a parser::

      TRADEOPS_HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q \\
          tests/test_config_properties.py tests/test_snapshot_properties.py \\
          tests/kinds/fix_store/test_files_properties.py \\
          tests/kinds/eventbus/test_eventbus_mapping_properties.py

A failure prints the shrunk example; keep it as an ``@example`` beside the fix.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_VARIABLE = "TRADEOPS_HYPOTHESIS_PROFILE"
_SCALE = {"ci": 1, "long": 25}

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=2000,
    print_blob=True,
)
settings.register_profile("long", derandomize=False, database=None, deadline=None, print_blob=True)
PROFILE = os.environ.get(PROFILE_VARIABLE, "ci")
if PROFILE not in _SCALE:
    raise RuntimeError(f"{PROFILE_VARIABLE}={PROFILE!r}: expected one of {', '.join(_SCALE)}")
settings.load_profile(PROFILE)


def examples(count: int, deadline_ms: int | None = 2000) -> settings:
    """Settings for one property: ``count`` examples under the ``ci`` profile (scaled
    up by the ``long`` one) and a per-example deadline (none under ``long``)."""
    return settings(
        max_examples=count * _SCALE[PROFILE],
        deadline=deadline_ms if PROFILE == "ci" else None,
    )
