// Quiz pages. Saves each answer as the student goes, counts down a timed test, and fills in
// results while the grader or an instructor is still at work. Without it, the page's buttons
// do the same through ordinary form posts.
(function () {
  "use strict";

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  // ---------------------------------------------------------------- autosave

  var form = document.getElementById("attempt-form");
  var saving = [];

  function fieldsOf(fieldset) {
    var data = new FormData();
    Array.prototype.forEach.call(fieldset.elements, function (el) {
      if (!el.name || el.disabled || el.type === "submit") return;
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) return;
      data.append(el.name, el.value);
    });
    return data;
  }

  function save(fieldset) {
    var n = fieldset.id.slice(1);
    var note = fieldset.querySelector("[data-saved-for]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    note.textContent = "Saving…";
    var request = fetch(fieldset.dataset.autosave, {
      method: "POST", body: fieldsOf(fieldset), credentials: "same-origin",
      headers: {"X-CSRFToken": token, "Accept": "application/json"}
    }).then(function (r) {
      return r.json().then(function (body) { return {status: r.status, body: body}; });
    }).then(function (res) {
      if (res.status === 409 && res.body.url) { window.location.assign(res.body.url); return; }
      if (res.status !== 200) { note.textContent = res.body.error || "Not saved. Try the Save answers button."; return; }
      note.textContent = res.body.message || "Saved.";
      var link = document.querySelector('[data-nav="' + n + '"]');
      if (link) {
        link.classList.toggle("answered", res.body.answered);
        link.querySelector(".state").textContent = res.body.answered ? " (answered)" : "";
      }
      var result = fieldset.querySelector("[data-result]");
      if (result && res.body.changed) result.remove();  // feedback on the old answer no longer applies
    }).catch(function () {
      note.textContent = "Not saved: the connection dropped. Your answer is still here; press Save answers when you are back online.";
    });
    saving.push(request);
    return request;
  }

  if (form) {
    var timers = {};
    form.querySelectorAll("fieldset[data-autosave]").forEach(function (fieldset) {
      fieldset.addEventListener("change", function () {
        clearTimeout(timers[fieldset.id]);
        save(fieldset);
      });
      fieldset.addEventListener("input", function (event) {
        if (event.target.tagName !== "TEXTAREA" && event.target.type !== "text") return;
        clearTimeout(timers[fieldset.id]);
        timers[fieldset.id] = setTimeout(function () { save(fieldset); }, 800);
      });
    });
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (button && button.dataset.confirm && !form.dataset.timeUp && !window.confirm(button.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  // ---------------------------------------------------------------- the clock of a timed test

  var clock = document.getElementById("time-left");
  if (clock && form) {
    var skew = Date.parse(clock.dataset.now) - Date.now();  // trust the server's clock, not the laptop's
    var deadline = Date.parse(clock.dataset.deadline);
    var ticker = setInterval(tick, 1000);
    tick();
  }

  function tick() {
    var left = Math.max(0, Math.round((deadline - (Date.now() + skew)) / 1000));
    clock.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) + " left";
    clock.classList.toggle("low", left < 60);
    if (left > 0) return;
    clearInterval(ticker);
    clock.textContent = "Time is up: handing in your answers…";
    form.dataset.timeUp = "1";
    Promise.all(saving).finally(function () {
      form.requestSubmit(form.querySelector('button[value="submit"]'));
    });
  }

  // ---------------------------------------------------------------- results that are still coming

  var results = document.getElementById("results") || form;
  function waitingStatus() {
    if (!results) return null;
    if (results.querySelector('[data-result][data-status="pending"]')) return "pending";
    // A review the student asked for: the instructor's decision replaces it when it comes.
    if (results.querySelector('[data-result][data-status="review"], [data-result][data-status="requested"]')) return "review";
    return null;
  }

  function follow() {
    var waiting = waitingStatus();
    if (!waiting) return;
    // Every 2 s while the grader works; an instructor's review can take days, so ask less often.
    setTimeout(function () {
      // What the page shows already: the server renders only the blocks whose status changed.
      var known = Array.prototype.map.call(results.querySelectorAll("[data-result]"), function (node) {
        return node.dataset.result + ":" + node.dataset.status;
      }).join(",");
      var url = results.dataset.statusUrl;
      getJSON(url + (url.indexOf("?") < 0 ? "?" : "&") + "known=" + encodeURIComponent(known)).then(function (data) {
        data.answers.forEach(function (a) {
          var node = results.querySelector('[data-result="' + a.n + '"]');
          if (node && a.html && node.dataset.status !== a.status) node.outerHTML = a.html;
        });
        if (data.score_text !== undefined) {
          document.getElementById("attempt-score").textContent = data.score_text;
          document.getElementById("attempt-right").textContent = data.right;
        }
        var note = document.getElementById("grading-status");
        if (note && !data.pending && !data.review) note.hidden = true;
        follow();
      }).catch(function () { setTimeout(follow, 10000); });
    }, waiting === "pending" ? 2000 : 30000);
  }
  follow();
})();
