// Progressive enhancement of the intake screen; the page works fully without it.
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  if (!form) return;

  // Ctrl+Enter saves from anywhere; Enter in the find box looks the resident up.
  form.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      document.getElementById("save").click();
    }
  });

  // One submit per render: a double click sends the first request only (the server is
  // idempotent anyway through the intake key).
  form.addEventListener("submit", function (ev) {
    var btn = ev.submitter;
    if (btn && btn.value === "save") {
      if (form.dataset.sent === "1") { ev.preventDefault(); return; }
      form.dataset.sent = "1";
    }
  });

  // Region picker: search by name, code or pinyin initials, then choose in the select.
  var search = document.getElementById("region-search");
  var select = form.querySelector("select[name=region]");
  if (search && select && window.fetch) {
    search.hidden = false;
    var list = document.createElement("ul");
    list.id = "region-results";
    list.setAttribute("role", "listbox");
    search.insertAdjacentElement("afterend", list);
    var timer = null;
    var pick = function (id) {
      select.value = String(id);
      list.innerHTML = "";
      select.focus();
    };
    search.addEventListener("input", function () {
      clearTimeout(timer);
      var q = search.value.trim();
      if (!q) { list.innerHTML = ""; return; }
      timer = setTimeout(function () {
        fetch(search.dataset.url + "?q=" + encodeURIComponent(q), {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            list.innerHTML = "";
            data.results.forEach(function (row, i) {
              var li = document.createElement("li");
              li.textContent = row.name + " (" + row.code + ", " + row.level + ")";
              li.dataset.id = row.id;
              li.setAttribute("role", "option");
              if (i === 0) li.setAttribute("aria-selected", "true");
              li.addEventListener("click", function () { pick(row.id); });
              list.appendChild(li);
            });
          });
      }, 150);
    });
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        var first = list.querySelector("li[aria-selected=true]");
        if (first) pick(first.dataset.id);
      }
    });
  }
})();
