"""What an engine found on a page, and the text views built from it.

Coordinates are pixels of the page image the job rendered (``PageResult.width``
× ``PageResult.height``); engines map their model's coordinate space back to it.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# dots.ocr's layout categories; other engines use a subset ("Text" by default).
CATEGORIES = (
    "Caption",
    "Footnote",
    "Formula",
    "List-item",
    "Page-footer",
    "Page-header",
    "Picture",
    "Section-header",
    "Table",
    "Text",
    "Title",
)
PAGE_FURNITURE = ("Page-header", "Page-footer")

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Block:
    """One layout element: where it is, what kind it is, and its text.

    ``text`` is Markdown for ordinary elements, LaTeX for formulas and HTML for
    tables; pictures have no text.
    """

    bbox: BBox | None
    category: str = "Text"
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "category": self.category,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        bbox = data.get("bbox")
        return cls(
            bbox=tuple(float(v) for v in bbox) if bbox else None,  # type: ignore[arg-type]
            category=str(data.get("category") or "Text"),
            text=str(data.get("text") or ""),
        )


@dataclass
class PageResult:
    """One page's result. ``truncated`` means the engine stopped early (token
    limit, runaway repetition) and what is here is what could be kept."""

    page_number: int  # 1-based, in the source document
    width: int
    height: int
    blocks: list[Block] = field(default_factory=list)
    engine: str = ""
    task: str = ""
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    raw_text: str = ""  # the engine's raw output, kept so nothing is ever lost
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocks"] = [b.to_dict() for b in self.blocks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        return cls(
            page_number=int(data["page_number"]),
            width=int(data["width"]),
            height=int(data["height"]),
            blocks=[Block.from_dict(b) for b in data.get("blocks", [])],
            engine=str(data.get("engine", "")),
            task=str(data.get("task", "")),
            truncated=bool(data.get("truncated", False)),
            warnings=list(data.get("warnings", [])),
            raw_text=str(data.get("raw_text", "")),
            seconds=float(data.get("seconds", 0.0)),
        )

    def markdown(self, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
        return page_markdown(self, furniture=furniture, image_ref=image_ref)

    def text(self, *, furniture: bool = True) -> str:
        return "\n\n".join(
            b.text for b in self.blocks if b.text and (furniture or b.category not in PAGE_FURNITURE)
        )


@dataclass
class DocumentResult:
    """A document's pages in order, plus what went wrong with it (if anything)."""

    name: str
    pages: list[PageResult] = field(default_factory=list)
    page_count: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "page_count": self.page_count,
            "error": self.error,
            "pages": [p.to_dict() for p in self.pages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentResult:
        return cls(
            name=str(data["name"]),
            pages=[PageResult.from_dict(p) for p in data.get("pages", [])],
            page_count=int(data.get("page_count", 0)),
            error=data.get("error"),
        )

    def markdown(self, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
        parts = [p.markdown(furniture=furniture, image_ref=image_ref) for p in self.pages]
        return "\n\n---\n\n".join(part for part in parts if part) + "\n"

    def text(self, *, furniture: bool = True) -> str:
        return "\n\n\f".join(p.text(furniture=furniture) for p in self.pages) + "\n"

    def json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"


class ImageRef:
    """Names the file a picture block is exported to, so Markdown can link it."""

    def __call__(self, page: PageResult, index: int) -> str:
        return f"images/page-{page.page_number:04d}-{index:03d}.png"


def block_markdown(block: Block) -> str:
    """One block as Markdown: formulas stay LaTeX, tables stay HTML."""
    text = block.text.strip()
    if block.category == "Formula":
        if not text:
            return ""
        if text.startswith("$$") and text.endswith("$$") and len(text) >= 4:
            return text
        return f"$$\n{text.strip('$').strip()}\n$$"
    if block.category == "Title":
        return text if text.startswith("#") else f"# {text}" if text else ""
    if block.category == "Section-header":
        return text if text.startswith("#") else f"## {text}" if text else ""
    return text


def page_markdown(page: PageResult, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
    parts: list[str] = []
    for index, block in enumerate(page.blocks):
        if not furniture and block.category in PAGE_FURNITURE:
            continue
        if block.category == "Picture":
            if image_ref is not None and block.bbox is not None:
                parts.append(f"![Picture]({image_ref(page, index)})")
            continue
        md = block_markdown(block)
        if md:
            parts.append(md)
    return "\n\n".join(parts)


def escape(text: str) -> str:
    return html.escape(text, quote=True)
