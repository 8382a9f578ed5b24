"""No word on the studio's page outside the catalogs: the UI's Python (ocr_studio/ui/*.py, read as
a syntax tree) and reader.js are scanned for literal text a user would read — labels, buttons,
placeholders, Markdown and HTML with words in it, messages — and every message id the UI names
must be in the English and the Russian catalog. Only strings that are not language (CSS classes,
ids, symbols, format names, the product's name) may stay literal."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocr_studio import i18n

UI = Path(__file__).resolve().parents[1] / "ocr_studio" / "ui"

# Strings that are not language: the product's name, format names shown as they are, HTTP's words.
ALLOWED = {"OCR Studio", "Markdown", "Word", "JSON", "HTML", "PDF", "ZIP", "GPU", "Bearer"}
# Keyword arguments that carry text a user reads, on any call.
TEXT_KEYWORDS = {"label", "info", "placeholder", "title", "value", "detail", "message"}
# Components whose first positional argument is text a user reads.
TEXT_COMPONENTS = {"Button", "Markdown", "HTML", "Accordion", "Tab", "Textbox", "Sidebar", "Radio", "Checkbox"}
# Calls whose string arguments are message ids or code, not text.
ID_CALLS = {"t", "static", "made", "Message", "message", "text", "of", "get", "startswith", "endswith", "partition"}
ID_CALLS |= {"debug", "info", "warning", "exception"}  # the log's words are for a bug report, not the page
# Keyword arguments that are never text (ids, modes, names of things).
CODE_KEYWORDS = {"elem_id", "elem_classes", "api_name", "api_visibility", "variant", "size", "language", "type"}

_TAGS = re.compile(r"<(style|script)\b.*?</\1>|<[^>]*>", re.S)
_PLACEHOLDERS = re.compile(r"\{[^{}]*\}")
# Two or more words of letters in a row: "Fit width", "Nothing is running" (not "page-view rect").
_WORDS = re.compile(r"(?<![\w-])[A-Za-z][a-z]+(?: [A-Za-z][a-z]+)+(?![\w-])")
_ONE_WORD = re.compile(r"^[A-Z][a-z]{2,}[.:!?…]?$")
_SCRIPT = re.compile(r"=>|\(\);|\breturn \w+;")  # a script the page runs, not words it shows


def is_language(text: str) -> bool:
    """Whether a string holds words a user would read (tags, placeholders and code left out)."""
    visible = _PLACEHOLDERS.sub(" ", _TAGS.sub(" ", text)).strip()
    if not visible or visible in ALLOWED or _SCRIPT.search(visible):
        return False
    for allowed in ALLOWED:
        visible = visible.replace(allowed, " ")
    return bool(_WORDS.search(visible) or _ONE_WORD.match(visible.strip()))


def _literal(node: ast.AST) -> str | None:
    """A str constant, or an f-string with its placeholders written as {}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def literal_texts(source: str, name: str) -> Iterator[str]:
    """'file:line: "text"' for every literal user-facing string in Python ``source``."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):  # a docstring
            if _literal(body[0].value) is not None:
                skip.add(id(body[0].value))
        if isinstance(node, ast.Call) and _call_name(node) in ID_CALLS:
            skip.update(id(arg) for arg in node.args)
        if isinstance(node, ast.keyword) and node.arg in CODE_KEYWORDS:
            skip.add(id(node.value))
        if isinstance(node, ast.Subscript):
            skip.add(id(node.slice))
        if isinstance(node, ast.Compare):  # comparisons with codes: phase == "pages"
            skip.update(id(part) for part in (node.left, *node.comparators))
        if isinstance(node, ast.Dict):  # keys are codes
            skip.update(id(key) for key in node.keys if key is not None)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(value) for value in node.values)  # judged whole, as the f-string
    found = []
    for node in ast.walk(tree):
        text = _literal(node)
        if text is None or id(node) in skip:
            continue
        if is_language(text):
            found.append(f"{name}:{node.lineno}: {text[:80]!r}")
    for node in ast.walk(tree):  # single words where a component shows them: gr.Button("Run")
        if not isinstance(node, ast.Call):
            continue
        candidates = [kw.value for kw in node.keywords if kw.arg in TEXT_KEYWORDS]
        if _call_name(node) in TEXT_COMPONENTS and node.args:
            candidates.append(node.args[0])
        for candidate in candidates:
            elements = candidate.elts if isinstance(candidate, ast.List | ast.Tuple) else [candidate]
            for element in elements:
                parts = element.elts if isinstance(element, ast.Tuple) else [element]
                for part in parts[:1]:  # a (label, value) choice: its label
                    text = _literal(part)
                    visible = _PLACEHOLDERS.sub("", _TAGS.sub("", text or "")).strip()
                    if re.search(r"[A-Za-z]{2}", visible) and visible not in ALLOWED:
                        found.append(f"{name}:{part.lineno}: {text[:80]!r}")
    yield from dict.fromkeys(found)


def js_texts(source: str, name: str) -> Iterator[str]:
    """Literal words in a script: every quoted string that reads as language (comments left out)."""
    code = re.sub(r"/\*.*?\*/|(?<![:\\])//[^\n]*", "", source, flags=re.S)
    for match in re.finditer(r"([\"'`])((?:\\.|(?!\1).)*)\1", code):
        text = match.group(2)
        if is_language(re.sub(r"\$\{[^}]*\}", "{}", text)):
            yield f"{name}:{code[: match.start()].count(chr(10)) + 1}: {text[:80]!r}"


def ui_sources() -> list[Path]:
    return sorted(UI.glob("*.py"))


def test_the_ui_has_no_literal_text_outside_the_catalogs() -> None:
    found = [hit for path in ui_sources() for hit in literal_texts(path.read_text(encoding="utf-8"), path.name)]
    found += list(js_texts((UI / "reader.js").read_text(encoding="utf-8"), "reader.js"))
    assert not found, "text a user reads, not from ocr_studio/locales/ui.*.toml:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "planted",
    [
        'gr.Button("Run")',
        'gr.Textbox(label="Pages", placeholder="all pages")',
        'gr.Radio([("This computer", "local")], elem_id="where")',
        'status = "Nothing is running."',
        "html = f'<p class=\"note\">Downloads appear here once {n} pages are done.</p>'",
        'raise InputError(f"Unknown engine {name!r}.")',
    ],
)
def test_the_scan_finds_planted_text(planted: str) -> None:
    """The scan is not blind: text planted in the UI's code is named."""
    source = (UI / "app.py").read_text(encoding="utf-8") + "\n\n\ndef planted():\n    " + planted + "\n"
    found = list(literal_texts(source, "app.py"))
    assert found and all(":" in hit for hit in found), planted
    assert any(int(hit.split(":")[1]) > source.count("\n") - 3 for hit in found), found


def test_the_scan_lets_code_through() -> None:
    harmless = [
        'gr.HTML(\'<h1 class="studio-title">OCR Studio</h1>\', elem_id="title")',
        'x = f\'<div class="pv-scroll" tabindex="0" data-w="{w}">\'',
        'css = "#page-view rect[data-b]"',
        "policy = \"default-src 'self'; object-src 'none'\"",
        'when = time.strftime("%m-%d %H:%M")',
    ]
    for code in harmless:
        assert not list(literal_texts(code, "x.py")), code
    assert not list(js_texts('const a = document.querySelector("#page-view rect[data-b]");', "x.js"))
    assert list(js_texts('button.title = "Fit the page width";', "x.js"))


def _ids(tree: ast.AST) -> Iterator[tuple[str, bool]]:
    """(message id or its constant prefix, whether it is a prefix) for each t()/static() call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in {"t", "static", "Message", "message"} and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value, False
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                yield first.values[0].value, True


def test_every_message_the_ui_names_is_in_both_catalogs() -> None:
    catalogs = {lang: i18n.catalog(lang) for lang in i18n.LANGUAGES}
    missing = []
    named = 0
    for path in ui_sources():
        for msg_id, prefix in _ids(ast.parse(path.read_text(encoding="utf-8"))):
            if not msg_id.startswith(("ui.", "core.", "launcher.", "studio.")):
                continue
            named += 1
            for lang, catalog in catalogs.items():
                known = any(key.startswith(msg_id) for key in catalog) if prefix else msg_id in catalog
                if not known:
                    missing.append(f"{path.name}: {msg_id}{'…' if prefix else ''} ({lang})")
    assert named > 100, named  # the scan sees the UI's messages
    assert not missing, "\n".join(missing)


def test_the_russian_ui_catalog_is_russian_and_complete() -> None:
    areas = ("ui.", "studio.", "exports.")  # the page's words, and those an export writes itself
    english = {k: v for k, v in i18n.catalog("en").items() if k.startswith(areas)}
    russian = {k: v for k, v in i18n.catalog("ru").items() if k.startswith(areas)}
    assert set(english) == set(russian)
    same = [
        k
        for k, v in russian.items()
        if v == english[k] and re.search(r"[A-Za-z]{4}", _PLACEHOLDERS.sub("", _TAGS.sub("", str(v))))
    ]
    allowed_same = {"ui.tabs.markdown", "ui.tabs.json", "ui.gpu.capability", "ui.gpu.capability_sm"}
    assert set(same) <= allowed_same, sorted(set(same) - allowed_same)
