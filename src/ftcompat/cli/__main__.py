"""``python -m ftcompat.cli``."""

import sys

from ftcompat.cli import main

sys.exit(main())
