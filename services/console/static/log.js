// Log OCSP, live. Entries arrive over Server-Sent Events relayed by the console
// (/log-ocsp/stream). "Pauza" stops drawing, not receiving: entries that arrive while
// paused wait in a buffer and are drawn, in order, on "Continua", so nothing is lost.
// A dropped connection is resumed by the browser with Last-Event-ID, after the last
// entry received.
"use strict";

(() => {
  const MAX_ROWS = 500;
  const table = document.getElementById("log");
  if (!table) return;
  const body = document.getElementById("log-body");
  const form = document.getElementById("log-filters");
  const pauseButton = document.getElementById("pause");
  const bufferedNote = document.getElementById("buffered");
  const statusText = document.getElementById("live-status");
  const dot = document.getElementById("live-dot");
  let source = null;
  let paused = false;
  let buffer = [];
  let received = 0;

  const setState = (text, kind) => {
    statusText.textContent = text;
    dot.className = "dot " + kind;
  };

  const formatTime = (iso) => {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso || "";
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getDate())}-${p(d.getMonth() + 1)}-${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  };

  const labels = Array.from(table.tHead.rows[0].cells, (th) => th.textContent);
  const cell = (text, className) => {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    return td;
  };

  const draw = (entry) => {
    const placeholder = body.querySelector("tr.placeholder");
    if (placeholder) placeholder.remove();
    const tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.id = entry.id;
    tr.dataset.status = entry.status;
    tr.append(
      cell(formatTime(entry.at)),
      cell(entry.operation === "connect" ? "conectare" : "OCSP"),
      cell(entry.status, "st st-" + entry.status),
      cell(entry.cas),
      cell(entry.username),
      cell(entry.serial, "mono"),
      cell(entry.client),
      cell(entry.detail, "detail"),
    );
    Array.from(tr.cells).forEach((td, i) => { td.dataset.label = labels[i]; });
    body.prepend(tr); // newest on top
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  };

  const showBuffered = () => {
    bufferedNote.textContent = paused ? `${buffer.length} intrari noi in asteptare` : "";
  };

  const onEntry = (event) => {
    let entry;
    try {
      entry = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    received += 1;
    if (paused) {
      buffer.push(entry);
      showBuffered();
    } else {
      draw(entry);
    }
  };

  const connect = () => {
    if (source) source.close();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    source = new EventSource(table.dataset.stream + (params.toString() ? "?" + params : ""));
    setState("Se conecteaza…", "");
    source.onopen = () => setState(paused ? "Pauza (se primesc intrari)" : "In timp real", paused ? "paused" : "live");
    source.onmessage = onEntry;
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setState("Jurnalul nu este disponibil; reincarcati pagina", "down");
      } else {
        setState("Reconectare…", "down");
      }
    };
  };

  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Continua" : "Pauza";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      const waiting = buffer;
      buffer = [];
      waiting.forEach(draw);
    }
    setState(paused ? "Pauza (se primesc intrari)" : "In timp real", paused ? "paused" : "live");
    showBuffered();
  });

  form.addEventListener("submit", (event) => {
    // New filters, new stream: the table starts again from what matches them.
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
    body.replaceChildren();
    buffer = [];
    showBuffered();
    connect();
  });

  window.addEventListener("pagehide", () => source && source.close());
  connect();
})();
