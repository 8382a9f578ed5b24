// The search box's matches in the browser: a click hands "job:document:page:block" to the server
// (a hidden textbox, as the page thumbnails do), which shows that page with the match's box marked
// (class "found"); here the marked box and its text are brought into view. Event delegation on the
// document, so it survives Gradio re-rendering the matches and the reader.
(() => {
  if (window.ocrStudioSearch) return;
  window.ocrStudioSearch = true;

  document.addEventListener("click", (event) => {
    const hit = event.target.closest?.("#search-results [data-hit]");
    if (!hit) return;
    const box = document.querySelector("#search-open textarea, #search-open input");
    if (!box) return;
    document.querySelectorAll("#search-results .sh-hit.current").forEach((b) => b.classList.remove("current"));
    hit.classList.add("current");
    box.value = `${hit.dataset.hit}:${Date.now()}`;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  function into(container, element) {
    if (!container || !element) return;
    const box = container.getBoundingClientRect();
    const target = element.getBoundingClientRect();
    if (target.top < box.top || target.bottom > box.bottom) {
      container.scrollTop += target.top - box.top - Math.max(24, (box.height - target.height) / 3);
    }
    if (target.left < box.left || target.right > box.right) container.scrollLeft += target.left - box.left - 24;
  }

  let shown = null;
  const observer = new MutationObserver(() => {
    const view = document.querySelector("#page-view .pv");
    const rect = view?.querySelector("rect.found");
    if (!rect) {
      shown = null;
      return;
    }
    const key = `${view.dataset.job}/${view.dataset.doc}/${view.dataset.page}/${rect.dataset.b}`;
    if (key === shown) return;
    shown = key;
    requestAnimationFrame(() => {
      into(view.querySelector(".pv-scroll"), rect);
      document.querySelector("#text-view .blk.found")?.scrollIntoView({ block: "nearest" });
    });
  });
  const start = () => observer.observe(document.body, { childList: true, subtree: true });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
