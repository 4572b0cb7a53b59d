"""`renderfm view`: RenderFM beside Slicer's volume rendering in a web browser (trame-slicer).

    session.py  ViewerSession: the CT, Slicer's rendering and RenderFM's in two views (no trame)
    views.py    the two trame-slicer 3D views, streamed to the page
    page.py     the page: toolbar, the two views, status line
    server.py   the trame server: state, buttons, the poll timer, the ready line

Needs the `web` extra (trame-slicer); require_web() says so. Nothing here is imported by the
rest of RenderFMLib, and the Slicer extension does not ship it (CMakeLists.txt).
"""

from __future__ import annotations

from ..errors import RenderFMError


def require_web() -> None:
    """RenderFMError naming the extra to install when trame-slicer (or slicer-core) is missing."""
    try:
        import slicer  # noqa: F401
        import trame_slicer  # noqa: F401
    except ImportError as error:
        raise RenderFMError(f"renderfm view needs the web extra ({error.name} is missing): "
                            "pip install 'renderfm[web]'") from None
