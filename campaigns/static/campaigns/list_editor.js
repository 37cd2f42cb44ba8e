// The list editor widget (campaigns.forms.ListEditor): "Add" appends an empty box. Delegated
// from the document, so inline rows added later work too.
(function () {
  "use strict";
  function reveal() {
    document.querySelectorAll(".vs-list-editor .vs-list-add").forEach(function (b) { b.style.display = ""; });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".vs-list-editor .vs-list-add");
    if (!button) return;
    var list = button.parentNode.querySelector("ul");
    var last = list.querySelector("li:last-child");
    var item = last.cloneNode(true);
    var input = item.querySelector("input");
    input.value = "";
    list.appendChild(item);
    input.focus();
  });
  document.addEventListener("DOMContentLoaded", reveal);
  document.addEventListener("formset:added", reveal);
})();
