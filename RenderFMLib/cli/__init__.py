"""The `renderfm` command line, a front end over api.py like the Slicer module.

commands.py builds the parser and runs each command; args.py checks arguments (one
"renderfm: error:" line and exit status 2 for a user mistake); finetune.py and groundtruth.py add
`renderfm finetune`, `compare` and `make-gt`.
"""

from __future__ import annotations

from .args import interrupted

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `renderfm` (commands.main); returns the exit status, 130 after Ctrl-C,
    even while the commands load."""
    try:
        from .commands import main as run
    except KeyboardInterrupt:
        return interrupted()
    return run(argv)
