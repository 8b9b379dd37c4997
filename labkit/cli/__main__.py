"""``python -m labkit.cli``: the labkit command (node-shell wrappers run it this way)."""

import sys

from . import main

sys.exit(main())
