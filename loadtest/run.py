"""``python -m loadtest.run ...`` is ``python -m loadtest ...``: the name the recorded
reports give their commands."""

from __future__ import annotations

import sys

from loadtest.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
