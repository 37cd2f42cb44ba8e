// A question's form shows only the settings of its kind (campaigns.forms.QuestionFieldsForm
// writes which in the kind select's data-kind-fields). On the campaign page's inline each
// question is one fieldset; on the question page, the whole form.
(function () {
  "use strict";
  var SETTINGS = ["min_value", "max_value", "valid_answers", "max_digits"];

  function container(select) {
    return select.closest(".inline-related") || select.closest("form");
  }

  function apply(select) {
    var used = JSON.parse(select.dataset.kindFields || "{}")[select.value] || [];
    var box = container(select);
    SETTINGS.forEach(function (name) {
      box.querySelectorAll(".fieldBox.field-" + name).forEach(function (el) {
        el.style.display = used.indexOf(name) < 0 ? "none" : "";
      });
    });
    // A row holding only settings of other kinds disappears with them.
    box.querySelectorAll(".form-row").forEach(function (row) {
      var names = Array.prototype.filter.call(row.classList, function (c) {
        return c.indexOf("field-") === 0;
      }).map(function (c) { return c.slice(6); });
      if (!names.length || names.some(function (n) { return SETTINGS.indexOf(n) < 0; })) return;
      row.style.display = names.some(function (n) { return used.indexOf(n) >= 0; }) ? "" : "none";
    });
  }

  function applyAll() {
    document.querySelectorAll("select[data-kind-fields]").forEach(function (select) {
      if (select.name.indexOf("__prefix__") < 0) apply(select);
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-kind-fields]")) apply(event.target);
  });
  document.addEventListener("DOMContentLoaded", applyAll);
  document.addEventListener("formset:added", applyAll);
})();
