"""The `renderfm` command line, a front end over api.py like the Slicer module.

commands.py builds the parser and runs each command; args.py checks arguments (one
"renderfm: error:" line and exit status 2 for a user mistake); finetune.py and groundtruth.py add
`renderfm finetune`, `compare` and `make-gt`.
"""

from .commands import main

__all__ = ["main"]
