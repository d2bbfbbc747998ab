// LeadLedger web app: small behaviours htmx does not cover. No framework, no build step, no inline script.
(function () {
  "use strict";

  function flash(kind, message) {
    var area = document.getElementById("flash");
    if (!area) return;
    var p = document.createElement("p");
    p.className = "flash flash-" + kind;
    if (kind === "error") p.setAttribute("role", "alert");
    p.textContent = message + " ";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link dismiss";
    close.setAttribute("data-dismiss", "");
    close.textContent = "Dismiss";
    p.appendChild(close);
    area.replaceChildren(p);
  }

  function closePops(except) {
    document.querySelectorAll(".pop").forEach(function (pop) {
      if (pop === except || !pop.firstElementChild) return;
      pop.replaceChildren();
      var button = document.querySelector('[aria-controls="' + pop.id + '"]');
      if (button) button.setAttribute("aria-expanded", "false");
    });
  }

  function updateSelected() {
    var count = document.querySelectorAll('input[name="lead"][form="bulk"]:checked').length;
    document.querySelectorAll("[data-selected-count]").forEach(function (el) {
      el.textContent = count + " selected";
    });
  }

  document.addEventListener("flash", function (event) {
    flash(event.detail.kind || "ok", event.detail.message || "");
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("button, a, input");
    if (!target) {
      if (!event.target.closest(".pop")) closePops(null);
      return;
    }
    if (target.matches(".change")) {
      var pop = document.getElementById(target.getAttribute("aria-controls"));
      closePops(pop);
      target.setAttribute("aria-expanded", "true");
    } else if (target.matches("[data-close-pop]")) {
      var holder = target.closest(".pop");
      if (holder) {
        var opener = document.querySelector('[aria-controls="' + holder.id + '"]');
        holder.replaceChildren();
        if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); }
      }
    } else if (target.matches("[data-dismiss]")) {
      target.closest(".flash").remove();
    } else if (target.matches("[data-clear]")) {
      target.closest("section").remove();
    } else if (target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="lead"][form="bulk"]').forEach(function (box) {
        box.checked = target.checked;
      });
      updateSelected();
    } else if (target.matches('input[name="lead"]')) {
      updateSelected();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]") && event.target.value) event.target.form.submit();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = document.activeElement && document.activeElement.closest(".pop");
      closePops(null);
      if (open) {
        var opener = document.querySelector('[aria-controls="' + open.id + '"]');
        if (opener) opener.focus();
      }
    }
  });

  // a change form once sent does not ask its preview again: saving blurs the last field, whose change would
  // ask for a dry run 150 ms later, and after a move that routed the lead away it came back "Not found" over
  // the move's own message. A refused form comes back as a new form, which previews as usual.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail.elt;
    if (!el || !el.matches) return;
    if (el.matches("form.change-form")) el.setAttribute("data-sent", "");
    else if (el.matches(".preview-area") && el.closest("form[data-sent]")) event.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var el = event.detail.elt;
    if (el && el.matches && el.matches("form.change-form") && !event.detail.successful) el.removeAttribute("data-sent");
  });

  // after a fragment arrives: move the focus into a pop-up that opened, or back to the row that changed. Not
  // when the user is already in the pop-up: the settle comes 20 ms after the swap, and a rep who had clicked
  // into a field by then would go on typing into the first one.
  document.addEventListener("htmx:afterSettle", function (event) {
    var el = event.detail.elt;
    if (!el || !el.matches) return;
    if (el.matches(".pop") && el.firstElementChild && !el.contains(document.activeElement)) {
      var first = el.querySelector("[aria-invalid=true], select, input:not([type=hidden]), button");
      if (first) first.focus();
    } else if (el.matches("tr[data-lead]")) {
      var button = el.querySelector(".change") || el.querySelector("a");
      if (button && (!document.activeElement || document.activeElement === document.body)) button.focus();
    }
    var focus = document.querySelector("[data-focus]");
    if (focus) { focus.removeAttribute("data-focus"); focus.focus(); }
    updateSelected();
  });

  // the board: drag a card to a column the model allows for it; a move that needs data opens its form on the card
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".card[draggable=true]");
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-lead"));
    var allowed = (card.getAttribute("data-targets") || "").split(" ");
    document.querySelectorAll(".lane").forEach(function (lane) {
      lane.classList.add(allowed.indexOf(lane.getAttribute("data-status")) >= 0 ? "can-drop" : "no-drop");
    });
  });
  document.addEventListener("dragend", function () {
    dragged = null;
    document.querySelectorAll(".lane").forEach(function (lane) { lane.classList.remove("can-drop", "no-drop", "over"); });
  });
  document.addEventListener("dragover", function (event) {
    var lane = event.target.closest && event.target.closest(".lane.can-drop");
    if (!lane || !dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".lane.over").forEach(function (l) { if (l !== lane) l.classList.remove("over"); });
    lane.classList.add("over");
  });
  document.addEventListener("drop", function (event) {
    var lane = event.target.closest && event.target.closest(".lane.can-drop");
    if (!lane || !dragged) return;
    event.preventDefault();
    var card = dragged;
    var id = card.getAttribute("data-lead");
    var status = lane.getAttribute("data-status");
    var pop = "#pop-" + CSS.escape(id);
    var needsForm = (card.getAttribute("data-forms") || "").split(" ").indexOf(status) >= 0;
    var headers = { "X-CSRF-Token": csrf() };
    if (needsForm) {
      htmx.ajax("GET", "/leads/" + encodeURIComponent(id) + "/change/" + encodeURIComponent(status) + "?context=board",
        { target: pop, swap: "innerHTML", headers: headers });
    } else {
      htmx.ajax("POST", "/leads/" + encodeURIComponent(id) + "/status",
        { target: pop, swap: "innerHTML", values: { status: status, context: "board" }, headers: headers });
    }
  });
  document.addEventListener("board-refresh", function () {
    var board = document.getElementById("board");
    if (board) htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#board", select: "#board", swap: "outerHTML", headers: { "HX-Target": "board" } });
  });

  // live updates: the server says which leads changed; each part of the page showing one reloads itself
  function live() {
    if (document.body.getAttribute("data-live") !== "on" || !window.EventSource || !window.htmx) return;
    var source = new EventSource("/live");
    source.addEventListener("leads", function (event) {
      event.data.split(" ").forEach(function (id) {
        document.querySelectorAll('[data-lead="' + CSS.escape(id) + '"][data-refresh]').forEach(function (el) {
          if (el.querySelector(".pop > *") || el.contains(document.activeElement) && document.activeElement.matches("input, select, textarea")) return;
          htmx.ajax("GET", el.getAttribute("data-refresh"), { target: el, swap: "outerHTML" });
        });
      });
      document.dispatchEvent(new CustomEvent("leadledger:changed", { detail: event.data }));
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", live);
  else live();
})();
