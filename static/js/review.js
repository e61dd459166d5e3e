// The review queue: "Select all" ticks every row in place (without this script the link
// reloads the page with every row ticked), and a count says how many are selected.
(function () {
  "use strict";

  var form = document.getElementById("bulk-review");
  if (!form) return;
  var toggle = form.querySelector("[data-select]");
  var count = form.querySelector("[data-selected-count]");
  var boxes = document.querySelectorAll('input[type=checkbox][form="bulk-review"]');

  function ticked() {
    return Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
  }

  function update() {
    var n = ticked();
    count.textContent = n ? n + " of " + boxes.length + " selected." : "";
    var all = n === boxes.length;
    toggle.textContent = all ? "Clear selection" : "Select all";
    toggle.setAttribute("data-select", all ? "none" : "all");
  }

  toggle.addEventListener("click", function (event) {
    event.preventDefault();
    var on = toggle.getAttribute("data-select") === "all";
    Array.prototype.forEach.call(boxes, function (b) { b.checked = on; });
    update();
  });
  Array.prototype.forEach.call(boxes, function (b) { b.addEventListener("change", update); });

  form.addEventListener("submit", function (event) {
    if (!ticked()) {
      event.preventDefault();
      count.textContent = "Select at least one answer first.";
    }
  });
  update();
})();
