"""File formats: a DocumentResult as .md / .txt / .json / .html / .pdf / .docx, and a whole
job as one .zip.

Picture blocks are cropped from the page images the job kept and written as PNG files
that the Markdown and HTML link to. Every file is written atomically (temp file, then
``os.replace``), so a crash never leaves half an export behind a complete-looking name.

The JSON export is always complete (page furniture included, raw engine output kept): it
is the lossless format. ``clean=True`` drops page headers/footers from the reading views.
The searchable PDF (``searchable_pdf.py``) is built from the original file when the caller
passes it (``source_path``), else from the page images; Word comes from ``word.py``.

One bad file never costs the others: each format of each document is made on its own, and one
that fails leaves ``<file>.failed.txt`` in its place saying why (``Written.failed``,
``JobExport.failed`` tell the caller); documents without pages are skipped. Exports are private
to their owner (0600), like the job files they come from.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .ebooks import BOOK_FORMATS, book_file
from .i18n import LocalizedError, as_text, error_message, message, t
from .results import DocumentResult, ImageRef, PageResult

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

FORMATS = ("md", "txt", "json", "html", "pdf", "docx", "epub", "fb2")
# The per-document formats the UI offers as downloads (the zip holds them all).
DOCUMENT_FORMATS = FORMATS
FORMAT_LABELS = {  # English; in the reader's language: t(f"core.format.{fmt}", lang)
    "md": "Markdown",
    "txt": "Plain text",
    "json": "JSON",
    "html": "HTML",
    "pdf": "Searchable PDF",
    "docx": "Word",
    "epub": "EPUB",
    "fb2": "FictionBook (FB2)",
}
_BINARY_FORMATS = ("pdf", "docx", "epub", "fb2")

# (document_index, page_number) -> the page image the engine saw, or None when it is gone.
PageImageSource = Callable[[int, int], "Image.Image | None"]
# document_index -> the original input file (a job's ``Job.input_path``), or None when it is gone.
InputPathSource = Callable[[int], "Path | None"]
# Runs "module:function"(*args, timeout=..., **kwargs) somewhere safe (``page_worker.run_isolated``
# bound to the settings): the searchable PDF reads the original file through it.
IsolatedCall = Callable[..., bytes]

_UNSAFE_CHARS = re.compile(r"[^\w.\- ()+,=@\[\]]+")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)$", re.I)


class ExportError(LocalizedError):
    """An export cannot be written; the message says what to do."""


def safe_stem(name: str, fallback: str = "document") -> str:
    """A file-name stem from a document name that cannot leave the export folder:
    directory parts, separators, control characters and leading dots are removed."""
    base = re.split(r"[/\\]", name or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return _clean_name(stem) or fallback


def _clean_name(name: str) -> str:
    name = _UNSAFE_CHARS.sub("_", name).strip(" ._")[:100].rstrip(" .")
    return name + "_" if _WINDOWS_RESERVED.match(name) else name


def _check_formats(formats: Sequence[str]) -> list[str]:
    chosen = [f.lower().lstrip(".") for f in formats]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise ExportError(
            message("core.export.unknown_formats", formats=", ".join(unknown), choices=", ".join(FORMATS))
        )
    return list(dict.fromkeys(chosen))


EXPORT_MODE = 0o600  # an export holds the document's text: its owner's alone, like the job files
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (made if missing; an existing one of ours
    loses group and other access), so not even the names of the exports show to other users."""
    path = Path(path)
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if os.name == "posix":
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, info.st_mode & 0o700)
    return path


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``;
    the file is its owner's alone (``EXPORT_MODE``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, EXPORT_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- picture crops ------------------------------------------------------------------------


def crop_box(bbox: Sequence[float], page: PageResult, image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``bbox`` (page-result pixels) as an integer crop box of an image of ``image_size``,
    scaled if the image is not the size the engine saw, clamped to the image; None if empty."""
    width, height = image_size
    sx = width / page.width if page.width > 0 else 1.0
    sy = height / page.height if page.height > 0 else 1.0
    x1, y1, x2, y2 = (float(v) for v in bbox)
    x1, x2 = sorted((x1 * sx, x2 * sx))
    y1, y2 = sorted((y1 * sy, y2 * sy))
    box = (
        max(0, math.floor(x1 + 1e-6)),
        max(0, math.floor(y1 + 1e-6)),
        min(width, math.ceil(x2 - 1e-6)),
        min(height, math.ceil(y2 - 1e-6)),
    )
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    return box


class PictureCrops(ImageRef):
    """Crops a document's picture blocks from its page images and names them; as an
    ImageRef it links only the pictures that were actually cropped."""

    def __init__(
        self, doc: DocumentResult, document_index: int, page_image: PageImageSource | None, folder: str = "images"
    ):
        super().__init__(folder)
        self.files: dict[str, bytes] = {}  # path relative to the export folder -> PNG bytes
        if page_image is None:
            return
        for page in doc.pages:
            pictures = [(i, b) for i, b in enumerate(page.blocks) if b.category == "Picture" and b.bbox is not None]
            if not pictures:
                continue
            image = self._page_image(page_image, document_index, page.page_number)
            if image is None:
                continue
            for index, block in pictures:
                box = crop_box(block.bbox, page, image.size)  # type: ignore[arg-type]
                if box is None:
                    continue
                buffer = io.BytesIO()
                try:
                    image.crop(box).save(buffer, format="PNG")
                except Exception as exc:  # a crop that cannot be encoded costs that picture, not the export
                    log.warning("Picture %d of page %d not cropped: %s", index, page.page_number, exc)
                    continue
                self.files[super().__call__(page, index)] = buffer.getvalue()  # type: ignore[index]

    @staticmethod
    def _page_image(source: PageImageSource, document_index: int, page_number: int) -> Image.Image | None:
        try:
            image = source(document_index, page_number)
        except Exception as exc:  # a missing or unreadable page image costs its pictures, not the export
            log.warning("No page image for document %d page %d: %s", document_index, page_number, exc)
            return None
        if image is not None and image.mode not in ("RGB", "RGBA", "L"):
            image = image.convert("RGB")
        return image

    def __call__(self, page: PageResult, index: int) -> str | None:
        ref = super().__call__(page, index)
        return ref if ref in self.files else None

    def picture(self, page: PageResult, index: int) -> bytes | None:
        """The PNG of a picture block, or None when it could not be cropped."""
        ref = self(page, index)
        return self.files[ref] if ref is not None else None


# --- views ----------------------------------------------------------------------------------


def render(doc: DocumentResult, fmt: str, *, clean: bool = False, image_ref: ImageRef | None = None) -> str:
    """One export format of ``doc`` as text."""
    furniture = not clean
    if fmt == "md":
        return doc.markdown(furniture=furniture, image_ref=image_ref)
    if fmt == "txt":
        return doc.text(furniture=furniture)
    if fmt == "json":
        return doc.json()
    if fmt == "html":
        return doc.html(furniture=furniture, image_ref=image_ref)
    if fmt in _BINARY_FORMATS:
        raise ExportError(message("core.export.binary_format", format=fmt))
    raise ExportError(message("core.export.unknown_format", format=repr(fmt), choices=", ".join(FORMATS)))


FAILED_SUFFIX = ".failed.txt"  # in place of a file that could not be made: says why


@dataclass
class _Built:
    """One document's export in memory: its files by path relative to its folder, and the
    formats that could not be made, each with why (``i18n.Text``)."""

    files: dict[str, bytes] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _document_files(
    doc: DocumentResult,
    stem: str,
    formats: Sequence[str],
    *,
    document_index: int,
    page_image: PageImageSource | None,
    clean: bool,
    images_folder: str,
    source_path: Path | None = None,
    jpeg_quality: int | None = None,
    isolate: IsolatedCall | None = None,
) -> _Built:
    """Every file of one document's export, by path relative to its folder. Each format is made
    on its own: one that fails (a hostile page image, a codec's limit, a bug) is replaced by
    ``<stem>.<format>.failed.txt`` saying why, and the other formats are made as usual."""
    chosen = _check_formats(formats)
    built = _Built()
    crops: PictureCrops | None = None
    if any(f in ("md", "html", "docx", *BOOK_FORMATS) for f in chosen):
        try:
            crops = PictureCrops(doc, document_index, page_image, images_folder)
        except Exception as exc:  # the pictures are lost, the text is not
            log.warning("Pictures of %s not cropped: %s", doc.name, exc)
            crops = PictureCrops(doc, document_index, None, images_folder)
    for fmt in chosen:
        try:
            if fmt == "pdf":
                data = _searchable_pdf(doc, source_path, page_image, document_index, jpeg_quality, isolate)
            elif fmt == "docx":
                from .word import word_document

                assert crops is not None
                data = word_document(doc, picture=crops.picture, clean=clean)
            elif fmt in BOOK_FORMATS:
                assert crops is not None
                data = book_file(fmt, [doc], [crops.picture], clean=clean)
            else:
                data = render(doc, fmt, clean=clean, image_ref=crops).encode("utf-8")
        except Exception as exc:
            log.warning("The %s of %s could not be made: %s", fmt, doc.name, exc, exc_info=not isinstance(exc, OSError))
            reason = as_text(
                message(
                    "files.export.format_failed",
                    name=doc.name,
                    format=message(f"core.format.{fmt}"),
                    detail=error_message(exc),
                )
            )
            built.failed[fmt] = reason
            built.files[f"{stem}.{fmt}{FAILED_SUFFIX}"] = (t("files.export.failed_note", reason=reason) + "\n").encode()
            continue
        built.files[f"{stem}.{fmt}"] = data
    if crops is not None and any(f in ("md", "html") for f in chosen):
        built.files.update(crops.files)
    return built


_PDF_CACHE: OrderedDict[tuple, bytes] = OrderedDict()
_PDF_CACHE_SIZE = 2  # the UI asks for a document's files, then the zip: the last two are enough
_PDF_CACHE_MAX_BYTES = 128 * 1024 * 1024  # a bigger PDF is rebuilt rather than kept in memory
_PDF_CACHE_LOCK = threading.Lock()


def _searchable_pdf(
    doc: DocumentResult,
    source_path: Path | None,
    page_image: PageImageSource | None,
    document_index: int,
    jpeg_quality: int | None,
    isolate: IsolatedCall | None = None,
) -> bytes:
    """The searchable PDF, built once for a document's state: the UI writes each document's
    files and then the job's zip, and a PDF of many scanned pages takes seconds to build."""
    from .searchable_pdf import DEFAULT_JPEG_QUALITY

    quality = DEFAULT_JPEG_QUALITY if jpeg_quality is None else jpeg_quality
    try:
        stat = Path(source_path).stat() if source_path is not None else None
    except OSError:
        stat = None
    if stat is None:  # built from page images: nothing identifies them safely, so no reuse
        return _build_searchable_pdf(doc, source_path, page_image, document_index, quality, isolate)
    origin = (str(source_path), stat.st_size, stat.st_mtime_ns)
    key = (hashlib.sha256(doc.json().encode("utf-8")).hexdigest(), origin, document_index, quality)
    with _PDF_CACHE_LOCK:
        if key in _PDF_CACHE:
            _PDF_CACHE.move_to_end(key)
            return _PDF_CACHE[key]
    data = _build_searchable_pdf(doc, source_path, page_image, document_index, quality, isolate)
    if len(data) <= _PDF_CACHE_MAX_BYTES:
        with _PDF_CACHE_LOCK:
            _PDF_CACHE[key] = data
            while len(_PDF_CACHE) > _PDF_CACHE_SIZE:
                _PDF_CACHE.popitem(last=False)
    return data


def _build_searchable_pdf(
    doc: DocumentResult,
    source_path: Path | None,
    page_image: PageImageSource | None,
    document_index: int,
    quality: int,
    isolate: IsolatedCall | None,
) -> bytes:
    """With ``isolate`` (the studio's page worker), the original file is read in that worker under
    its time and memory budget, never in this process: a hostile PDF that MuPDF cannot finish
    costs its budget, then the PDF is made from the job's own page images instead."""
    from .searchable_pdf import searchable_pdf

    arguments = {"page_image": page_image, "document_index": document_index, "jpeg_quality": quality}
    if isolate is None or source_path is None:
        return searchable_pdf(doc, source_path=source_path, **arguments)
    try:
        return isolate("ocr_studio.searchable_pdf:searchable_pdf", doc, source_path=source_path, **arguments)
    except Exception as exc:  # over budget, out of memory, or the worker could not run it
        log.warning("The searchable PDF of %s is made from its page images: %s", doc.name, exc)
        return searchable_pdf(doc, source_path=None, **arguments)


class Written(list[Path]):
    """The paths ``export_document`` wrote, and the formats it could not make (``failed``: format
    -> why); a ``<stem>.<format>.failed.txt`` saying why stands in each one's place."""

    def __init__(self, paths: Sequence[Path] = (), failed: dict[str, str] | None = None):
        super().__init__(paths)
        self.failed: dict[str, str] = dict(failed or {})


def export_document(
    doc: DocumentResult,
    out_dir: Path,
    formats: Sequence[str] = FORMATS,
    *,
    page_image: PageImageSource | None = None,
    clean: bool = False,
    document_index: int = 0,
    images_folder: str | None = None,
    source_path: Path | None = None,
    jpeg_quality: int | None = None,
    isolate: IsolatedCall | None = None,
) -> Written:
    """Write ``doc`` into ``out_dir`` as ``<stem>.<format>`` for each format, plus its picture
    crops in ``<stem>_images/`` (or ``images_folder``); returns the paths written, with the
    formats that could not be made in ``.failed`` (their ``.failed.txt`` notes are among the paths).
    A document without pages writes nothing.

    ``page_image(document_index, page_number)`` supplies page images for the crops (a job's
    ``Job.page_image``); without it pictures are left out of the Markdown, HTML and Word.
    ``source_path`` is the original file (``Job.input_path(document_index)``): the searchable
    PDF keeps its pages as they are; without it the PDF is built from the page images.
    ``jpeg_quality`` (1-100; 0 keeps images lossless) is the PDF's image quality.
    """
    out_dir = Path(out_dir)
    stem = safe_stem(doc.name)
    folder = _safe_relative_folder(images_folder) if images_folder is not None else f"{stem}_images"
    _check_formats(formats)
    if not doc.pages:
        return Written()
    built = _document_files(
        doc,
        stem,
        formats,
        document_index=document_index,
        page_image=page_image,
        clean=clean,
        images_folder=folder,
        source_path=source_path,
        jpeg_quality=jpeg_quality,
        isolate=isolate,
    )
    return Written(_write_files(out_dir, built.files), built.failed)


def _write_files(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    root = Path(out_dir).resolve()
    written = []
    for relative, data in files.items():
        target = (root / relative).resolve()
        if not target.is_relative_to(root):  # defence in depth: names are built safe above
            raise ExportError(message("core.export.outside_folder", path=str(relative)))
        written.append(write_atomic(target, data))
    return written


def _safe_relative_folder(folder: str) -> str:
    parts = [_clean_name(part) for part in re.split(r"[/\\]", folder)]
    return "/".join(p for p in parts if p) or "images"


def document_folder_names(docs: Sequence[DocumentResult]) -> list[str]:
    """One distinct, safe folder name per document (``report``, ``report-2`` ...)."""
    names: list[str] = []
    seen: set[str] = set()
    for doc in docs:
        base = safe_stem(doc.name)
        name, n = base, 1
        while name.lower() in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name.lower())
        names.append(name)
    return names


@dataclass
class JobExport:
    """What ``export_job`` made: per document index, its files by format (a failed format maps to
    its ``.failed.txt`` note), the zip, and per document index the formats that failed, with why."""

    documents: dict[int, dict[str, Path]] = field(default_factory=dict)
    zip: Path | None = None
    failed: dict[int, dict[str, str]] = field(default_factory=dict)


def export_job(
    docs: Sequence[DocumentResult],
    *,
    out_dir: Path | None = None,
    zip_path: Path | None = None,
    page_image: PageImageSource | None = None,
    clean: bool = False,
    formats: Sequence[str] = FORMATS,
    input_path: InputPathSource | None = None,
    jpeg_quality: int | None = None,
    isolate: IsolatedCall | None = None,
) -> JobExport:
    """A job's downloads in one pass: each document with pages is made once, written to its own
    folder ``out_dir/<name>/`` (when ``out_dir`` is given: ``<stem>.<format>`` and ``images/``) and
    into the zip (when ``zip_path`` is given: the same tree). A document or format that fails
    costs only itself (see ``_document_files``); documents without pages are skipped. The zip is
    written to a temp file and renamed into place."""
    chosen = _check_formats(formats)
    result = JobExport()
    ready = [(index, doc) for index, doc in enumerate(docs) if doc.pages]
    names = document_folder_names([doc for _, doc in ready])
    archive: zipfile.ZipFile | None = None
    tmp: str | None = None
    if zip_path is not None:
        zip_path = Path(zip_path)
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".tmp", dir=zip_path.parent)
        archive = zipfile.ZipFile(os.fdopen(fd, "wb"), "w", compression=zipfile.ZIP_DEFLATED)
    try:
        for (index, doc), folder in zip(ready, names, strict=True):
            built = _document_files(
                doc,
                folder,
                chosen,
                document_index=index,
                page_image=page_image,
                clean=clean,
                images_folder="images",
                source_path=_input_path(input_path, index),
                jpeg_quality=jpeg_quality,
                isolate=isolate,
            )
            if built.failed:
                result.failed[index] = built.failed
            if out_dir is not None:
                home = (Path(out_dir) / folder).resolve()
                written = _write_files(home, built.files)
                result.documents[index] = {
                    _format_of(path.name, folder): path for path in written if path.parent == home
                }
            if archive is not None:
                for relative, data in built.files.items():
                    # PNG, PDF and DOCX are already compressed
                    packed = relative.endswith((".png", ".pdf", ".docx"))
                    kind = zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED
                    archive.writestr(f"{folder}/{relative}", data, compress_type=kind)
        if archive is not None:
            assert tmp is not None and zip_path is not None
            archive.close()
            archive = None
            os.chmod(tmp, EXPORT_MODE)
            os.replace(tmp, zip_path)
            result.zip = zip_path
    except BaseException:
        if archive is not None:
            archive.close()
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return result


def _format_of(file_name: str, stem: str) -> str:
    """``report.pdf`` -> "pdf"; ``report.pdf.failed.txt`` -> "pdf" (the note stands in its place)."""
    return file_name.removesuffix(FAILED_SUFFIX)[len(stem) + 1 :]


def export_job_zip(
    docs: Sequence[DocumentResult],
    zip_path: Path,
    *,
    page_image: PageImageSource | None = None,
    clean: bool = False,
    formats: Sequence[str] = FORMATS,
    input_path: InputPathSource | None = None,
    jpeg_quality: int | None = None,
    isolate: IsolatedCall | None = None,
) -> Path:
    """One .zip of a job: a folder per document holding ``<stem>.md/.txt/.json/.html/.pdf/.docx``
    and an ``images/`` folder of picture crops. ``page_image`` and ``input_path`` (a job's
    ``Job.input_path``, for the searchable PDF) are called with each document's index in
    ``docs``. A format that could not be made is a ``.failed.txt`` note in its place (see
    ``export_job``, which also says which)."""
    made = export_job(
        docs,
        zip_path=zip_path,
        page_image=page_image,
        clean=clean,
        formats=formats,
        input_path=input_path,
        jpeg_quality=jpeg_quality,
        isolate=isolate,
    )
    assert made.zip is not None
    return made.zip


def _input_path(source: InputPathSource | None, index: int) -> Path | None:
    if source is None:
        return None
    try:
        return source(index)
    except Exception as exc:  # a missing original costs the PDF its own pages, not the export
        log.warning("No input file for document %d: %s", index, exc)
        return None
