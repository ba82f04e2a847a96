"""Hypothesis profiles for the parser fuzz tests, registered here and applied by each test (``strategies.fuzz``)
rather than loaded as the default, so other Hypothesis users in the suite keep their own settings.

``fuzz`` (the default, CI): derandomized, so every run tries the same inputs and a failure reproduces; no
example database on disk; no deadline (a loaded CI box must not turn a slow example into a failure). Each
test sets its own ``max_examples`` (a few hundred) so the folder runs in well under a minute.

``fuzz-deep`` (``HOTLINE_FUZZ_PROFILE=fuzz-deep``): random and ten times longer, to hunt for new bugs by hand;
whatever it finds goes into a test as an ``@example``.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("fuzz", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("fuzz-deep", derandomize=False, database=None, deadline=None, print_blob=True)

