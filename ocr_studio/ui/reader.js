// OCR Studio's reader in the browser: layout boxes and text linked both ways, zoom and pan,
// ← / → to turn pages, page thumbnails, and a closed sidebar on narrow screens.
// Everything is event delegation on the document, so it survives Gradio re-rendering the
// page view and the text pane on every page turn. The server sends inert HTML; this adds
// behaviour only, never content from a document.
(() => {
  if (window.ocrStudioReader) return;
  window.ocrStudioReader = true;

  const ZOOM_KEY = "ocr-studio-zoom";
  let zoom = localStorage.getItem(ZOOM_KEY) || "width";
  let selected = null; // block index the user clicked, kept across hover

  const pageView = () => document.querySelector("#page-view .pv");
  const textPane = () => document.querySelector("#text-view");
  const rectFor = (b) => document.querySelector(`#page-view rect[data-b="${b}"]`);
  const blockFor = (b) => document.querySelector(`#text-view .blk.b-${b}`);
  // text blocks carry their index as a class (b-12): the Markdown sanitiser drops data attributes
  const blockIndex = (block) => [...block.classList].find((c) => /^b-\d+$/.test(c))?.slice(2);

  function scrollWithin(container, element, margin = 24) {
    if (!container || !element) return;
    const box = container.getBoundingClientRect();
    const target = element.getBoundingClientRect();
    if (target.top < box.top + margin || target.bottom > box.bottom - margin) {
      container.scrollTop += target.top - box.top - Math.max(margin, (box.height - target.height) / 3);
    }
    if (target.left < box.left || target.right > box.right) {
      container.scrollLeft += target.left - box.left - margin;
    }
  }

  function textScroller() {
    // the element of the text pane that scrolls (Gradio wraps the Markdown in a few divs)
    let node = textPane()?.querySelector(".blk");
    while (node && node !== document.body) {
      const style = getComputedStyle(node);
      if (/(auto|scroll)/.test(style.overflowY) && node.scrollHeight > node.clientHeight) return node;
      node = node.parentElement;
    }
    return textPane();
  }

  function mark(b, on, cls = "hl") {
    rectFor(b)?.classList.toggle(cls, on);
    blockFor(b)?.classList.toggle(cls, on);
  }

  function showText(b) {
    scrollWithin(textScroller(), blockFor(b));
  }

  function showBox(b) {
    scrollWithin(document.querySelector("#page-view .pv-scroll"), rectFor(b), 40);
  }

  function select(b, from) {
    if (selected !== null) mark(selected, false, "selected");
    selected = b;
    mark(b, true, "selected");
    if (from === "box") showText(b);
    else showBox(b);
  }

  document.addEventListener("mouseover", (event) => {
    const rect = event.target.closest?.("#page-view rect[data-b]");
    if (rect) {
      mark(rect.dataset.b, true);
      showText(rect.dataset.b);
      return;
    }
    const block = event.target.closest?.("#text-view .blk");
    if (block) mark(blockIndex(block), true);
  });

  document.addEventListener("mouseout", (event) => {
    const rect = event.target.closest?.("#page-view rect[data-b]");
    if (rect) return mark(rect.dataset.b, false);
    const block = event.target.closest?.("#text-view .blk");
    if (block) mark(blockIndex(block), false);
  });

  document.addEventListener("click", (event) => {
    const rect = event.target.closest?.("#page-view rect[data-b]");
    if (rect) return select(rect.dataset.b, "box");
    const block = event.target.closest?.("#text-view .blk");
    if (block && !window.getSelection()?.toString()) return select(blockIndex(block), "text");
    const zoomButton = event.target.closest?.("#page-view [data-zoom]");
    if (zoomButton) {
      zoom = zoomButton.dataset.zoom;
      localStorage.setItem(ZOOM_KEY, zoom);
      return applyZoom();
    }
    const thumb = event.target.closest?.("#page-view [data-goto]");
    if (thumb) return goTo(thumb.dataset.goto);
  });

  function goTo(target) {
    const box = document.querySelector("#goto-page textarea, #goto-page input");
    if (!box) return;
    box.value = `${target}:${Date.now()}`;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // ← / → turn pages unless the user is typing or choosing something
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const active = document.activeElement;
    if (active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName))) return;
    if (active?.closest?.("[role=listbox], [role=combobox], .cm-editor")) return;
    const button = document.getElementById(event.key === "ArrowLeft" ? "prev-page" : "next-page");
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });

  function applyZoom() {
    const view = pageView();
    if (!view) return;
    const scroller = view.querySelector(".pv-scroll");
    const stage = view.querySelector(".pv-stage");
    if (!scroller || !stage) return;
    const w = Number(view.dataset.w), h = Number(view.dataset.h);
    const room = scroller.clientWidth - 2;
    let width = room;
    if (zoom === "page") width = Math.min(room, ((scroller.clientHeight - 2) * w) / h);
    if (zoom === "actual") width = w;
    stage.style.width = `${Math.max(80, Math.round(width))}px`;
    view.querySelectorAll("[data-zoom]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.zoom === zoom)));
  }

  // drag to pan when the page is larger than its frame
  let drag = null;
  document.addEventListener("pointerdown", (event) => {
    const scroller = event.target.closest?.("#page-view .pv-scroll");
    if (!scroller || event.button !== 0) return;
    if (scroller.scrollHeight <= scroller.clientHeight && scroller.scrollWidth <= scroller.clientWidth) return;
    drag = { scroller, x: event.clientX, y: event.clientY, left: scroller.scrollLeft, top: scroller.scrollTop, moved: false };
  });
  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    drag.scroller.scrollLeft = drag.left - dx;
    drag.scroller.scrollTop = drag.top - dy;
  });
  document.addEventListener("pointerup", () => { drag = null; });

  // after every page turn: zoom as chosen, the current thumbnail in view, the selection reset
  function refreshed() {
    selected = null;
    applyZoom();
    const current = document.querySelector("#page-view .pv-thumb.current");
    const strip = current?.parentElement;
    if (current && strip) strip.scrollLeft = current.offsetLeft - strip.clientWidth / 2 + current.clientWidth / 2;
  }

  // a job's first page: bring the result into view (the inputs above may fill a small screen)
  function showResult() {
    const bar = document.getElementById("action-bar");
    const view = document.getElementById("page-view");
    if (!bar || !view) return;
    const top = view.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.45) bar.scrollIntoView({ block: "start" });
  }

  let lastPage = null;
  let lastJob = null;
  const observer = new MutationObserver(() => {
    const view = pageView();
    const key = view ? `${view.dataset.job}/${view.dataset.doc}/${view.dataset.page}` : null;
    if (key !== lastPage) {
      lastPage = key;
      refreshed();
      if (view?.dataset.job && view.dataset.job !== lastJob) {
        lastJob = view.dataset.job;
        setTimeout(showResult, 50);
      }
    }
  });
  window.addEventListener("resize", applyZoom);

  function start() {
    observer.observe(document.body, { childList: true, subtree: true });
    refreshed();
    // narrow screens: the sidebar starts closed so it does not cover the studio
    if (window.innerWidth < 900) {
      const close = () => {
        const sidebar = document.querySelector(".sidebar.open, #sidebar.open");
        const toggle = sidebar?.querySelector(".toggle-button") || sidebar?.parentElement?.querySelector(".toggle-button");
        if (sidebar && toggle) toggle.click();
        return Boolean(sidebar);
      };
      let tries = 0;
      const timer = setInterval(() => { if (close() || ++tries > 40) clearInterval(timer); }, 100);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
