// Filter the glossary as the student types. Without JavaScript the form's ?q= does the same
// on the server, matching the same text (courses.selectors.term_search_text).
const input = document.getElementById("glossary-q");
if (input) {
  const entries = [...document.querySelectorAll("#glossary-list .entry")];
  const groups = [...document.querySelectorAll("#glossary-list .letter-group")];
  const count = document.getElementById("glossary-count");
  const empty = document.getElementById("glossary-empty");
  document.querySelectorAll("[data-no-js]").forEach((el) => { el.hidden = true; });

  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const entry of entries) {
      const hit = words.every((word) => entry.dataset.search.includes(word));
      entry.hidden = !hit;
      if (hit) shown += 1;
    }
    for (const group of groups) {
      group.hidden = !group.querySelector(".entry:not([hidden])");
      const link = document.querySelector(`.letters [data-letter="${group.dataset.letter}"]`);
      if (link) link.hidden = group.hidden;
    }
    count.textContent = words.length
      ? `${shown} of ${entries.length} terms match “${input.value.trim()}”.`
      : `${entries.length} terms.`;
    empty.hidden = shown > 0 || entries.length === 0;
    const url = new URL(window.location.href);
    if (words.length) url.searchParams.set("q", input.value.trim());
    else url.searchParams.delete("q");
    window.history.replaceState(null, "", url);
  };
  input.addEventListener("input", apply);
  input.closest("form").addEventListener("submit", (event) => event.preventDefault());
}
