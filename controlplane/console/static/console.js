// erpctl console: the colour theme, pages that update themselves, the tables section that loads
// after the page, and keyboard shortcuts. Plain JavaScript, served as is: no build step.
"use strict";
(function () {
  var root = document.documentElement;
  var themes = ["auto", "light", "dark"];
  function stored() { try { return localStorage.getItem("erpctl-theme") || "auto"; } catch (e) { return "auto"; } }
  function apply(t) {
    if (t === "auto") { delete root.dataset.theme; } else { root.dataset.theme = t; }
    var b = document.getElementById("theme");
    if (b) { b.textContent = "Theme: " + t; b.setAttribute("aria-label", "Colour theme: " + (t === "auto" ? "follows the system" : t)); }
  }
  // Before the body is drawn, so that a dark page never flashes light.
  apply(stored());

  // swap replaces the element of the page that has el's id with el, unless the operator is in it
  // (typing, or on a button): their place on the page is kept.
  function swap(el) {
    var cur = document.getElementById(el.id);
    if (!cur || cur.contains(document.activeElement)) { return false; }
    cur.replaceWith(document.importNode(el, true));
    return true;
  }

  function fetchPage(url) {
    return fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin", redirect: "follow" }).then(function (r) {
      if (r.redirected && new URL(r.url).pathname === "/login") { throw new Error("signed out"); }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }

  function live(ms) {
    var note = document.getElementById("live");
    var busy = false, stopped = false;
    function tick() {
      if (stopped || busy || document.hidden) { return; }
      busy = true;
      fetchPage(location.href).then(function (doc) {
        doc.querySelectorAll("[data-region][id]").forEach(swap);
        if (note) { note.textContent = "Updated " + new Date().toLocaleTimeString() + "; updates itself every " + ms + " ms."; }
      }).catch(function (e) {
        if (note) { note.textContent = "Not updating: " + e.message + ". Reload the page."; }
        if (e.message === "signed out") { stopped = true; }
      }).then(function () { busy = false; });
    }
    setInterval(tick, ms);
    document.addEventListener("visibilitychange", tick);
  }

  function loadSections() {
    document.querySelectorAll("[data-load][id]").forEach(function (el) {
      el.setAttribute("aria-busy", "true");
      fetchPage(el.dataset.load).then(function (doc) {
        var got = doc.getElementById(el.id);
        if (got) { el.replaceWith(document.importNode(got, true)); }
      }).catch(function (e) {
        el.removeAttribute("aria-busy");
        el.insertAdjacentHTML("beforeend", '<p class="error"></p>');
        el.lastElementChild.textContent = "Could not load: " + e.message;
      });
    });
  }

  var pending = "";
  function keys(e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.isContentEditable) { return; }
    if (e.key === "/") {
      var q = document.getElementById("q");
      e.preventDefault();
      if (q) { q.focus(); q.select(); } else { location.href = "/tenants#q"; }
      return;
    }
    if (pending === "g") {
      pending = "";
      var to = { f: "/", t: "/tenants", r: "/rollouts", g: "/generations" }[e.key];
      if (to) { location.href = to; }
      return;
    }
    if (e.key === "g") { pending = "g"; setTimeout(function () { pending = ""; }, 1500); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    apply(stored());
    var b = document.getElementById("theme");
    if (b) {
      b.addEventListener("click", function () {
        var next = themes[(themes.indexOf(stored()) + 1) % themes.length];
        try { localStorage.setItem("erpctl-theme", next); } catch (e) { /* private mode: this page only */ }
        apply(next);
      });
    }
    // A filter left empty stays out of the address: /tenants?q=acme, not ?q=acme&status=&generation=.
    document.querySelectorAll("form.filters").forEach(function (f) {
      f.addEventListener("submit", function () {
        f.querySelectorAll("input[name], select[name]").forEach(function (el) { if (el.value === "") { el.disabled = true; } });
        setTimeout(function () { f.querySelectorAll("[disabled]").forEach(function (el) { el.disabled = false; }); }, 0);
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!confirm(f.dataset.confirm)) { e.preventDefault(); } });
    });
    document.addEventListener("keydown", keys);
    loadSections();
    var ms = parseInt(document.body.dataset.live || "0", 10);
    if (ms > 0) { live(ms); }
    if (location.hash === "#q") { var q = document.getElementById("q"); if (q) { q.focus(); } }
  });
})();
