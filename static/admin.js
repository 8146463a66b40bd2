// Progressive enhancement for the console; every page works without it.
(function () {
  "use strict";
  // Copy buttons: <button data-copy="element-id" hidden>. Shown only when script runs.
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy"));
      if (!el) return;
      var text = "value" in el && el.value !== undefined ? el.value : el.textContent;
      var done = function () {
        var label = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text.trim()).then(done, function () {});
      } else if (el.select) {
        el.select();
        if (document.execCommand("copy")) done();
      }
    });
  });
  // A payload box that shows the chosen event type's example until the user edits it.
  document.querySelectorAll("textarea[data-examples-from]").forEach(function (box) {
    var select = document.getElementById(box.getAttribute("data-examples-from"));
    if (!select) return;
    var edited = box.value.trim() !== "";
    var fill = function () {
      if (edited) return;
      var opt = select.options[select.selectedIndex];
      var example = opt ? opt.getAttribute("data-example") : "";
      try { example = JSON.stringify(JSON.parse(example), null, 2); } catch (e) { /* as is */ }
      box.value = example || "";
    };
    box.addEventListener("input", function () { edited = true; });
    select.addEventListener("change", fill);
    fill();
  });
})();
