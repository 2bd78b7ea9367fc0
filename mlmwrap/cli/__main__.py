"""``python -m mlmwrap.cli``: the same as the ``mlmwrap`` command."""

import sys

from mlmwrap.cli import main

sys.exit(main())
