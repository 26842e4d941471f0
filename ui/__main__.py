"""Entry point for ``python -m ui``."""

import sys

from ui.cli import main

sys.exit(main())
