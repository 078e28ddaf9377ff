"""The viewer's web app: a JSON API over a Library and the page that reads it, all served from the package."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..eval.report import summary_sections
from .browse import OUTCOMES, Filter, select
from .compare import compare_runs
from .library import Library

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
#: the longest side of a picture as the browser gets it
THUMBNAIL = 320
#: samples on a page, at most
PAGE_LIMIT = 200


def _chosen(fit: dict[str, Any] | None) -> dict[tuple[str, str, str], float]:
    """The thresholds of the run's cascade_fit.json by (first, then, task)."""
    if not fit or not isinstance(fit.get("tasks"), dict):
        return {}
    first, then = str(fit.get("first")), str(fit.get("then"))
    return {
        (first, then, task): float(f["threshold"])
        for task, f in fit["tasks"].items()
        if isinstance(f, dict) and isinstance(f.get("threshold"), int | float)
    }


def create_app(root: Path) -> FastAPI:
    """The app over the runs under ``root``; it reads, and never writes, anything there."""
    library = Library(root)
    app = FastAPI(title="mmbridge view", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def loaded(key: str) -> Any:
        try:
            return library.run(key)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/runs")
    def runs() -> dict[str, Any]:
        return {"root": str(library.root), "runs": library.cards()}

    @app.get("/api/run")
    def run(key: str) -> dict[str, Any]:
        found, entries = loaded(key)
        return {
            "key": key,
            "dataset": (found.identity or {}).get("dataset", "?"),
            "providers": found.providers,
            "tasks": sorted({e.task for e in entries}),
            "types": sorted({e.type for e in entries if e.type}),
            "outcomes": list(OUTCOMES),
            "samples": len(entries),
            "rows": len(found.rows),
            "running": found.running,
            "problems": found.problems,
        }

    @app.get("/api/summary")
    def summary(key: str) -> dict[str, Any]:
        found, _ = loaded(key)
        made = found.summary()  # before "live" is read: a summary.json that cannot be read turns it on
        return {
            "live": found.live,
            "problems": found.problems,
            "summary_html": "".join(summary_sections(made, _chosen(found.fit))) if made else "",
        }

    @app.get("/api/samples")
    def samples(
        key: str,
        task: str | None = None,
        type: str | None = None,
        provider: str | None = None,
        outcome: str | None = None,
        q: str | None = None,
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=PAGE_LIMIT),
    ) -> dict[str, Any]:
        if outcome and outcome not in OUTCOMES:
            raise HTTPException(422, f"outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
        _, entries = loaded(key)
        kept = select(entries, Filter(task or None, type or None, provider or None, outcome or None, q or None))
        return {"total": len(kept), "offset": offset, "items": [e.to_json() for e in kept[offset : offset + limit]]}

    @app.get("/api/picture")
    def picture(key: str, id: str) -> Response:
        from PIL import Image, UnidentifiedImageError

        found, _ = loaded(key)
        sample = found.sample(id)
        if sample is None:
            raise HTTPException(404, f"run {key!r} has no inputs for sample {id!r}")
        # decoded and drawn again: whatever the path names, what leaves is a picture, never a file's bytes
        try:
            with Image.open(sample.image) as image:
                image.thumbnail((THUMBNAIL, THUMBNAIL))
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="PNG")
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
            raise HTTPException(404, f"the picture of sample {id!r} cannot be read") from None
        return Response(buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "max-age=300"})

    @app.get("/api/compare")
    def compare(a: str, b: str) -> dict[str, Any]:
        return compare_runs(loaded(a)[0], loaded(b)[0])

    @app.exception_handler(HTTPException)
    def failed(_: Any, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return app
