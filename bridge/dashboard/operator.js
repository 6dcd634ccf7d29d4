// The dashboard's operator panel: this bridge replica's connections per transport, events/s,
// lag, delivery latency p50/p99 and dead letters, polled from /api/operator (the same numbers
// /metrics serves; docs/observability.md). Rates and percentiles come from the difference
// between two polls, as Prometheus computes them between two scrapes.
// For tests: window.operatorPanel = {polls, last} (polls answered, and the numbers shown).

const EVERY_MS = 2000;
const $ = (id) => document.getElementById(id);
const panel = { polls: 0, last: null };
window.operatorPanel = panel;
let previous = null;

function show(id, text, tone) {
  const node = $(id);
  node.textContent = text;
  if (tone) node.dataset.tone = tone; else delete node.dataset.tone;
}

function seconds(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value === 0) return "0 s";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
  return `${value.toFixed(1)} s`;
}

// The q-quantile of the observations between two polls: linear inside the bucket it falls in
// (like Prometheus's histogram_quantile); null when nothing was observed.
function quantile(q, now, before) {
  const bounds = now.le.map((le) => (le === "+Inf" ? Infinity : Number(le)));
  const counts = now.cumulative.map((count, i) => count - (before ? before.cumulative[i] : 0));
  const total = counts[counts.length - 1];
  if (!total) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i += 1) {
    if (counts[i] >= rank) {
      if (bounds[i] === Infinity) return bounds[i - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      const inside = counts[i] - below;
      return lower + (bounds[i] - lower) * (inside ? (rank - below) / inside : 1);
    }
  }
  return null;
}

function render(now) {
  const shown = {
    websocket: now.connections.websocket ?? 0,
    socketio: now.connections.socketio ?? 0,
    eventsPerSecond: null, p50: null, p99: null,
    lagSeconds: now.lag_seconds, lagRecords: now.lag_records, deadLetters: now.dead_letters,
  };
  if (previous) {
    const elapsed = Math.max(now.time - previous.time, 1e-3);
    shown.eventsPerSecond = (now.events - previous.events) / elapsed;
    shown.p50 = quantile(0.5, now.latency, previous.latency);
    shown.p99 = quantile(0.99, now.latency, previous.latency);
  }
  show("op-websocket", String(shown.websocket));
  show("op-socketio", String(shown.socketio));
  show("op-events", shown.eventsPerSecond === null ? "–" : shown.eventsPerSecond.toFixed(1));
  const lagTone = now.lag_seconds > 30 ? "bad" : now.lag_seconds > 5 ? "warn" : "";
  show("op-lag", `${seconds(now.lag_seconds)} · ${now.lag_records} rec`, lagTone);
  show("op-p50", seconds(shown.p50));
  show("op-p99", seconds(shown.p99), shown.p99 > 1 ? "warn" : "");
  show("op-dead", String(now.dead_letters), now.dead_letters > 0 ? "warn" : "");
  $("operator-note").textContent = now.broker_connected ? "" : "broker disconnected";
  panel.last = shown;
}

async function poll() {
  try {
    const response = await fetch(new URL("api/operator", location.href), { cache: "no-store" });
    if (response.status === 404) {
      // EVENTBRIDGE_METRICS=false, or the metrics are on an internal port: nothing to show here.
      $("operator-note").textContent = "metrics are not served on this port";
      return;
    }
    if (!response.ok) return;
    const now = await response.json();
    render(now);
    previous = now;
    panel.polls += 1;
  } catch {
    // The bridge is unreachable: the connection pill already says so.
  }
}

poll();
setInterval(poll, EVERY_MS);
