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

  /* Idle lock: the server locks after IDLE seconds without a request. Before that, a banner
     counts down (typing or a click keeps working); at the end the page parks what was typed
     (sealed in the server's memory, never on disk: contigo/auth/parking.py), locks, and asks
     for the password, coming back to the same form, filled in as it was (issue 15.2). */
  var idleTimer = null, countdown = null, deadline = 0, banner = null;
  function idleSeconds() {
    if (!document.body.hasAttribute("data-signed-in")) { return 0; }
    return parseFloat(document.body.getAttribute("data-idle-seconds") || "0");
  }
  function warnSeconds(total) { return Math.min(60, Math.floor(total / 2)); }
  function hideBanner() {
    if (countdown) { window.clearInterval(countdown); countdown = null; }
    if (banner) { banner.hidden = true; }
  }
  function showBanner() {
    var text = document.body.getAttribute("data-idle-warning");
    if (!text) { return; }
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "idle-warning";
      banner.className = "idle-warning";
      banner.setAttribute("role", "alert");
      document.body.appendChild(banner);
    }
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      banner.textContent = text.replace("{s}", String(left));
      if (left <= 3) { parkAndLock(); }
    }
    banner.hidden = false;
    tick();
    if (!countdown) { countdown = window.setInterval(tick, 1000); }
  }
  function typedForm() {
    var form = document.querySelector("main form[method=post]:not(.lock-form):not(.lang-switch)");
    if (!form) { return null; }
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "csrf_token") { fields.push([name, value]); }
    });
    return fields.length ? fields : null;
  }
  var parking = false;
  function parkAndLock() {
    if (parking) { return; }
    parking = true;
    hideBanner();
    var here = window.location.pathname, fields = typedForm();
    var parked = fields ? window.fetch("/park", {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrfToken(), "Content-Type": "application/json"},
      body: JSON.stringify({path: here, fields: fields})
    }) : Promise.resolve();
    parked.catch(function () {}).then(function () {
      var lock = document.querySelector("form.lock-form");
      if (!lock) { window.location.assign(here); return; }
      var next = document.createElement("input");
      next.type = "hidden";
      next.name = "next";
      next.value = here;
      lock.appendChild(next);
      lock.submit();
    });
  }
  function armIdle() {
    var seconds = idleSeconds();
    if (!seconds) { return; }
    if (idleTimer) { window.clearTimeout(idleTimer); }
    hideBanner();
    deadline = Date.now() + seconds * 1000;
    var warn = document.body.hasAttribute("data-idle-warning") ? warnSeconds(seconds) : 0;
    idleTimer = window.setTimeout(function () {
      if (warn) { showBanner(); } else { window.location.assign(window.location.pathname); }
    }, (warn ? seconds - warn : seconds + 2) * 1000);
  }

  /* Typing is activity: while a person is filling in a form, tell the server (at most every
     30 s, at once while the banner counts down) so the laptop does not lock under their hands.
     A truly idle laptop still locks. */
  var lastPing = Date.now();
  function keepAlive() {
    if (!document.body.hasAttribute("data-signed-in") || parking) { return; }
    var warned = banner && !banner.hidden;
    if (!warned && Date.now() - lastPing < 30000) { return; }
    lastPing = Date.now();
    window.fetch("/keepalive", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrfToken()}
    }).then(function (resp) { if (resp.ok) { armIdle(); } });
  }

  /* Back after the lock: the form parked on this page is filled in again, once. */
  function unpark() {
    if (!document.body.hasAttribute("data-parked")) { return; }
    window.fetch("/unpark", {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrfToken(), "Content-Type": "application/json"},
      body: JSON.stringify({path: window.location.pathname})
    }).then(function (resp) { return resp.ok ? resp.json() : {fields: []}; }).then(function (data) {
      var form = document.querySelector("main form[method=post]:not(.lock-form):not(.lang-switch)");
      if (!form || !data.fields.length) { return; }
      data.fields.forEach(function (pair) {
        form.querySelectorAll('[name="' + pair[0] + '"]').forEach(function (input) {
          if (input.type === "checkbox" || input.type === "radio") {
            if (input.value === pair[1]) { input.checked = true; }
          } else {
            input.value = pair[1];
          }
        });
      });
      form.dispatchEvent(new Event("input", {bubbles: true}));
      var note = document.createElement("div");
      note.className = "flash info";
      note.id = "form-restored";
      note.setAttribute("role", "status");
      note.textContent = document.body.getAttribute("data-idle-restored") || "";
      form.parentNode.insertBefore(note, form);
    });
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
    unpark();
    document.addEventListener("input", keepAlive);
    document.addEventListener("keydown", keepAlive);
    document.addEventListener("click", keepAlive);
    focusFirstInvalid();
    document.querySelectorAll("form[data-preview-url]").forEach(setupPreview);
    document.querySelectorAll("[data-action='print']").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    /* Enter in a box that has its own button (the mother search) presses that button, not the
       form's default one. */
    document.querySelectorAll("[data-enter-clicks]").forEach(function (box) {
      box.addEventListener("keydown", function (event) {
        if (event.key !== "Enter") { return; }
        var target = document.getElementById(box.getAttribute("data-enter-clicks"));
        if (target) { event.preventDefault(); target.click(); }
      });
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
