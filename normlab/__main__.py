"""``python -m normlab ...`` runs the command-line interface (same as the ``normlab`` script)."""

import sys

from normlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
