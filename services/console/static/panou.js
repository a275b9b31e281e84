// Panou operational: polls /panou/date every 2 s and draws rates with uPlot.
// The console sends running totals (counters) and levels (gauges); rates are computed
// here from two successive samples, so the server keeps no history. A counter that
// went down means its service restarted: that step is drawn as 0, not as a negative.
"use strict";

(() => {
  const root = document.getElementById("panou");
  if (!root || typeof uPlot === "undefined") return;
  const EVERY_MS = 2000;
  const KEEP = 150; // 5 minutes of 2-second points
  const WINDOW_S = (KEEP * EVERY_MS) / 1000;
  const COLORS = ["#0b4f8a", "#14a06e", "#d1495b", "#edae49", "#66a3d2", "#8c5fbf", "#00798c",
    "#a85400", "#5b6775", "#c2185b", "#2e7d32", "#6d4c41"];
  const STATUS_COLORS = { good: "#14a06e", revoked: "#d1495b", unknown: "#edae49", unauthorized: "#8c5fbf",
    malformed: "#5b6775", try_later: "#a85400", online: "#14a06e", offline: "#d1495b" };
  const statusText = document.getElementById("live-status");
  const dot = document.getElementById("live-dot");
  const raw = document.getElementById("raw");
  const charts = {};
  const times = [];
  const series = {}; // chart id -> { key -> [values aligned with times] }
  let previous = null;

  const two = (n) => String(n).padStart(2, "0");
  const clock = (t) => {
    const d = new Date(t * 1000);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };
  const count = (v) => (v == null ? "—" : String(Math.round(v)));
  const fmt = (v) => (v == null ? "—" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

  const push = (chart, key, value) => {
    const bucket = (series[chart] = series[chart] || {});
    if (!bucket[key]) bucket[key] = new Array(times.length - 1).fill(null);
    bucket[key].push(value);
  };

  const rate = (now, before, dt) => {
    if (before == null || now == null) return null;
    return now >= before ? (now - before) / dt : 0;
  };

  const rates = (now = {}, before = {}, dt) => {
    const out = {};
    for (const key of Object.keys(now)) out[key] = rate(now[key], before[key], dt);
    return out;
  };

  const sum = (obj) => Object.values(obj || {}).reduce((a, b) => a + (b || 0), 0);

  function draw(id) {
    const el = document.getElementById(id);
    const bucket = series[id] || {};
    const keys = Object.keys(bucket).sort();
    const data = [times.slice(), ...keys.map((k) => bucket[k])];
    const width = Math.max(el.clientWidth, 260);
    const signature = keys.join("|");
    let chart = charts[id];
    if (!chart || chart.signature !== signature) {
      if (chart) chart.plot.destroy();
      const opts = {
        width, height: 220,
        // Always the last five minutes, even before that much has been sampled.
        // From the first sample (at least the last minute) up to five minutes back.
        scales: { x: { time: true, range: (u, min, max) => [Math.min(Math.max(min, max - WINDOW_S), max - 60), max] },
                  y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
        axes: [{ stroke: "#5b6775", space: 90, values: (u, ticks) => ticks.map(clock) }, { stroke: "#5b6775", size: 50 }],
        legend: { live: true },
        series: [{ label: "Ora", value: (u, v) => (v == null ? "—" : clock(v)) },
          ...keys.map((k, i) => ({
          label: k, stroke: STATUS_COLORS[k] || COLORS[i % COLORS.length], width: 2, spanGaps: false,
          value: (u, v) => fmt(v),
        }))],
      };
      el.replaceChildren();
      chart = charts[id] = { plot: new uPlot(opts, data, el), signature };
    } else {
      chart.plot.setData(data);
    }
  }

  function trim() {
    while (times.length > KEEP) {
      times.shift();
      for (const bucket of Object.values(series)) for (const values of Object.values(bucket)) values.shift();
    }
  }

  function record(sample) {
    times.push(sample.at);
    if (previous) {
      const dt = Math.max(sample.at - previous.at, 0.001);
      const byStatus = rates(sample.ocsp.by_status, previous.ocsp.by_status, dt);
      const byHouse = rates(sample.ocsp.by_house, previous.ocsp.by_house, dt);
      const connects = rates(sample.connects, previous.connects, dt);
      const errors = rates(sample.errors_5xx, previous.errors_5xx, dt);
      for (const [k, v] of Object.entries(byStatus)) push("c-status", k, v);
      for (const [k, v] of Object.entries(byHouse)) push("c-house", k, v);
      for (const [k, v] of Object.entries(connects)) push("c-connect", "conectari " + k, v);
      push("c-connect", "suspendari", rate(sample.suspensions, previous.suspensions, dt));
      for (const [k, v] of Object.entries(errors)) push("c-errors", k, v);
      document.getElementById("k-ocsp").textContent = fmt(sum(byStatus));
      document.getElementById("k-connect").textContent = fmt(sum(connects));
      document.getElementById("k-errors").textContent = fmt(sum(errors));
    }
    // The outbox of every service as one line, each queue as its own, the dead-letter
    // queues together: a message there needs a person, whichever queue it came from.
    push("c-backlog", "outbox", sum(sample.outbox_backlog));
    let dead = null;
    for (const [k, v] of Object.entries(sample.queues || {})) {
      if (k.endsWith(".dlq")) dead = v == null ? dead : (dead || 0) + v;
      else push("c-backlog", k, v);
    }
    push("c-backlog", "dead-letter", dead);
    document.getElementById("k-susp").textContent = count(sample.suspensions);
    document.getElementById("k-backlog").textContent = count(sum(sample.outbox_backlog) + sum(sample.queues));
    // Series that did not report this time get a gap, so every column stays aligned.
    for (const bucket of Object.values(series)) {
      for (const values of Object.values(bucket)) if (values.length < times.length) values.push(null);
    }
    trim();
    ["c-status", "c-house", "c-connect", "c-backlog", "c-errors"].forEach(draw);
    previous = sample;
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.source, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 401) {
        statusText.textContent = "Sesiunea a expirat; reincarcati pagina";
        dot.className = "dot down";
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      const sample = await response.json();
      record(sample);
      raw.textContent = JSON.stringify(sample, null, 2);
      const missing = (sample.unreachable || []).length;
      statusText.textContent = missing ? "Nu raspund: " + sample.unreachable.join(", ") : "In timp real";
      dot.className = "dot " + (missing ? "down" : "live");
    } catch (e) {
      statusText.textContent = "Datele nu sunt disponibile; se reincearca";
      dot.className = "dot down";
    }
    setTimeout(poll, EVERY_MS);
  }

  window.addEventListener("resize", () => {
    for (const [id, chart] of Object.entries(charts)) {
      chart.plot.setSize({ width: Math.max(document.getElementById(id).clientWidth, 260), height: 220 });
    }
  });
  poll();
})();
