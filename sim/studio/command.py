"""``bwcsim studio``: serve the studio on the loopback interface until Ctrl-C."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from controller.errors import InvalidInput
from controller.node import ControllerFactory

from .app import create_app
from .session import Studio

__all__ = ["serve"]


def serve(paths: list[Path], host: str, port: int, factory: ControllerFactory) -> None:
    """Serve the library at ``paths`` from the working folder; writes stay inside that folder."""
    import uvicorn

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidInput(f"{host}: the studio serves only this machine (a loopback address "
                           "such as 127.0.0.1)", "--host")
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise InvalidInput(f"{missing[0]}: no such file or folder")
    studio = Studio(Path.cwd(), paths or None, factory)
    print(f"bwcsim studio: http://{host}:{port}/  (library: "
          f"{', '.join(str(p) for p in studio.library)}; saves inside {studio.root}; Ctrl-C stops)",
          flush=True)
    uvicorn.run(create_app(studio), host=host, port=port, log_level="warning")
