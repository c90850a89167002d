"""The studio's HTTP face: a JSON API over :class:`~sim.studio.session.Studio`, and the page.

Every route answers JSON. Bad input — an unreadable file, an edit that does not fit, a value
the scenario loader refuses, a save target outside the folder — is a 4xx answer whose body
names the field, so the page shows it beside that field; a request body that is not JSON is
one too. Replays are CPU work of a few milliseconds to a fraction of a second, run in a worker
thread so the event loop keeps serving the page's static files meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .session import Studio, StudioError

__all__ = ["create_app"]

STATIC = Path(str(resources.files("sim.studio").joinpath("static")))

Handler = Callable[[Request], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise StudioError("the request is not JSON", status=400) from None
    if not isinstance(data, dict):
        raise StudioError("the request is not a JSON object", status=400)
    return data


def _edits(data: dict[str, Any]) -> list[dict[str, Any]]:
    edits = data.get("edits") or []
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise StudioError("edits must be a list of {op, field, value}")
    return edits


def _source(data: dict[str, Any]) -> dict[str, Any]:
    source = data.get("source")
    if not isinstance(source, dict):
        raise StudioError("no scenario: open a library file or make one with the form", "file")
    return source


def create_app(studio: Studio) -> Starlette:
    """The Starlette application serving ``studio``."""

    def guarded(fn: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except StudioError as exc:
                return _json(exc.to_json(), exc.status)
        return handler

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def library(request: Request) -> Response:
        files = await run_in_threadpool(studio.library_files)
        return _json({"ok": True, "root": str(studio.root), "files": files,
                      "policies": studio.policies()})

    async def vocabulary(request: Request) -> Response:
        ref = request.query_params.get("policy", "dhs-2023")
        return _json({"ok": True, "vocabulary": studio.vocabulary(ref)})

    async def open_(request: Request) -> Response:
        data = await _body(request)
        return _json(await run_in_threadpool(studio.open, _source(data), _edits(data)))

    async def cursor(request: Request) -> Response:
        try:
            t = float(request.query_params.get("t", "0"))
        except ValueError:
            raise StudioError("t: a time in seconds", "t") from None
        return _json({"ok": True, **studio.cursor(request.query_params.get("run", ""), t)})

    async def save(request: Request) -> Response:
        data = await _body(request)
        return _json(await run_in_threadpool(
            studio.save, _source(data), _edits(data), str(data.get("target", "")),
            bool(data.get("overwrite")), bool(data.get("pin_expect"))))

    async def create(request: Request) -> Response:
        data = await _body(request)
        return _json(await run_in_threadpool(studio.create, data))

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(routes=[
        Route("/", index),
        Route("/favicon.ico", no_icon),
        Route("/api/library", guarded(library)),
        Route("/api/vocabulary", guarded(vocabulary)),
        Route("/api/open", guarded(open_), methods=["POST"]),
        Route("/api/cursor", guarded(cursor)),
        Route("/api/save", guarded(save), methods=["POST"]),
        Route("/api/create", guarded(create), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
