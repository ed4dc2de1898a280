"""``python -m trajprobe`` is the ``trajprobe`` command."""

import sys

from trajprobe.apps.cli import main

sys.exit(main())
