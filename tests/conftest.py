"""Test-wide settings.

Under CI (``CI`` set) hypothesis runs derandomized: the same examples every run, so a
landing is never decided by the luck of a random search. Locally the search stays
random and keeps finding new cases (a found case becomes a table test).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
