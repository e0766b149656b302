// ftcompat grid page: filters, the detail panel and keyboard moves. No network, no server: the data is
// the JSON block above, the filter state lives in location.hash, and every grid string goes through
// textContent (never innerHTML), so a message cannot inject markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("ftcompat-data").textContent);
  var columns = data.columns;
  var combos = {};
  data.combos.forEach(function (c) { combos[c.id] = c; });
  var $ = function (id) { return document.getElementById(id); };
  var table = $("grid"), panel = $("panel");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var variantHeads = Array.prototype.slice.call(table.querySelectorAll("th.variant"));
  var groupHeads = Array.prototype.slice.call(table.querySelectorAll("th.group"));
  var versionRows = Array.prototype.slice.call($("versions").tBodies[0].rows);
  var FILTERS = { "case": "f-case", status: "f-status", pkg: "f-pkg", op: "f-op", ver: "f-ver" };
  // How each status and triage looks, and which statuses "failing" means: from ftcompat's one table.
  var LOOK = data.statuses.look;
  var FAILING = data.statuses.needs_attention;
  var REPORTABLE = data.statuses.failing;
  var selected = null;

  function caseOf(column) { return column.split("[")[0]; }

  // Versions compare by their numeric parts; a local label (+cpu) is ignored, a pre-release sorts first.
  function parts(v) { return String(v).split("+")[0].toLowerCase().match(/\d+|[a-z]+/g) || []; }
  function compareVersions(a, b) {
    var x = parts(a), y = parts(b);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var p = x[i], q = y[i];
      if (p === undefined) return /^\d/.test(q) ? -1 : 1;
      if (q === undefined) return /^\d/.test(p) ? 1 : -1;
      var pn = /^\d/.test(p), qn = /^\d/.test(q);
      if (pn && qn && +p !== +q) return +p < +q ? -1 : 1;
      if (pn !== qn) return pn ? 1 : -1;
      if (!pn && p !== q) return p < q ? -1 : 1;
    }
    return 0;
  }

  function readState() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var state = {};
    ["case", "status", "pkg", "op", "ver", "cell"].forEach(function (k) { state[k] = params.get(k) || ""; });
    if (!state.pkg) state.pkg = "transformers";
    if (!state.op) state.op = "==";
    return state;
  }

  function formState() {
    var state = {};
    Object.keys(FILTERS).forEach(function (k) { state[k] = $(FILTERS[k]).value; });
    state.cell = selected || "";
    return state;
  }

  function writeState(state) {
    var params = new URLSearchParams();
    ["case", "status", "ver", "cell"].forEach(function (k) { if (state[k]) params.set(k, state[k]); });
    if (state.ver) { params.set("pkg", state.pkg); params.set("op", state.op); }
    var hash = params.toString();
    if (location.hash.replace(/^#/, "") === hash) return;
    try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); }
    catch (e) { location.hash = hash; }  // some browsers refuse replaceState on file:// pages
  }

  function fillVersions(pkg, keep) {
    var counts = {};
    data.combos.forEach(function (c) {
      var v = c.resolved[pkg];
      if (v) counts[v] = (counts[v] || 0) + 1;
    });
    var select = $("f-ver");
    while (select.options.length > 1) select.remove(1);
    Object.keys(counts).sort(compareVersions).forEach(function (v) {
      var n = counts[v];
      select.add(new Option(v + " (" + n + " combo" + (n > 1 ? "s" : "") + ")", v));
    });
    select.value = counts[keep] ? keep : "";
  }

  function versionOk(combo, state) {
    if (!state.ver) return true;
    var got = combos[combo].resolved[state.pkg];
    if (!got) return false;
    var c = compareVersions(got, state.ver);
    return { "==": c === 0, "!=": c !== 0, ">=": c >= 0, "<=": c <= 0 }[state.op];
  }

  function statusOk(button, want) {
    if (!want) return true;
    var s = button.getAttribute("data-status"), t = button.getAttribute("data-triage");
    if (want === "failing") return FAILING.indexOf(s) >= 0;
    if (data.statuses.triages.indexOf(want) >= 0) return t === want;
    return s === want;
  }

  function cellButton(row, i) { return row.cells[i + 1].querySelector("button"); }

  function apply(state) {
    var colOk = columns.map(function (col) { return !state["case"] || caseOf(col) === state["case"]; });
    var rowOk = rows.map(function (tr) { return versionOk(tr.getAttribute("data-combo"), state); });
    var match = function (r, i) {
      var b = cellButton(rows[r], i);
      return !!b && statusOk(b, state.status);
    };
    if (state.status) {  // keep only the rows, then the columns, that have a cell with the wanted status
      rowOk = rowOk.map(function (ok, r) { return ok && colOk.some(function (c, i) { return c && match(r, i); }); });
      colOk = colOk.map(function (ok, i) { return ok && rowOk.some(function (rk, r) { return rk && match(r, i); }); });
    }
    var shown = 0;
    rows.forEach(function (tr, r) {
      tr.classList.toggle("hidden", !rowOk[r]);
      columns.forEach(function (col, i) {
        var td = tr.cells[i + 1];
        td.classList.toggle("hidden", !colOk[i]);
        var b = td.querySelector("button"), on = !!b && statusOk(b, state.status);
        td.classList.toggle("off", !!b && !on);
        if (rowOk[r] && colOk[i] && on) shown++;
      });
    });
    variantHeads.forEach(function (th, i) { th.classList.toggle("hidden", !colOk[i]); });
    var at = 0;
    groupHeads.forEach(function (th) {
      var span = +th.getAttribute("data-span"), visible = 0;
      for (var i = at; i < at + span; i++) if (colOk[i]) visible++;
      at += span;
      th.colSpan = Math.max(visible, 1);
      th.classList.toggle("hidden", visible === 0);
    });
    versionRows.forEach(function (tr, r) { tr.classList.toggle("hidden", !rowOk[r]); });
    $("count").textContent = "showing " + rowOk.filter(Boolean).length + " of " + rows.length + " combos, " +
      colOk.filter(Boolean).length + " of " + columns.length + " columns, " + shown + " cells";
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function defs(pairs) {
    var dl = el("dl");
    pairs.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === "") return;
      dl.appendChild(el("dt", p[0]));
      var dd = el("dd");
      if (p[2]) dd.appendChild(el("code", p[1])); else dd.textContent = String(p[1]);
      dl.appendChild(dd);
    });
    return dl;
  }

  function section(title, node) {
    var s = el("section");
    s.appendChild(el("h3", title));
    s.appendChild(node);
    return s;
  }

  function issueBox(issue) {
    var box = el("div", null, "issue");
    box.appendChild(el("strong", "Known issue " + (issue.id || "") + ": "));
    box.appendChild(document.createTextNode(issue.summary || ""));
    if (issue.url && /^https?:\/\//.test(issue.url)) {  // only web links; nothing a message could smuggle in
      var p = el("p"), a = el("a", issue.url);
      a.href = issue.url; a.target = "_blank"; a.rel = "noopener noreferrer";
      p.appendChild(a);
      box.appendChild(p);
    }
    if (issue.workaround) box.appendChild(el("p", "Workaround: " + issue.workaround));
    return box;
  }

  function device(d) {
    if (!d) return "";
    return (d.type || "?") + (d.name ? " (" + d.name + (d.cuda ? ", CUDA " + d.cuda : "") + ")" : "");
  }

  function fill(cell) {
    var look = LOOK[cell.triage] || LOOK[cell.status] || ["unknown", "\u2022", cell.status];
    panel.textContent = "";
    var close = el("button", "Close \u2715", "close");
    close.type = "button"; close.title = "close (Esc)";
    close.addEventListener("click", closePanel);
    panel.appendChild(close);
    var h = el("h2", cell.id); h.id = "panel-title";
    panel.appendChild(h);
    var badge = el("span", look[1] + " " + cell.status + (cell.triage ? " \u00b7 " + cell.triage : ""),
                   "badge st-" + look[0]);
    badge.setAttribute("data-role", "status");
    panel.appendChild(badge);
    if (cell.failing_since) panel.appendChild(el("p", "Failing since " + cell.failing_since, "since"));
    if (cell.not_refreshed) panel.appendChild(el("p", "Not refreshed: the run of " + cell.not_refreshed.at +
      " failed for a machine reason (" + cell.not_refreshed.reason + "); this result is from an earlier run.",
      "since"));
    if (cell.known_issue) panel.appendChild(issueBox(cell.known_issue));
    var sig = defs([["signature", cell.signature, true], ["step", cell.step, true],
                    ["duration", cell.duration_s === null || cell.duration_s === undefined ? "" :
                      Number(cell.duration_s).toFixed(2) + " s"], ["finished", cell.finished_at]]);
    sig.setAttribute("data-role", "signature");
    panel.appendChild(sig);
    var env = cell.env || combos[cell.combo].env || {}, versions = env.versions || combos[cell.combo].resolved || {};
    var pairs = Object.keys(versions).sort().map(function (k) { return [k, versions[k]]; });
    pairs.push(["python", env.python], ["device", device(env.device)], ["platform", env.platform]);
    var v = section("Resolved versions", defs(pairs));
    v.setAttribute("data-role", "versions");
    panel.appendChild(v);
    var repro = el("pre", 'FTCOMPAT_CASES="' + cell["case"] + '" nox -s ' + cell.combo);
    repro.setAttribute("data-role", "repro");
    panel.appendChild(section("Reproduce locally", repro));
    if (REPORTABLE.indexOf(cell.status) >= 0) {
      var report = el("pre", 'ftcompat report "' + cell.id + '"');
      report.setAttribute("data-role", "report");
      panel.appendChild(section("Upstream bug report", report));
    }
    if (cell.log) {
      var log = el("pre", cell.log);
      log.setAttribute("data-role", "log");
      panel.appendChild(section(cell.log_source === "log" ? "Log (last lines)" : "Traceback (last lines)", log));
    }
    if (cell.details && Object.keys(cell.details).length)
      panel.appendChild(section("Details the case recorded", el("pre", JSON.stringify(cell.details, null, 1))));
  }

  function openPanel(id, focus) {
    var cell = data.cells[id];
    if (!cell) return;
    if (selected) {
      var old = table.querySelector("button.selected");
      if (old) old.classList.remove("selected");
    }
    selected = id;
    var button = table.querySelector('button[data-cell="' + CSS.escape(id) + '"]');
    if (button) button.classList.add("selected");
    fill(cell);
    panel.hidden = false;
    if (focus) panel.focus();
    writeState(formState());
  }

  function closePanel() {
    var button = selected && table.querySelector('button[data-cell="' + CSS.escape(selected) + '"]');
    if (button) button.classList.remove("selected");
    selected = null;
    panel.hidden = true;
    writeState(formState());
    if (button) button.focus();
  }

  // Arrow keys move between the visible cells; Enter/Space press the focused button as usual.
  function move(button, key) {
    var td = button.parentNode, tr = td.parentNode;
    var r = rows.indexOf(tr), i = td.cellIndex - 1;
    var dr = { ArrowUp: -1, ArrowDown: 1 }[key] || 0, di = { ArrowLeft: -1, ArrowRight: 1 }[key] || 0;
    for (var step = 1; step < Math.max(rows.length, columns.length); step++) {
      var rr = r + dr * step, ii = i + di * step;
      if (rr < 0 || rr >= rows.length || ii < 0 || ii >= columns.length) return;
      var row = rows[rr], cellTd = row.cells[ii + 1];
      if (row.classList.contains("hidden") || cellTd.classList.contains("hidden")) continue;
      var target = cellTd.querySelector("button");
      if (target) { target.focus(); return; }
    }
  }

  table.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-cell]");
    if (button) openPanel(button.getAttribute("data-cell"), false);
  });
  table.addEventListener("keydown", function (ev) {
    var button = ev.target.closest("button[data-cell]");
    if (button && /^Arrow/.test(ev.key)) { ev.preventDefault(); move(button, ev.key); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && !panel.hidden) closePanel();
  });
  Object.keys(FILTERS).forEach(function (k) {
    $(FILTERS[k]).addEventListener("change", function () {
      if (k === "pkg") fillVersions($("f-pkg").value, "");
      var state = formState();
      apply(state);
      writeState(state);
    });
  });
  $("f-clear").addEventListener("click", function () {
    $("f-case").value = ""; $("f-status").value = ""; $("f-ver").value = "";
    var state = formState();
    apply(state);
    writeState(state);
  });

  function load() {
    var state = readState();
    $("f-case").value = state["case"];
    $("f-status").value = state.status;
    $("f-pkg").value = state.pkg;
    $("f-op").value = state.op;
    fillVersions(state.pkg, state.ver);
    apply(formState());
    if (state.cell && data.cells[state.cell]) openPanel(state.cell, false);
    else if (!panel.hidden && !state.cell) { panel.hidden = true; selected = null; }
  }
  window.addEventListener("hashchange", load);
  load();
})();
