"""The one monotonic clock of ipw."""

from __future__ import annotations

import time

#: The one monotonic clock [s] on which every reading, window edge and token time is stamped.
#: Tests replace it with a simulated clock (tests/conftest.py), so call it as ``clock.now()``.
now = time.monotonic
