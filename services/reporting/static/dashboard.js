// IOC dashboard: headline figures from the live snapshot stream (Server-Sent Events), the
// breakdown table and the two charts (inline SVG, drawn here) refreshed whenever it changes.
// No external asset and no library: everything is served by the reporting service.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const params = new URLSearchParams(window.location.search);
  // A reader token in the page's own URL wins; in development the page carries the dev token.
  const token = params.get("access_token") || config.token || null;
  const SVG = "http://www.w3.org/2000/svg";

  // ---- Vietnamese formats (the same rules as the report: 1.763; 81,1%) ----------------------
  function fmtCount(n) {
    if (n === null || n === undefined) return "–";
    const sign = n < 0 ? "-" : "";
    return sign + String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  }
  // Rounded half up from the exact counts, trailing zeros dropped.
  function fmtPercent(num, den, decimals) {
    if (!den) return "–";
    const d = decimals === undefined ? 1 : decimals;
    const scale = Math.pow(10, d);
    const scaled = Math.floor((2 * num * 100 * scale + den) / (2 * den));
    let whole = Math.floor(scaled / scale);
    let frac = String(scaled % scale).padStart(d, "0").replace(/0+$/, "");
    return fmtCount(whole) + (frac ? "," + frac : "") + "%";
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    const t = new Date(iso);
    const opts = { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit",
                   day: "2-digit", month: "2-digit", year: "numeric", hour12: false };
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", opts).formatToParts(t).map(p => [p.type, p.value]));
    return `${parts.hour}:${parts.minute}:${parts.second} ${parts.day}/${parts.month}/${parts.year}`;
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) {
      el.textContent = text;
      if (el.classList.contains("big")) {
        el.classList.add("flash");
        setTimeout(() => el.classList.remove("flash"), 900);
      }
    }
  }

  // ---- API ------------------------------------------------------------------------------------
  async function api(path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(path, { headers, cache: "no-store" });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }
  const q = (extra) => new URLSearchParams({ unit: config.unit, ...extra }).toString();

  // ---- headline figures -----------------------------------------------------------------------
  function renderSnapshot(s) {
    const d = s.dossiers, doc = s.documents;
    setText("fig-received", fmtCount(d.received));
    setText("fig-received-online", fmtCount(d.received_online));
    setText("fig-received-direct", fmtCount(d.received_direct));
    setText("fig-received-postal", fmtCount(d.received_postal));
    setText("fig-online-rate", fmtPercent(d.received_online, d.received));
    setText("fig-on-time-rate", fmtPercent(d.resolved_on_time, d.resolved));
    setText("fig-resolved-on-time", fmtCount(d.resolved_on_time));
    setText("fig-resolved", fmtCount(d.resolved));
    setText("fig-resolved-late", fmtCount(d.resolved_late));
    setText("fig-in-progress", fmtCount(d.in_progress));
    setText("fig-overdue", fmtCount(d.in_progress_overdue));
    setText("fig-overdue-rate", fmtPercent(d.in_progress_overdue, d.in_progress));
    document.getElementById("card-in-progress").classList.toggle("alert", d.in_progress_overdue > 0);
    setText("fig-components-rate", fmtPercent(d.components_digitized, d.digitization_required));
    setText("fig-components", fmtCount(d.components_digitized));
    setText("fig-digitization-required", fmtCount(d.digitization_required));
    setText("fig-results-rate", fmtPercent(d.results_digitized, d.result_digitization_required));
    setText("fig-results", fmtCount(d.results_digitized));
    setText("fig-result-digitization-required", fmtCount(d.result_digitization_required));
    setText("fig-paid-rate", fmtPercent(d.paid_online, d.fee_required));
    setText("fig-paid", fmtCount(d.paid_online));
    setText("fig-fee-required", fmtCount(d.fee_required));
    setText("fig-leader-rate", fmtPercent(doc.signed_by_leader, doc.signed_by_organization, 2));
    setText("fig-signed-leader", fmtCount(doc.signed_by_leader));
    setText("fig-signed-organization", fmtCount(doc.signed_by_organization));
    setText("fig-updated", fmtTime(s.freshness && s.freshness.last_applied_at));
    document.body.dataset.version = s.etag || "";
  }

  // ---- breakdown table ------------------------------------------------------------------------
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function renderBreakdown(body) {
    const tbody = document.querySelector("#breakdown tbody");
    const rows = body.rows.slice(1).concat(body.rows.slice(0, 1)); // children first, the unit's own row last
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const d = row.dossiers;
      const tr = document.createElement("tr");
      tr.dataset.unit = row.unit;
      if (row.scope === "self") tr.className = "self";
      const name = row.scope === "self" ? `${row.name} (${config.own_level})` : row.name;
      tr.append(
        cell(name, "name"),
        cell(fmtCount(d.received)),
        cell(fmtPercent(d.received_online, d.received)),
        cell(fmtCount(d.resolved)),
        cell(fmtPercent(d.resolved_on_time, d.resolved)),
        cell(fmtCount(d.in_progress)),
        cell(fmtCount(d.in_progress_overdue), d.in_progress_overdue > 0 ? "bad" : ""),
        cell(fmtPercent(d.results_digitized, d.result_digitization_required, 2)),
        cell(fmtPercent(d.paid_online, d.fee_required)),
        cell(fmtPercent(d.ratings_satisfied, d.ratings, 2)),
      );
      fresh.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.append(cell("Không có số liệu", "empty"));
      fresh.append(tr);
    }
    tbody.replaceChildren(fresh);
  }

  // ---- charts (inline SVG) --------------------------------------------------------------------
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function niceMax(value) {
    if (value <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }
  function canvasOf(id) {
    const box = document.getElementById(id);
    const w = Math.max(box.clientWidth, 200), h = Math.max(box.clientHeight, 120);
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    box.replaceChildren(svg);
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    return { svg, w, h, rem };
  }

  let lastBreakdown = null, lastMonthly = null;

  function drawUnits(body) {
    const { svg, w, h, rem } = canvasOf("chart-units");
    const rows = body.rows.filter(r => r.scope === "subtree").sort((a, b) => b.dossiers.received - a.dossiers.received);
    if (!rows.length) {
      svg.append(el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", "font-size": rem }, "Không có đơn vị trực thuộc"));
      return;
    }
    const step = h / rows.length;
    const font = Math.min(rem * 0.9, step * 0.7);
    const labelW = Math.min(w * 0.36, 12.5 * font), valueW = 4.5 * font;
    const barH = step * 0.62;
    const max = niceMax(Math.max(...rows.map(r => r.dossiers.received)));
    const scale = (w - labelW - valueW) / max;
    rows.forEach((r, i) => {
      const y = i * step + (step - barH) / 2, d = r.dossiers;
      const online = d.received_online * scale, other = (d.received - d.received_online) * scale;
      svg.append(el("text", { x: labelW - 0.4 * font, y: y + barH * 0.72, "text-anchor": "end", "font-size": font }, r.name));
      svg.append(el("rect", { x: labelW, y, width: online, height: barH, fill: "var(--online)", rx: 2 }));
      svg.append(el("rect", { x: labelW + online, y, width: other, height: barH, fill: "var(--direct)", rx: 2 }));
      svg.append(el("text", { x: labelW + online + other + 0.4 * font, y: y + barH * 0.72, "font-size": font, class: "value" },
                    fmtCount(d.received)));
    });
  }

  function drawMonths(body) {
    const { svg, w, h, rem } = canvasOf("chart-months");
    const font = rem * 0.85, left = 4 * font, bottom = 1.8 * font, top = 0.6 * font;
    const months = body.months;
    const values = months.flatMap(m => [m.dossiers.received || 0, m.dossiers.resolved || 0]);
    const max = niceMax(Math.max(1, ...values));
    const plotH = h - bottom - top, plotW = w - left - 0.5 * font;
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i, y = top + plotH - (v / max) * plotH;
      svg.append(el("line", { x1: left, x2: w, y1: y, y2: y, stroke: "var(--grid)", "stroke-width": 1 }));
      svg.append(el("text", { x: left - 0.4 * font, y: y + 0.35 * font, "text-anchor": "end", "font-size": font },
                    fmtCount(Math.round(v))));
    }
    const slot = plotW / 12, barW = slot * 0.34;
    months.forEach((m, i) => {
      const x0 = left + i * slot + slot * 0.14;
      [["received", "var(--received)"], ["resolved", "var(--resolved)"]].forEach(([key, color], j) => {
        const v = m.dossiers[key];
        if (v === null || v === undefined) return;
        const bh = (v / max) * plotH;
        const bar = el("rect", { x: x0 + j * barW, y: top + plotH - bh, width: barW * 0.92, height: bh, fill: color, rx: 2 });
        bar.append(el("title", {}, `${key === "received" ? "Tiếp nhận" : "Đã giải quyết"} tháng ${i + 1}: ${fmtCount(v)}`));
        svg.append(bar);
      });
      svg.append(el("text", { x: x0 + barW, y: h - 0.45 * font, "text-anchor": "middle", "font-size": font }, "T" + (i + 1)));
    });
  }

  // ---- refresh of the details (at most one request in flight, the last change always wins) ----
  let refreshing = false, again = false;
  async function refreshDetails() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      do {
        again = false;
        const to = config.to;
        const [breakdown, monthly] = await Promise.all([
          api("/v1/indicators/breakdown?" + q({ from: config.from, to })),
          api("/v1/indicators/monthly?" + q({ year: config.year })),
        ]);
        lastBreakdown = breakdown; lastMonthly = monthly;
        renderBreakdown(breakdown); drawUnits(breakdown); drawMonths(monthly);
      } while (again);
    } catch (err) {
      console.warn("dashboard: refresh failed", err);
    } finally {
      refreshing = false;
    }
  }

  // ---- the live stream ------------------------------------------------------------------------
  function setLive(state, text) {
    const dot = document.getElementById("live-dot");
    dot.className = "dot " + state;
    setText("live-text", text);
  }
  function connect() {
    const extra = { year: config.year };
    if (token) extra.access_token = token;
    const source = new EventSource("/v1/stream?" + q(extra));
    source.addEventListener("open", () => setLive("live", "Trực tuyến"));
    source.addEventListener("snapshot", (e) => {
      const snapshot = JSON.parse(e.data);
      snapshot.etag = e.lastEventId;
      renderSnapshot(snapshot);
      setLive("live", "Trực tuyến");
      refreshDetails();
    });
    source.addEventListener("error", () => setLive("down", "Mất kết nối, đang thử lại…"));
  }

  // ---- pickers --------------------------------------------------------------------------------
  function navigate(changes) {
    const next = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(changes)) next.set(k, v);
    window.location.search = next.toString();
  }
  async function fillUnits() {
    const select = document.getElementById("unit-select");
    try {
      const units = await api("/v1/units");
      const byParent = {};
      for (const u of units) (byParent[u.parent || ""] = byParent[u.parent || ""] || []).push(u);
      const options = [];
      (function walk(parent, depth) {
        for (const u of byParent[parent] || []) {
          const o = document.createElement("option");
          o.value = u.code;
          o.textContent = "\u00a0\u00a0".repeat(depth) + u.name;
          o.selected = u.code === config.unit;
          options.push(o);
          walk(u.code, depth + 1);
        }
      })("", 0);
      select.replaceChildren(...options);
    } catch (err) {
      console.warn("dashboard: units", err);
    }
    select.addEventListener("change", () => navigate({ unit: select.value }));
  }

  document.getElementById("year-select").addEventListener("change", (e) => navigate({ year: e.target.value }));
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (lastBreakdown) drawUnits(lastBreakdown);
      if (lastMonthly) drawMonths(lastMonthly);
    }, 150);
  });
  if (!token) {
    setLive("down", "Thiếu mã truy cập (access_token)");
    return;
  }
  fillUnits();
  connect();
})();
