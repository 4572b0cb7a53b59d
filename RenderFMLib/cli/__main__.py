"""`python -m RenderFMLib.cli ARGS`, the same as `renderfm ARGS`."""

import sys

from . import main

sys.exit(main())
