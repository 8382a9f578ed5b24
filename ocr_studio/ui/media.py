"""What the viewer loads besides Gradio's own payloads: page images at display size, page
thumbnails and export downloads, each from a job in the workspace.

A page image is encoded to WebP once, on first request, and kept beside the page's PNG;
every later view (this tab, a reopened job, another tab) is a file read with a long-lived
private cache header, so turning pages costs the browser a cache hit or one small file.

``router(studio)`` returns the routes under ``/studio/``; ``server.py`` mounts them beside
the Gradio app, behind the same Host/token checks."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from ..i18n import error_text, t
from ..jobs import JOB_ID, Job, JobError, page_image_whole
from . import job_names
from .viewer import MEDIA_PREFIX

PREFIX = "/" + MEDIA_PREFIX  # the pages link to these routes relative to their own path
VIEW_QUALITY = 80  # WebP quality of the page image: crisp text at a fraction of the PNG's size
THUMB_WIDTH = 120
WEBP_MAX_SIDE = 16_383  # WebP's limit per side: a taller or wider page is shown scaled down to it
CACHE = "private, max-age=86400"  # URLs carry the page file's mtime, so a redone page gets a new one
_ENCODING = threading.Lock()  # two tabs asking for the same new page encode it once


def view_path(job: Job, document_index: int, page_number: int, kind: str) -> Path:
    """Where the encoded display image (``page``) or thumbnail (``thumb``) of a page is cached."""
    png = job.page_image_path(document_index, page_number)
    return png.with_name(f"{png.stem}.{kind}.webp")


def encoded_image(job: Job, document_index: int, page_number: int, kind: str) -> Path:
    """The cached WebP of a page, made from its PNG on first use."""
    target = view_path(job, document_index, page_number, kind)
    source = job.page_image_path(document_index, page_number)
    if _fresh(target, source):
        return target
    from PIL import Image

    with _ENCODING:
        if _fresh(target, source):
            return target
        with Image.open(source) as image:
            image = image.convert("RGB")
            if kind == "thumb":
                image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
            elif max(image.size) > WEBP_MAX_SIDE:  # e.g. a 1x100000 px strip: shown, not a 500
                image.thumbnail((WEBP_MAX_SIDE, WEBP_MAX_SIDE))
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    image.save(handle, format="WEBP", quality=VIEW_QUALITY, method=2)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    return target


def download_name(job: Job, target: str, path: Path) -> str:
    """The name a download is saved under: ``<job name>.zip`` for the job, ``<document>.ocr.pdf``
    for the searchable PDF (never the original's own name, which it would overwrite or be taken
    for), ``<document>.<format>`` for the others."""
    if target == "job":
        return f"{job_names.file_name(job_names.name_of(job))}{path.suffix}"
    try:
        document = job.documents[int(target)].name
    except (ValueError, IndexError):
        return path.name
    stem = job_names.file_name(Path(document).stem, fallback="document")
    return f"{stem}.ocr.pdf" if path.suffix == ".pdf" else f"{stem}{path.suffix}"


def _fresh(target: Path, source: Path) -> bool:
    """Whether the cached encoding ``target`` is a file of ours (not a link) newer than its PNG."""
    return target.is_file() and not target.is_symlink() and target.stat().st_mtime >= source.stat().st_mtime


def router(studio: Any) -> APIRouter:
    """The media routes for ``studio`` (an ``app.Studio``)."""
    routes = APIRouter(prefix=PREFIX)

    def job_or_404(job_id: str) -> Job:
        if not re.fullmatch(JOB_ID, job_id):  # checked before any path is made from it (a NUL, "..", junk)
            raise HTTPException(status_code=404, detail=t("ui.media.no_job"))
        try:
            return studio.job(job_id)
        except JobError:
            raise HTTPException(status_code=404, detail=t("ui.media.no_job")) from None

    def image(kind: str, job_id: str, document: int, page: int) -> FileResponse:
        job = job_or_404(job_id)
        if not 0 <= document < len(job.inputs):
            raise HTTPException(status_code=404, detail=t("ui.media.no_document"))
        png = job.page_image_path(document, page)
        if not png.exists() and not png.is_symlink():
            raise HTTPException(status_code=404, detail=t("ui.media.no_image"))
        if not page_image_whole(png):  # cut short, a folder or a link in its place: never followed
            raise HTTPException(status_code=404, detail=t("files.page.damaged_image"))
        try:
            path = encoded_image(job, document, page, kind)
        except Exception as exc:  # decodes badly after all: the same clean answer, never a 500
            raise HTTPException(
                status_code=404, detail=t("ui.media.unreadable_image", reason=error_text(exc))
            ) from None
        return FileResponse(path, media_type="image/webp", headers={"Cache-Control": CACHE})

    @routes.get("/page/{job_id}/{document}/{page}")
    def page_image(job_id: str, document: int, page: int) -> FileResponse:
        return image("page", job_id, document, page)

    @routes.get("/thumb/{job_id}/{document}/{page}")
    def page_thumbnail(job_id: str, document: int, page: int) -> FileResponse:
        return image("thumb", job_id, document, page)

    @routes.get("/download/{job_id}/{target}/{fmt}")
    def download(job_id: str, target: str, fmt: str, clean: int = 0) -> Response:
        """A document's export (``target`` = its index) or the whole job's zip (``target`` = job)."""
        job = job_or_404(job_id)
        try:
            files = studio.exports(job, clean=bool(clean))
        except Exception as exc:  # shown in the browser's download list / tab
            raise HTTPException(status_code=500, detail=t("ui.media.export_failed", reason=error_text(exc))) from None
        if target == "job":  # the zip, or the whole job as one e-book
            path = files.get("zip") if fmt == "zip" else (files.get("books") or {}).get(fmt)
        else:
            try:
                path = files.get(int(target), {}).get(fmt)
            except ValueError:
                path = None
        if path is None or not Path(path).is_file():
            raise HTTPException(status_code=404, detail=t("ui.media.nothing"))
        return FileResponse(
            path, filename=download_name(job, target, Path(path)), content_disposition_type="attachment"
        )

    return routes
