// Mark a section read when the student reaches its end, as the "Mark as read" button does.
// A page that fits the window without scrolling is not taken as read: the button stays.
const end = document.getElementById("section-end");
const form = document.getElementById("mark-read");
if (end && form && "IntersectionObserver" in window) {
  const token = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((entry) => entry.isIntersecting) || window.scrollY === 0) return;
    observer.disconnect();
    try {
      const response = await fetch(end.dataset.markRead, {
        method: "POST",
        headers: { "X-CSRFToken": token, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return; // the button still works
      const done = document.createElement("p");
      done.className = "badge ok";
      done.setAttribute("role", "status");
      done.textContent = "Marked as read: you reached the end of this section.";
      form.replaceWith(done);
    } catch {
      // Offline or the server is away: leave the button for the student to use.
    }
  });
  observer.observe(end);
}
