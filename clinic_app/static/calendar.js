/* The staff calendar, progressively enhanced (templates/staff/calendar.html).
 *
 * Without this script the grid already works: every free time is a link to the booking form,
 * every booking a link to its page. With it, a booking can be dragged onto a free time: the
 * move is sent to the server (POST .../move, the same rules as every reschedule); on success
 * the page reloads to show the new state, on refusal the block stays where it was (it "snaps
 * back") and the server's message is shown in the status line. No inline script or style is
 * used (the page's CSP forbids them); the URLs and the CSRF token come from data-* attributes.
 */
(function () {
  "use strict";

  function init() {
    var grid = document.querySelector(".cal[data-move-url]");
    if (!grid) { return; }
    var status = document.getElementById("cal-status");
    var moveUrl = grid.getAttribute("data-move-url");
    var csrf = grid.getAttribute("data-csrf");
    var dragged = null;

    function say(message, kind) {
      if (!status) { return; }
      status.textContent = message;
      status.className = "cal-status " + (kind || "");
    }

    function clearTargets() {
      grid.querySelectorAll(".drop-target").forEach(function (el) {
        el.classList.remove("drop-target");
      });
    }

    grid.addEventListener("dragstart", function (event) {
      var block = event.target.closest ? event.target.closest(".cal-booking") : null;
      if (!block) { return; }
      dragged = block;
      block.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", block.getAttribute("data-booking-id"));
    });

    grid.addEventListener("dragend", function () {
      if (dragged) { dragged.classList.remove("dragging"); }
      clearTargets();
    });

    grid.addEventListener("dragover", function (event) {
      var slot = event.target.closest ? event.target.closest(".cal-slot") : null;
      if (!slot || !dragged) { return; }
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      clearTargets();
      slot.classList.add("drop-target");
    });

    grid.addEventListener("drop", function (event) {
      var slot = event.target.closest ? event.target.closest(".cal-slot") : null;
      if (!slot || !dragged) { return; }
      event.preventDefault();
      var block = dragged;
      dragged = null;
      block.classList.remove("dragging");
      clearTargets();
      move(block, slot);
    });

    function move(block, slot) {
      var id = block.getAttribute("data-booking-id");
      var url = moveUrl.replace(/\/0\/move$/, "/" + id + "/move");
      var body = { start: slot.getAttribute("data-start") };
      var therapist = parseInt(slot.getAttribute("data-therapist"), 10);
      if (therapist && String(therapist) !== block.getAttribute("data-therapist")) {
        body.therapist_id = therapist;
      }
      say("Moving…", "");
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf,
                   "Accept": "application/json" },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok) {
            say(data.message || "Booking moved.", "ok");
            window.location.reload();
          } else {
            var message = (data.error && data.error.message) || "That move was refused.";
            say("Not moved: " + message, "error");
            block.focus();
          }
        });
      }).catch(function () {
        say("Not moved: the server could not be reached.", "error");
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
