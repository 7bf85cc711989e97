"""``python -m nbrnn`` is the ``nbrnn`` command."""

import sys

from .cli import main

sys.exit(main())
