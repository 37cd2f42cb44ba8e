// The booking form's repetition (calls.booking.forms): show the days only for a weekly call,
// the last day or the number of calls only for that end, and the rule the choices make (the
// server writes the same rule with calls.booking.recurrence.build_rrule when it saves).
(function () {
  "use strict";
  var DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

  function $(selector) { return document.querySelector(selector); }
  function row(name) { return $(".form-row.field-" + name); }
  function show(name, visible) { var r = row(name); if (r) r.style.display = visible ? "" : "none"; }

  function rule() {
    var repeat = $("#id_repeat");
    if (!repeat) return null;
    if (repeat.value === "keep") return null;  // a rule set through the API, kept as it is
    if (!repeat.value) return "";
    var parts = ["FREQ=" + repeat.value];
    var interval = parseInt(($("#id_interval") || {}).value, 10);
    if (interval > 1) parts.push("INTERVAL=" + interval);
    if (repeat.value === "WEEKLY") {
      var days = Array.prototype.map.call(
        document.querySelectorAll("input[name=days]:checked"),
        function (box) { return DAYS[parseInt(box.value, 10)]; }
      );
      if (days.length) parts.push("BYDAY=" + days.join(","));
    }
    var ends = (document.querySelector("input[name=ends]:checked") || {}).value;
    var until = ($("#id_until") || {}).value;
    var count = ($("#id_count") || {}).value;
    if (ends === "until" && until) parts.push("UNTIL=" + until.replace(/-/g, "") + "T235959");
    if (ends === "count" && count) parts.push("COUNT=" + count);
    return parts.join(";");
  }

  function update() {
    var repeat = $("#id_repeat");
    if (!repeat) return;
    var repeating = repeat.value !== "" && repeat.value !== "keep";
    var ends = (document.querySelector("input[name=ends]:checked") || {}).value;
    show("interval", repeating);
    show("days", repeat.value === "WEEKLY");
    show("ends", repeating);
    show("until", repeating && ends === "until");
    show("count", repeating && ends === "count");
    var preview = $("#rrule-preview");
    var text = rule();
    if (!preview) return;
    preview.textContent = text === null ? preview.dataset.stored : text || preview.dataset.none;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = $("#scheduledcall_form");
    if (!form) return;
    form.addEventListener("change", update);
    form.addEventListener("input", update);
    update();
  });
})();
