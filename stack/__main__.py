"""``python -m stack demo``."""

import sys

from .demo import main

sys.exit(main())
