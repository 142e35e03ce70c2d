/* Contigo's only script: progressive enhancements over pages that work without it.
 *  - live classification preview on the encounter form (POST, CSRF header, nothing saved);
 *  - print buttons;
 *  - leave personal data off the screen once the server's idle lock has fired.
 * No libraries, no external requests, no inline handlers (the CSP allows 'self' scripts only).
 */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* Idle lock: the server locks after IDLE seconds without a request. When that time has
     passed on this page, reload it so that the unlock page replaces whatever was shown. */
  var idleTimer = null;
  function armIdle() {
    var seconds = parseFloat(document.body.getAttribute("data-idle-seconds") || "0");
    if (!seconds || !document.body.hasAttribute("data-signed-in")) { return; }
    if (idleTimer) { window.clearTimeout(idleTimer); }
    idleTimer = window.setTimeout(function () {
      window.location.assign(window.location.pathname);
    }, (seconds + 2) * 1000);
  }

  /* Typing is activity: while a person is filling in a form, tell the server (at most every
     30 s) so the laptop does not lock under their hands and lose what they typed. A truly idle
     laptop still locks. */
  var lastPing = Date.now();
  function keepAlive() {
    if (!document.body.hasAttribute("data-signed-in") || Date.now() - lastPing < 30000) { return; }
    lastPing = Date.now();
    window.fetch("/keepalive", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrfToken()}
    }).then(function (resp) { if (resp.ok) { armIdle(); } });
  }

  /* The preview re-validates the whole form, so its answer replaces every field message,
     including those the server rendered with the page. */
  function clearFieldErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function showFieldErrors(form, fields) {
    Object.keys(fields || {}).forEach(function (name) {
      var input = form.querySelector('[name="' + name + '"]');
      if (!input) { return; }
      input.setAttribute("aria-invalid", "true");
      var p = document.createElement("p");
      p.className = "field-error";
      p.id = name + "-error";
      p.textContent = fields[name].join(" ");
      var described = (input.getAttribute("aria-describedby") || "").split(" ");
      if (described.indexOf(p.id) < 0) {
        input.setAttribute("aria-describedby", described.concat([p.id]).join(" ").trim());
      }
      var holder = input.closest(".field") || input.parentNode;
      holder.appendChild(p);
    });
  }

  /* The referral or treatment the finding calls for (a WHO SAM sign under any profile) is
     pre-selected, unless the health worker chose a referral themselves; when the finding goes
     away (a value corrected), the pre-selection is taken back. */
  function referralPreselector(form) {
    var select = form.querySelector('select[name="referral"]');
    var userChose = false;
    var chosenByUs = null;
    if (select) {
      select.addEventListener("change", function (event) { if (event.isTrusted) { userChose = true; } });
    }
    return function (suggested) {
      if (!select || userChose) { return; }
      if (suggested && (select.value === "none" || select.value === chosenByUs)) {
        select.value = suggested;
        chosenByUs = suggested;
        select.setAttribute("data-preselected", suggested);
      } else if (!suggested && chosenByUs && select.value === chosenByUs) {
        select.value = "none";
        chosenByUs = null;
        select.removeAttribute("data-preselected");
      }
    };
  }

  function setupPreview(form) {
    var url = form.getAttribute("data-preview-url");
    var target = document.getElementById(form.getAttribute("data-preview-target"));
    if (!url || !target) { return; }
    var timer = null;
    var seq = 0;
    var preselect = referralPreselector(form);
    function run() {
      var mine = ++seq;
      var body = new URLSearchParams(new FormData(form));
      target.setAttribute("aria-busy", "true");
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
      }).then(function (response) {
        if (response.redirected || response.status === 401) {
          window.location.assign(window.location.pathname);
          return null;
        }
        return response.json().then(function (data) { return { status: response.status, data: data }; });
      }).then(function (result) {
        if (!result || mine !== seq) { return; }
        target.removeAttribute("aria-busy");
        clearFieldErrors(form);
        armIdle();
        if (result.status === 200 && result.data.html !== undefined) {
          target.innerHTML = result.data.html;
          preselect(result.data.assessment ? result.data.assessment.referral : null);
        } else if (result.data && result.data.error) {
          showFieldErrors(form, result.data.error.fields);
          var note = document.createElement("p");
          note.className = "notice error";
          note.textContent = result.data.error.message;
          target.replaceChildren(note);
        }
      }).catch(function () {
        target.removeAttribute("aria-busy");
      });
    }
    function schedule() {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(run, 350);
    }
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    run();
  }

  /* A rejected form: put the cursor in the first field to fix, not the form's first field. */
  function focusFirstInvalid() {
    var invalid = document.querySelector('main [aria-invalid="true"]');
    if (invalid && !/^(INPUT|SELECT|TEXTAREA)$/.test(invalid.tagName)) {
      invalid = invalid.querySelector("input, select, textarea");
    }
    if (invalid) { invalid.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    armIdle();
    document.addEventListener("input", keepAlive);
    document.addEventListener("keydown", keepAlive);
    focusFirstInvalid();
    document.querySelectorAll("form[data-preview-url]").forEach(setupPreview);
    document.querySelectorAll("[data-action='print']").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();

/* Sync page: "Sync now" starts the run without leaving the page, and the status box polls the
   JSON status every second while a run is under way (the form still works without script).
   Forms with data-confirm ask first (revoking a laptop). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function setupSyncStatus(box) {
    var url = box.getAttribute("data-status-url");
    var form = document.querySelector("form[data-sync-form]");
    var button = form ? form.querySelector("button") : null;
    var timer = null;
    function show(data) {
      box.querySelectorAll("[data-field]").forEach(function (el) {
        var value = data[el.getAttribute("data-field")];
        el.textContent = value === null || value === undefined ? "" : value;
      });
      if (button) { button.disabled = !!data.running; }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { return null; }
          return response.json();
        }).then(function (data) {
          if (!data) { return; }
          show(data);
          if (data.running) {
            timer = window.setTimeout(poll, 1000);
          } else if (box.getAttribute("data-running") === "true") {
            window.location.assign(window.location.pathname);
          }
        }).catch(function () { timer = window.setTimeout(poll, 3000); });
    }
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (button) { button.disabled = true; }
        fetch(form.action, {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrfToken() }
        }).then(function () {
          box.setAttribute("data-running", "true");
          if (timer) { window.clearTimeout(timer); }
          poll();
        });
      });
    }
    if (box.getAttribute("data-running") === "true") { poll(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("sync-status");
    if (box && box.hasAttribute("data-status-url")) { setupSyncStatus(box); }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
