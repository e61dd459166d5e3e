// Keys for the review page: Space shows the answer, 1 to 4 rate once it shows. The page
// works without them: the summary and the buttons are ordinary focusable controls.
const reveal = document.getElementById("reveal");
if (reveal) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return; // typing in the search box
    if (!reveal.open) {
      // On a focused summary, button or link, Space already does its own thing.
      if (event.key === " " && !event.target.closest("summary, button, a")) {
        event.preventDefault();
        reveal.open = true;
      }
      return;
    }
    const button = reveal.querySelector(`button[data-key="${event.key}"]`);
    if (button) {
      event.preventDefault();
      button.click();
    }
  });
  // One rating per card. Disable after the form data is built: a disabled submitter is left out.
  reveal.querySelector("form").addEventListener("submit", (event) => {
    setTimeout(() => event.target.querySelectorAll("button").forEach((b) => { b.disabled = true; }), 0);
  });
}
