// Escape hides an open term tooltip, as WCAG 1.4.13 asks; the next hover or focus shows it again.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll(".term-wrap:hover, .term-wrap:focus-within").forEach((wrap) => {
    wrap.classList.add("tip-dismissed");
  });
});
document.querySelectorAll(".term-wrap").forEach((wrap) => {
  const show = () => wrap.classList.remove("tip-dismissed");
  wrap.addEventListener("mouseenter", show);
  wrap.addEventListener("focusin", show);
});
