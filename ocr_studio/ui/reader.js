// OCR Studio's reader in the browser: layout boxes and text linked both ways, zoom and pan,
// ← / → to turn pages, page thumbnails, a sidebar that stays out of the way on a laptop, and the
// open page kept across a language switch.
// Everything is event delegation on the document, so it survives Gradio re-rendering the
// page view and the text pane on every page turn. The server sends inert HTML; this adds
// behaviour only, never content from a document.
(() => {
  if (window.ocrStudioReader) return;
  window.ocrStudioReader = true;

  const ZOOM_KEY = "ocr-studio-zoom";
  const SIDEBAR_KEY = "ocr-studio-sidebar"; // "open" / "closed", once the user toggled it
  const REOPEN_KEY = "ocr-studio-reopen"; // "job:document:page" kept over a language switch's reload
  const NARROW = 900; // a phone: the sidebar covers the screen, so it opens only when asked
  const WIDE = 1600; // a large screen: room for the sidebar beside the page and its text
  // zoom: "width", "page" or a scale (screen pixels per image pixel), kept across pages and reloads
  const STEPS = [0.25, 0.33, 0.5, 0.67, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4];
  const readZoom = (value) => (value === "width" || value === "page" ? value : Number(value) > 0 ? Number(value) : "width");
  let zoom = readZoom(localStorage.getItem(ZOOM_KEY));
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
      const mode = zoomButton.dataset.zoom;
      if (mode === "in" || mode === "out") return stepZoom(mode === "in" ? 1 : -1);
      return setZoom(mode === "actual" ? 1 : mode);
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
    if (typeof zoom === "number") width = w * zoom;
    stage.style.width = `${Math.max(80, Math.round(width))}px`;
    const pressed = zoom === 1 ? "actual" : zoom;
    view.querySelectorAll("[data-zoom]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.zoom === pressed)));
  }

  // the scale on screen now (screen pixels per image pixel), whatever the mode
  function currentScale() {
    const view = pageView();
    const stage = view?.querySelector(".pv-stage");
    return stage ? stage.getBoundingClientRect().width / Number(view.dataset.w || 1) : 1;
  }

  // a new zoom, keeping the point at (x, y) on screen (the pointer, or the frame's centre) in place
  function setZoom(value, x, y) {
    const scroller = pageView()?.querySelector(".pv-scroll");
    const stage = scroller?.querySelector(".pv-stage");
    let anchor = null;
    if (scroller && stage) {
      const frame = scroller.getBoundingClientRect();
      const box = stage.getBoundingClientRect();
      const px = x ?? frame.left + frame.width / 2, py = y ?? frame.top + frame.height / 2;
      anchor = { px, py, fx: (px - box.left) / box.width, fy: (py - box.top) / box.height };
    }
    zoom = typeof value === "number" ? Math.min(STEPS.at(-1), Math.max(STEPS[0], value)) : value;
    localStorage.setItem(ZOOM_KEY, String(zoom));
    applyZoom();
    if (anchor) {
      const box = stage.getBoundingClientRect();
      scroller.scrollLeft += box.left + anchor.fx * box.width - anchor.px;
      scroller.scrollTop += box.top + anchor.fy * box.height - anchor.py;
    }
  }

  function stepZoom(direction, x, y) {
    const now = currentScale();
    const next = direction > 0 ? STEPS.find((s) => s > now * 1.02) : [...STEPS].reverse().find((s) => s < now / 1.02);
    setZoom(next ?? (direction > 0 ? STEPS.at(-1) : STEPS[0]), x, y);
  }

  // Ctrl + wheel (and a touchpad's pinch, which the browser sends as one) zooms the page, not the tab
  document.addEventListener(
    "wheel",
    (event) => {
      const scroller = event.target.closest?.("#page-view .pv-scroll");
      if (!scroller || !(event.ctrlKey || event.metaKey)) return;
      event.preventDefault();
      const factor = Math.exp(-Math.max(-100, Math.min(100, event.deltaY)) * 0.01);
      setZoom(currentScale() * factor, event.clientX, event.clientY);
    },
    { passive: false },
  );

  // two fingers on a touch screen: pinch to zoom the page
  let pinch = null;
  const spread = (touches) => Math.hypot(touches[0].clientX - touches[1].clientX, touches[0].clientY - touches[1].clientY);
  document.addEventListener(
    "touchstart",
    (event) => {
      if (event.touches.length !== 2 || !event.target.closest?.("#page-view .pv-scroll")) return;
      pinch = { distance: spread(event.touches), scale: currentScale() };
    },
    { passive: true },
  );
  document.addEventListener(
    "touchmove",
    (event) => {
      if (!pinch || event.touches.length !== 2) return;
      event.preventDefault();
      const [a, b] = event.touches;
      setZoom((pinch.scale * spread(event.touches)) / pinch.distance, (a.clientX + b.clientX) / 2, (a.clientY + b.clientY) / 2);
    },
    { passive: false },
  );
  document.addEventListener("touchend", (event) => { if (event.touches.length < 2) pinch = null; });

  // drag to pan when the page is larger than its frame
  let drag = null;
  document.addEventListener("pointerdown", (event) => {
    const scroller = event.target.closest?.("#page-view .pv-scroll");
    if (!scroller || event.button !== 0 || event.pointerType === "touch") return; // fingers scroll natively
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
    // the same page drawn again (a job's last news; Gradio patches the HTML in place): its zoom again
    if (view && !view.querySelector(".pv-stage")?.style.width) applyZoom();
    const key = view ? `${view.dataset.job}/${view.dataset.doc}/${view.dataset.page}` : null;
    if (key !== lastPage) {
      lastPage = key;
      refreshed();
      if (view?.dataset.job && view.dataset.job !== lastJob) {
        lastJob = view.dataset.job;
        if (window.innerWidth < NARROW) setSidebar(false); // a job picked in the full-screen sidebar
        setTimeout(showResult, 50);
      }
    }
  });
  window.addEventListener("resize", applyZoom);

  // the sidebar: Gradio's, drawn closed (app.py); open where there is room or where the user left it open
  const sidebarElement = () => document.querySelector("#sidebar") || document.querySelector(".sidebar");
  const sidebarToggle = (sidebar) =>
    sidebar?.querySelector(".toggle-button") || sidebar?.parentElement?.querySelector(".toggle-button");
  let settingSidebar = false;
  function setSidebar(open) {
    const sidebar = sidebarElement();
    const toggle = sidebarToggle(sidebar);
    if (!sidebar || !toggle) return false;
    const label = document.querySelector("#sidebar-toggle-label")?.textContent.trim();
    if (label) toggle.setAttribute("aria-label", label); // in the tab's language
    if (sidebar.classList.contains("open") !== open) {
      settingSidebar = true;
      toggle.click();
      settingSidebar = false;
    }
    return true;
  }
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest?.(".toggle-button");
    if (!toggle || settingSidebar || !event.isTrusted || window.innerWidth < NARROW) return;
    // remembered on a laptop; a phone's full-screen sidebar always starts closed
    setTimeout(() => localStorage.setItem(SIDEBAR_KEY, sidebarElement()?.classList.contains("open") ? "open" : "closed"), 0);
  });
  // a phone: the full-screen sidebar closes once a job is picked in it, so the job shows
  // (on pointerdown: Gradio takes the choice on mousedown and removes the list before the click)
  document.addEventListener("pointerdown", (event) => {
    if (window.innerWidth >= NARROW || !event.target.closest?.("#history [role=option]")) return;
    setTimeout(() => setSidebar(false), 300);
  });
  function sidebarAtStart() {
    const remembered = localStorage.getItem(SIDEBAR_KEY);
    if (window.innerWidth < NARROW) return false;
    return remembered ? remembered === "open" : window.innerWidth >= WIDE;
  }

  // a language switch reloads the tab: the page it showed opens again (app.py: Studio.reopen)
  function reopen() {
    const target = sessionStorage.getItem(REOPEN_KEY);
    if (!target) return true;
    const box = document.querySelector("#reopen-job textarea, #reopen-job input");
    if (!box || !document.querySelector("#run-button")) return false;
    sessionStorage.removeItem(REOPEN_KEY);
    box.value = target;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  function start() {
    observer.observe(document.body, { childList: true, subtree: true });
    refreshed();
    let tries = 0, sidebarDone = false, reopened = false;
    const timer = setInterval(() => {
      sidebarDone ||= setSidebar(sidebarAtStart());
      reopened ||= tries > 10 && reopen(); // after the page's first news (on load)
      if ((sidebarDone && reopened) || ++tries > 100) clearInterval(timer);
    }, 100);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
