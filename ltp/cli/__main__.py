"""``python -m ltp.cli``: the library's subcommands (``ltp serve`` lives in ``app.cli``)."""

import sys

from ltp.cli.parser import main

sys.exit(main())
