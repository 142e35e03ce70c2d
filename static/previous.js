/* The previous visit beside each field of the encounter form: moves each line of
 * #previous-visit under its input and shows the change from the previous value as the user
 * types (a decimal comma is read as a point). No network, nothing saved. */
(function () {
  "use strict";

  function parse(text) {
    var value = parseFloat(String(text).trim().replace(",", "."));
    return isNaN(value) ? null : value;
  }

  var comma = ["es", "pt"].indexOf(document.documentElement.lang) >= 0;

  function wire(line) {
    var name = line.getAttribute("data-previous-for");
    var input = document.getElementById(name);
    if (!input) { return; }
    var field = input.closest(".field");
    if (field) { field.appendChild(line); }
    var before = parse(line.getAttribute("data-previous-value"));
    var box = line.querySelector(".previous-change");
    var delta = line.querySelector(".delta");
    if (before === null || !box || !delta) { return; }
    function update() {
      var now = parse(input.value);
      if (now === null) { box.hidden = true; return; }
      var change = now - before;
      var digits = line.getAttribute("data-unit") === "mm" ? 0 : 1;
      var text = (change >= 0 ? "+" : "") + change.toFixed(digits);
      delta.textContent = comma ? text.replace(".", ",") : text;
      box.hidden = false;
    }
    input.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#previous-visit [data-previous-for]").forEach(wire);
  });
})();
