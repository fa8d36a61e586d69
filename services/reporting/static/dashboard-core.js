// IOC dashboard, the pure part: Vietnamese number formats and what the panels show, computed
// from API bodies. No DOM and no network here, so node runs it in the unit tests
// (tests/reporting/test_dashboard_core_unit.py) and the page loads it before dashboard.js.
"use strict";

(function (root) {
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
    const whole = Math.floor(scaled / scale);
    const frac = String(scaled % scale).padStart(d, "0").replace(/0+$/, "");
    return fmtCount(whole) + (frac ? "," + frac : "") + "%";
  }
  // Points as the API gives them (at most 2 decimals): 61.3 -> "61,3", 19.44 -> "19,44", 70 -> "70".
  function fmtPoints(x) {
    if (x === null || x === undefined) return "–";
    const hundredths = Math.round(Math.abs(x) * 100); // the API rounded already: this only undoes binary noise
    const frac = String(hundredths % 100).padStart(2, "0").replace(/0+$/, "");
    return (x < 0 ? "-" : "") + fmtCount(Math.floor(hundredths / 100)) + (frac ? "," + frac : "");
  }
  // A ratio of the API (4 decimals) as a percent with 1 decimal: 0.9718 -> "97,2%".
  function fmtRatio(r) {
    if (r === null || r === undefined) return "–";
    return fmtPercent(Math.round(r * 10000), 10000);
  }

  // ---- Decision 766 -----------------------------------------------------------------------------
  // The ranking with competition ranks: equal scores share a rank (1, 2, 2, 4). The API orders the
  // children already (score, then code); this only numbers them.
  function rankRows(ranking) {
    let previous = null, rank = 0;
    return ranking.map((row, i) => {
      if (previous === null || row.score !== previous) rank = i + 1;
      previous = row.score;
      return { rank, unit: row.unit, name: row.name, score: row.score };
    });
  }

  // The months of the trend: those of the monthly body that have begun (later months have null
  // figures there), each with the window of its /v1/index766 call.
  function trendMonths(monthly) {
    return monthly.months
      .map((m, i) => ({ month: i + 1, key: m.month, from: m.from, to: m.to, begun: m.dossiers.received !== null }))
      .filter((m) => m.begun)
      .map(({ month, key, from, to }) => ({ month, key, from, to }));
  }

  // The trend's axis: whole multiples of 5 points around the scores, within [0, computable points].
  function trendAxis(points) {
    if (!points.length) return { lo: 0, hi: 100 };
    const scores = points.map((p) => p.score);
    const top = Math.max(...points.map((p) => p.computable));
    const lo = Math.max(0, 5 * Math.floor((Math.min(...scores) - 1) / 5));
    const hi = Math.min(Math.max(top, 5), 5 * Math.ceil((Math.max(...scores) + 1) / 5));
    return hi > lo ? { lo, hi } : { lo: Math.max(0, hi - 5), hi: Math.max(hi, 5) };
  }

  function componentLine(c) {
    const head = `${c.code} ${c.name}`;
    if (!c.computed) return `${head}: chưa có dữ liệu, không tính điểm (${fmtPoints(c.max_points)} điểm)`;
    const parts = c.parts
      ? " [" + c.parts.map((p) => `${fmtCount(p.numerator)}/${fmtCount(p.denominator)}`).join(" × ") + "]"
      : "";
    return `${head}: ${fmtCount(c.numerator)}/${fmtCount(c.denominator)}${parts} = ${fmtRatio(c.ratio)}` +
      ` → ${fmtPoints(c.score)}/${fmtPoints(c.max_points)} điểm`;
  }

  // One row per group: its score, the points it can score here, its maximum, and the hover text
  // with every component's numerator and denominator.
  function groupRows(body) {
    return body.groups.map((g) => {
      const computable = g.components.filter((c) => c.computed).reduce((sum, c) => sum + c.max_points, 0);
      return {
        code: g.code,
        name: g.name,
        score: g.score,
        computable,
        max: g.max_points,
        title: [`${g.name}: ${fmtPoints(g.score)}/${fmtPoints(computable)} điểm tính được` +
                ` (tối đa ${fmtPoints(g.max_points)})`].concat(g.components.map(componentLine)).join("\n"),
      };
    });
  }

  function totalText(body) {
    return `${fmtPoints(body.score)} / ${fmtPoints(body.computable_points)} điểm`;
  }

  function computedCount(body) {
    const all = body.groups.flatMap((g) => g.components);
    return { computed: all.filter((c) => c.computed).length, all: all.length };
  }

  // ---- units over time (contract §1.1) ----------------------------------------------------------
  const SPLIT_LABEL = "đã chia tách";
  function dayText(iso) {
    const [y, m, d] = iso.split("-");
    return `${d}/${m}/${y}`;
  }
  function dayBefore(iso) {
    const t = new Date(iso + "T00:00:00Z");
    t.setUTCDate(t.getUTCDate() - 1);
    return t.toISOString().slice(0, 10);
  }
  // The trees the picker offers, from a /v1/units body: today's ("") and, for each day a unit or a
  // predecessor starts or ends, the last day before it. None for a registry without dates. The
  // chosen tree is selected (added if it is none of these).
  function treeChoices(units, chosen) {
    const days = new Set();
    for (const u of units) {
      for (const d of [u.valid_from, u.valid_to]) if (d) days.add(d);
      for (const p of u.predecessors || []) for (const d of [p.valid_from, p.valid_to]) if (d) days.add(d);
    }
    if (!days.size) return [];
    const current = chosen || "";
    const choices = [{ value: "", label: "Hiện nay" }].concat(
      [...days].sort().reverse().map((d) => ({ value: dayBefore(d), label: `Trước ${dayText(d)}` })));
    if (current && !choices.some((c) => c.value === current)) {
      choices.push({ value: current, label: `Ngày ${dayText(current)}` });
    }
    return choices.map((c) => ({ ...c, selected: c.value === current }));
  }

  const core = { fmtCount, fmtPercent, fmtPoints, fmtRatio, rankRows, trendMonths, trendAxis, componentLine, groupRows,
                 totalText, computedCount, SPLIT_LABEL, treeChoices };
  if (typeof module === "object" && module.exports) module.exports = core;
  else root.DashboardCore = core;
})(typeof window === "undefined" ? globalThis : window);
