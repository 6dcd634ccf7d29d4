// eventbridge live dashboard (docs/operators/dashboard.md). An ES module on the project's own
// client library, @eventbridge/client (clients/js), whose browser bundle the bridge serves next
// to this file: one implementation of resume for the dashboard, the examples and applications.
//
// One native WebSocket to the bridge (`/ws`, next to this page) subscribed to two rooms: the
// chosen project's room and the activity feed. The library keeps, per project, the log's epoch
// and one offset per room in localStorage (`eventbridge.dashboard.resume:<project>`), resumes
// every room from it after a reconnect or a reload, skips what a catch-up repeats, and reports
// `resync_required` before the room's snapshot (docs/client-library.md). This page keeps what the
// panels show in localStorage too (`eventbridge.dashboard.view.v2:<project>`): the library calls
// the page's handler, which applies the event and stores the view, then stores the room's offset,
// all in the same task, so a reload can never fall between the two.
//
// Authentication (docs/clients.md, "Authentication"). A bridge with EVENTBRIDGE_AUTH=jwt wants a
// token (a JWT): when it says so (`/api/projects` answers 401, or the library reports a refused
// token) the page shows a token form with the reason. The token is kept in sessionStorage only
// (this tab, gone when the tab closes; never localStorage, never the address); the library sends
// it as the FIRST WebSocket message, and the page as `Authorization: Bearer` on /api/projects.
// Once the bridge answers `authenticated`, the page keeps the rooms the token grants (the
// activity feed only with `activity_feed: true`). When the token expires, the library asks the
// page for a new one: the page forgets the old one and shows the form; a new token resumes every
// room from its stored offset, so nothing is lost. An anonymous bridge never asks.
//
// For tests and curious developers: window.dashboard = {received, state}. `received` lists the
// ids of the events processed for the current project, in arrival order, across reloads of this
// tab (sessionStorage); `state` holds the project, the connection state, this connection's joins,
// the resync notices seen, `auth` (whether the bridge asked for a token, why, and the grant of
// the current one: never the token itself), `view` (what the panels show) and `resume` (the
// stored epoch and offsets).

import { AuthError, connect, localStorageStore } from "./eventbridge-client.js";

const STORE = "eventbridge.dashboard";
const VIEW_VERSION = 2; // v1 kept the offsets in the view; the library keeps them now
const FEED_ROOM = "activity-feed";
const PROJECT_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_FEED = 60;
const MAX_LOG_LINES = 200;
const MAX_DEPLOYMENTS = 4;
const MAX_WORKFLOWS = 3;
const MAX_PROJECT_ERRORS = 5;
const MAX_RECEIVED = 2000;
const PROJECTS_EVERY_MS = 15000;
const BACKOFF_MS = { minMs: 500, maxMs: 15000 };
const TOKEN_KEY = `${STORE}.token`; // in sessionStorage only

// ---- storage -------------------------------------------------------------------------------

let storageWarned = false;

function readJson(storage, key, fallback) {
  try {
    const raw = storage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function writeJson(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch (error) {
    if (!storageWarned) {
      storageWarned = true;
      console.warn(`eventbridge dashboard: cannot store state (${error}); a reload starts over`);
    }
  }
}

// The token lives in this tab's sessionStorage only: not in localStorage (it would outlive the
// tab and be shared with every other tab), never in the address (proxy logs, history).
let authToken = null;
try {
  authToken = sessionStorage.getItem(TOKEN_KEY) || null;
} catch {
  authToken = null;
}

function storeToken(token) {
  authToken = token || null;
  try {
    if (authToken) sessionStorage.setItem(TOKEN_KEY, authToken);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // without storage the token lasts until the next reload
  }
}

const viewKey = (project) => `${STORE}.view.v${VIEW_VERSION}:${project}`;
const resumeKey = (project) => `${STORE}.resume:${project}`;
const receivedKey = (project) => `${STORE}.received:${project}`;
const PROJECT_KEY = `${STORE}.project`;

function emptyProjectView() {
  return { agents: {}, workflows: {}, deployments: {}, errors: [] };
}

function emptyView() {
  return { feed: [], ...emptyProjectView() };
}

function loadView(project) {
  const stored = readJson(localStorage, viewKey(project), null);
  if (!stored || typeof stored !== "object") return emptyView();
  return { ...emptyView(), ...stored };
}

// ---- page state ----------------------------------------------------------------------------

const state = {
  project: null,
  // idle | connecting | live | catching_up | resyncing | reconnecting | auth (waiting for a token)
  connection: "idle",
  retryAt: null, // when the next reconnect attempt starts (ms since the epoch)
  attempt: 0, // reconnect attempts since the page was last live
  joins: [], // this connection's joins: {room, since, epoch, offset}
  resyncs: [], // resync notices seen by this page load
  // required: the bridge asked for a token; refused: why the form is shown ({code, message}) or
  // null; grant: the `authenticated` reply of this connection ({subject, projects,
  // activity_feed, expires_at, anonymous}) or null.
  auth: { required: false, refused: null, grant: null },
  view: emptyView(),
  get resume() {
    return client ? client.resumeState : { epoch: null, offsets: {} };
  },
};
const dashboard = { received: [], state };
window.dashboard = dashboard;

let projectRoom = null;
let client = null; // the library's client for the current project (and token)
let unloading = false;

function persist() {
  writeJson(localStorage, viewKey(state.project), state.view);
  writeJson(sessionStorage, receivedKey(state.project), dashboard.received);
}

// ---- applying events ---------------------------------------------------------------------

function roomOf(event) {
  return event.project_id === state.project ? projectRoom : FEED_ROOM;
}

function agentOf(id) {
  const agents = state.view.agents;
  if (!agents[id]) {
    agents[id] = {
      id, status: null, message: null, progress: null, stage: null, artifacts: null,
      summary: null, generationId: null, error: null, at: null,
    };
  }
  return agents[id];
}

function workflowOf(id, offset) {
  const workflows = state.view.workflows;
  if (!workflows[id]) workflows[id] = { id, steps: {}, order: [], offset };
  const workflow = workflows[id];
  workflow.offset = offset;
  const ids = Object.keys(workflows);
  if (ids.length > MAX_WORKFLOWS) {
    ids.sort((a, b) => workflows[a].offset - workflows[b].offset);
    for (const old of ids.slice(0, ids.length - MAX_WORKFLOWS)) delete workflows[old];
  }
  return workflow;
}

function stepOf(workflow, id) {
  if (!workflow.steps[id]) {
    workflow.steps[id] = { id, status: null, user: null, changes: {}, completed: false, result: null };
    workflow.order.push(id);
  }
  return workflow.steps[id];
}

function deploymentOf(id, offset) {
  const deployments = state.view.deployments;
  if (!deployments[id]) {
    deployments[id] = { id, status: null, progress: null, message: null, logs: [], offset, at: null };
  }
  const deployment = deployments[id];
  deployment.offset = offset;
  const ids = Object.keys(deployments);
  if (ids.length > MAX_DEPLOYMENTS) {
    ids.sort((a, b) => deployments[a].offset - deployments[b].offset);
    for (const old of ids.slice(0, ids.length - MAX_DEPLOYMENTS)) delete deployments[old];
  }
  return deployment;
}

const clamp01 = (value) => (typeof value === "number" && Number.isFinite(value)
  ? Math.min(1, Math.max(0, value)) : null);

// Events that set an agent's or a deployment's current state. A replayed copy of one (an
// operator's `eventbridge replay`, marked `replayed: true`) is history shown again: like the
// bridge's snapshot state, the page does not let it roll the current state back.
const STATE_TYPES = new Set([
  "agent_status", "progress_update", "generation_complete", "error", "deployment_status",
]);

function apply(event) {
  if (event.replayed && STATE_TYPES.has(event.type)) return [];
  const d = event.data || {};
  const at = event.occurred_at || null;
  switch (event.type) {
    case "agent_status": {
      const agent = agentOf(d.agent_id);
      agent.status = d.status;
      agent.at = at;
      if (d.status === "queued") {
        // A new run: forget the previous run's progress, artifacts and error.
        Object.assign(agent, { progress: null, stage: null, artifacts: null, summary: null, generationId: null, error: null });
      }
      if (d.message || d.status === "queued") agent.message = d.message || null;
      return ["agents"];
    }
    case "progress_update": {
      const agent = agentOf(d.agent_id);
      agent.progress = clamp01(d.progress);
      if (d.stage) agent.stage = d.stage;
      if (d.message) agent.message = d.message;
      agent.at = at;
      return ["agents"];
    }
    case "generation_complete": {
      const agent = agentOf(d.agent_id);
      agent.artifacts = Array.isArray(d.artifacts) ? d.artifacts : [];
      agent.summary = d.summary || null;
      agent.generationId = d.generation_id || null;
      agent.progress = 1;
      agent.at = at;
      return ["agents"];
    }
    case "error": {
      const error = { code: d.code, message: d.message, retryable: Boolean(d.retryable), at };
      if (d.agent_id) {
        const agent = agentOf(d.agent_id);
        agent.error = error;
        agent.at = at;
      } else {
        state.view.errors.unshift(error);
        state.view.errors.length = Math.min(state.view.errors.length, MAX_PROJECT_ERRORS);
      }
      return ["agents"];
    }
    case "activity_created": {
      if (state.view.feed.some((item) => item.id === event.id)) return []; // a replay
      state.view.feed.unshift({
        id: event.id, project: event.project_id, actor: d.actor, action: d.action,
        target: d.target || null, kind: d.activity_type || null,
        priority: d.priority || "normal", at,
      });
      state.view.feed.length = Math.min(state.view.feed.length, MAX_FEED);
      return ["feed"];
    }
    case "step_updated": {
      const step = stepOf(workflowOf(d.workflow_id, event.offset), d.step_id);
      if (d.status) step.status = d.status;
      if (d.user_id) step.user = d.user_id;
      if (d.changes && typeof d.changes === "object") step.changes = { ...step.changes, ...d.changes };
      step.at = at;
      return ["workflows"];
    }
    case "step_completed": {
      const step = stepOf(workflowOf(d.workflow_id, event.offset), d.step_id);
      step.completed = true;
      step.status = "completed";
      if (d.user_id) step.user = d.user_id;
      if (d.result !== undefined && d.result !== null) step.result = d.result;
      step.at = at;
      return ["workflows"];
    }
    case "deployment_status": {
      const deployment = deploymentOf(d.deployment_id, event.offset);
      deployment.status = d.status;
      if (typeof d.progress === "number") deployment.progress = clamp01(d.progress);
      deployment.message = d.message || null;
      deployment.at = at;
      return ["deployments"];
    }
    case "deployment_log": {
      const deployment = deploymentOf(d.deployment_id, event.offset);
      deployment.logs.push({ stream: d.stream, line: String(d.line ?? "") });
      if (deployment.logs.length > MAX_LOG_LINES) {
        deployment.logs.splice(0, deployment.logs.length - MAX_LOG_LINES);
      }
      deployment.at = at;
      return ["deployments"];
    }
    default:
      return []; // an event type this page does not know yet
  }
}

// Called by the library for each event of the page's rooms, once: a catch-up's repeats are
// already skipped. Snapshot events (the room's state after a fresh join or a resync) are applied
// like any other.
function onEvent(event) {
  if (unloading) return;
  const panels = apply(event);
  dashboard.received.push(event.id);
  if (dashboard.received.length > MAX_RECEIVED) {
    dashboard.received.splice(0, dashboard.received.length - MAX_RECEIVED);
  }
  persist(); // the view; the library stores the room's offset right after this returns
  schedule(...panels, "header");
}

function onJoined(join) {
  state.joins.push(join);
  if (join.since === null && join.room === projectRoom) {
    // A fresh join: the project's current state follows; start its panels from it.
    Object.assign(state.view, emptyProjectView());
    persist();
  }
  schedule("agents", "workflows", "deployments", "feed", "header");
}

function onResync(notice) {
  // The bridge could not send what the room missed; the room's state follows.
  state.resyncs.push(notice);
  if (notice.room === projectRoom) {
    Object.assign(state.view, emptyProjectView());
  } else {
    state.view.feed.unshift({ gap: notice.reason, at: new Date().toISOString() });
    state.view.feed.length = Math.min(state.view.feed.length, MAX_FEED);
  }
  persist();
  showNotice(`Could not resume ${notice.room} (${notice.reason.replace(/_/g, " ")}): ` +
    "some events were missed; showing the current state.");
  schedule("agents", "workflows", "deployments", "feed", "header");
}

function onError(error) {
  if (error.code === "forbidden") {
    showNotice(`Not allowed: ${error.message}`);
  } else {
    console.error(`eventbridge: ${error.message}`);
  }
}

// ---- authentication ------------------------------------------------------------------------

const grants = (grant, project) =>
  grant.projects === "*" || (Array.isArray(grant.projects) && grant.projects.includes(project));

// The library asks before every connection. After an expiry the old token is useless: forget
// it and say so (the client then stops, and the form asks for a new one).
function tokenProvider({ reason }) {
  if (reason === "token_expired") {
    storeToken(null);
    throw new AuthError("token_expired", "the token has expired");
  }
  return authToken;
}

// Before the rooms are joined: the grant decides which of them this connection keeps.
function onAuthenticated(grant) {
  state.joins = [];
  state.auth.grant = grant;
  state.auth.refused = null;
  if (grant && !grant.anonymous) state.auth.required = true;
  schedule("auth", "agents", "feed");
  if (!grant) return; // no token sent: an anonymous bridge (or one that refuses next)
  if (!grants(grant, state.project)) {
    // Another project may be granted (the picker lists those), or another token may grant it.
    needToken("forbidden", `this token does not grant project ${state.project}`, false);
    return;
  }
  if (!grant.activity_feed) client.unsubscribe(FEED_ROOM);
}

// The bridge wants a (new) token: show the form saying why, and stop connecting until one is
// entered (or, for `forbidden`, until another project is chosen). An invalid or expired token
// is forgotten; the view and its stored offsets are kept, so the next connection resumes.
function needToken(code, message, drop = true) {
  if (drop) storeToken(null);
  state.auth.required = true;
  state.auth.refused = { code, message };
  if (code !== "forbidden") state.auth.grant = null;
  disconnect();
  state.attempt = 0;
  setConnection("auth");
  schedule("auth", "agents", "feed");
}

const AUTH_TITLES = {
  auth_required: "Token required",
  invalid_token: "Token refused",
  token_expired: "Token expired",
  forbidden: "Not allowed",
};

function renderAuth() {
  const form = $("token-form");
  const refused = state.auth.refused;
  form.hidden = refused === null;
  if (refused === null) return;
  form.dataset.code = refused.code;
  $("token-title").textContent = AUTH_TITLES[refused.code] || "Token refused";
  let reason = refused.message || "";
  if (refused.code === "auth_required") {
    reason = "This bridge shows events only to holders of an access token (a JWT). Paste yours.";
  } else if (refused.code === "token_expired") {
    reason = "The token has expired. Paste a new one: the page resumes where it stopped.";
  }
  $("token-reason").textContent = reason;
}

// ---- the connection ------------------------------------------------------------------------

function bridgeUrl() {
  const url = new URL(".", location.href);
  url.search = "";
  url.hash = "";
  return url.href;
}

function connectProject() {
  disconnect();
  if (!state.project || unloading || state.auth.refused) return;
  state.joins = [];
  client = connect({
    url: bridgeUrl(),
    transport: "websocket",
    token: tokenProvider,
    store: localStorageStore(resumeKey(state.project)),
    backoff: BACKOFF_MS,
    onStatus,
    onJoined,
    onResync,
    onAuthenticated,
    onAuthError: (error) => needToken(error.code, error.reason),
    onError,
  });
  client.onEvent(onEvent);
  // The project room first: an activity of the project belongs to both rooms, and the bridge
  // delivers it through the room joined first (the library joins project rooms first anyway).
  client.subscribe({ project: state.project });
  client.subscribe(FEED_ROOM);
}

function disconnect() {
  const old = client;
  client = null;
  if (old) old.close();
}

function onStatus(status, detail) {
  state.attempt = detail.attempt;
  if (status === "offline") {
    if (state.auth.refused || !client) return; // the token form (or nothing) says why
    state.retryAt = detail.retryAt;
    setConnection("reconnecting");
  } else if (status === "connecting") {
    setConnection(detail.attempt === 0 && state.connection !== "reconnecting" ? "connecting" : "reconnecting");
  } else {
    setConnection(status);
  }
}

function setConnection(value) {
  state.connection = value;
  if (value !== "reconnecting") state.retryAt = null;
  renderConnection();
  clearInterval(countdown);
  countdown = state.retryAt ? setInterval(renderConnection, 250) : null;
}

let countdown = null;

// ---- projects ----------------------------------------------------------------------------

function openProject(project) {
  if (!PROJECT_RE.test(project || "")) return false;
  try {
    localStorage.setItem(PROJECT_KEY, project);
  } catch {
    // remembering is a convenience
  }
  const url = new URL(location.href);
  if (url.searchParams.get("project") !== project) {
    url.searchParams.set("project", project);
    history.replaceState(null, "", url);
  }
  if (project === state.project) return true;
  disconnect();
  if (state.auth.refused && state.auth.refused.code === "forbidden") {
    // The token did not grant the previous project; it may grant this one.
    state.auth.refused = null;
    schedule("auth", "agents");
  }
  state.project = project;
  projectRoom = `project:${project}`;
  state.view = loadView(project);
  state.resyncs = [];
  state.attempt = 0;
  dashboard.received = readJson(sessionStorage, receivedKey(project), []);
  document.title = `${project} · eventbridge`;
  hideNotice();
  schedule("agents", "workflows", "deployments", "feed", "header", "picker");
  connectProject();
  return true;
}

let knownProjects = [];

async function refreshProjects() {
  const token = authToken;
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(new URL("api/projects", location.href), {
      cache: "no-store", headers,
    });
    if (token !== authToken) return; // another token was entered meanwhile: its own call follows
    if (response.status === 401) {
      // {"detail": {"code", "message"}}: no token, or this one is invalid or expired.
      const detail = (await response.json().catch(() => ({}))).detail || {};
      if (token !== authToken) return;
      needToken(detail.code || "auth_required", detail.message || "");
      return;
    }
    if (!response.ok) return;
    const body = await response.json();
    knownProjects = (body.projects || []).map((item) => item.project_id);
    schedule("picker");
    if (!state.project && knownProjects.length) openProject(knownProjects[0]);
  } catch {
    // The bridge is unreachable: the connection pill already says so.
  }
}

function initialProject() {
  const fromQuery = new URLSearchParams(location.search).get("project");
  if (fromQuery && PROJECT_RE.test(fromQuery)) return fromQuery;
  let remembered = null;
  try {
    remembered = localStorage.getItem(PROJECT_KEY);
  } catch {
    remembered = null;
  }
  return remembered && PROJECT_RE.test(remembered) ? remembered : null;
}

// ---- rendering ---------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  // textContent, never innerHTML: event data is untrusted input.
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const AGENT_TONES = {
  idle: "neutral", queued: "queued", running: "info", waiting: "warn",
  succeeded: "ok", failed: "bad", cancelled: "muted",
};
const PRIORITY_TONES = { low: "muted", normal: "neutral", high: "warn", critical: "bad" };

function deploymentTone(status) {
  const value = String(status || "").toLowerCase();
  if (/fail|error/.test(value)) return "bad";
  if (/succe|complete|deployed|done|healthy/.test(value)) return "ok";
  if (/progress|running|deploying|applying|active/.test(value)) return "info";
  if (/cancel|roll|abort/.test(value)) return "warn";
  if (/pending|queued|waiting/.test(value)) return "queued";
  return "neutral";
}

function badge(text, tone) {
  return el("span", `badge tone-${tone}`, String(text || "unknown").replace(/_/g, " "));
}

function progressBar(fraction, tone, label) {
  const percent = fraction === null || fraction === undefined ? null : Math.round(fraction * 100);
  const bar = el("div", "progress");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-label", label);
  if (percent !== null) bar.setAttribute("aria-valuenow", String(percent));
  const fill = el("div", `progress-fill tone-${tone}`);
  fill.style.width = `${percent ?? 0}%`;
  bar.append(fill);
  return { bar, percent };
}

function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function empty(text) {
  return el("p", "empty", text);
}

function renderConnection() {
  const pill = $("connection");
  pill.dataset.state = state.connection;
  let text = {
    idle: "No project", connecting: "Connecting…", live: "Live", auth: "Token needed",
    catching_up: "Catching up…", resyncing: "Resyncing…",
  }[state.connection];
  if (state.connection === "reconnecting") {
    if (state.retryAt) {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      text = `Reconnecting in ${seconds} s`;
    } else {
      text = "Reconnecting…";
    }
    pill.title = `attempt ${state.attempt}`;
  } else {
    pill.title = state.connection === "live" && client ? `following ${client.rooms.join(" and ")}` : "";
  }
  $("connection-text").textContent = text;
}

function renderHeader() {
  const resume = state.resume;
  const offsets = Object.values(resume.offsets).filter((value) => typeof value === "number");
  $("offset").textContent = offsets.length ? `offset ${Math.max(...offsets)}` : "";
  $("offset").title = resume.epoch ? `log epoch ${resume.epoch}` : "";
  $("footer-project").textContent = state.project ? `Project ${state.project}` : "No project selected";
}

function renderPicker() {
  const select = $("project-select");
  const options = [...new Set([...(state.project ? [state.project] : []), ...knownProjects])];
  // Rebuilt only when the set of projects changes, not their order, so an open list stays put.
  const current = [...select.options].slice(1).map((option) => option.value);
  if ([...current].sort().join("\n") !== [...options].sort().join("\n")) {
    select.replaceChildren(el("option", null, "Known projects…"));
    select.firstChild.value = "";
    for (const project of options) {
      const option = el("option", null, project);
      option.value = project;
      select.append(option);
    }
  }
  select.value = state.project || "";
  const input = $("project-input");
  if (document.activeElement !== input) input.value = state.project || "";
}

function renderAgents() {
  const container = $("agents");
  const agents = Object.values(state.view.agents).sort((a, b) => a.id.localeCompare(b.id));
  $("agents-count").textContent = agents.length ? `${agents.length}` : "";
  const errors = $("project-errors");
  errors.replaceChildren(...state.view.errors.map((error) => errorBox(error)));
  if (!agents.length) {
    let hint = state.project ? "Waiting for agent events…" : "Choose a project above.";
    if (state.auth.refused) hint = "Waiting for an access token…";
    container.replaceChildren(empty(hint));
    return;
  }
  container.replaceChildren(...agents.map(agentCard));
}

function errorBox(error) {
  const box = el("div", "error-box");
  const head = el("div", "error-head");
  head.append(el("span", "error-code", error.code || "error"));
  head.append(el("span", `error-tag ${error.retryable ? "retryable" : "fatal"}`,
    error.retryable ? "retryable" : "not retryable"));
  if (error.at) head.append(el("span", "error-time", clock(error.at)));
  box.append(head, el("div", "error-message", error.message || ""));
  return box;
}

function agentCard(agent) {
  const tone = AGENT_TONES[agent.status] || "neutral";
  const card = el("article", `card agent status-${tone}`);
  card.dataset.agent = agent.id;
  const head = el("div", "card-head");
  head.append(el("span", "avatar", agent.id.slice(0, 1).toUpperCase()));
  const title = el("div", "card-title");
  const name = el("h3", null, agent.id);
  name.title = agent.id;
  title.append(name);
  title.append(el("span", "card-sub", agent.at ? `updated ${clock(agent.at)}` : ""));
  head.append(title, badge(agent.status, tone));
  card.append(head);

  const { bar, percent } = progressBar(agent.progress, tone, `${agent.id} progress`);
  card.append(bar);
  const meta = el("div", "progress-meta");
  let stage = agent.stage;
  if (agent.status === "succeeded") stage = "complete";
  else if (agent.status === "queued") stage = null;
  meta.append(stage
    ? el("span", "stage", stage)
    : el("span", "stage placeholder", percent === null ? "no progress yet" : ""));
  meta.append(el("span", "percent", percent === null ? "–" : `${percent}%`));
  card.append(meta);

  // A failed status often repeats the error's code as its message: the error box says it.
  if (agent.message && !(agent.error && agent.message === agent.error.code)) {
    card.append(el("p", "message", agent.message));
  }
  if (agent.artifacts && agent.artifacts.length) {
    const artifacts = el("div", "artifacts");
    artifacts.append(el("div", "artifacts-title", agent.summary || "Artifacts"));
    const list = el("ul", "artifact-list");
    for (const artifact of agent.artifacts) {
      const item = el("li", "artifact");
      item.title = artifact.uri || "";
      item.append(el("span", "artifact-name", artifact.name));
      if (artifact.kind) item.append(el("span", "artifact-kind", artifact.kind));
      list.append(item);
    }
    artifacts.append(list);
    card.append(artifacts);
  }
  if (agent.error) card.append(errorBox(agent.error));
  return card;
}

function renderFeed() {
  const list = $("feed");
  const grant = state.auth.grant;
  if (grant && !grant.activity_feed) {
    list.replaceChildren(el("li", "empty", "Your token does not include the activity feed."));
    return;
  }
  if (!state.view.feed.length) {
    list.replaceChildren(el("li", "empty", "No activity yet."));
    return;
  }
  list.replaceChildren(...state.view.feed.map(feedItem));
}

function feedItem(item) {
  if (item.gap) {
    return el("li", "feed-gap", `Some activity was missed here (${item.gap.replace(/_/g, " ")})`);
  }
  const li = el("li", "feed-item");
  li.dataset.id = item.id;
  li.append(el("span", "avatar small", String(item.actor || "?").slice(0, 1).toUpperCase()));
  const body = el("div", "feed-body");
  const line = el("div", "feed-line");
  line.append(el("strong", "actor", item.actor), ` ${item.action || ""}`);
  if (item.target) line.append(" ", el("span", "target", item.target));
  body.append(line);
  const meta = el("div", "feed-meta");
  const parts = [item.kind, item.project || "global", clock(item.at)].filter(Boolean);
  meta.textContent = parts.join(" · ");
  body.append(meta);
  li.append(body, badge(item.priority, PRIORITY_TONES[item.priority] || "neutral"));
  return li;
}

function renderWorkflows() {
  const container = $("workflows");
  const workflows = Object.values(state.view.workflows).sort((a, b) => b.offset - a.offset);
  $("workflows-count").textContent = workflows.length ? `${workflows.length}` : "";
  if (!workflows.length) {
    container.replaceChildren(empty(state.project ? "No workflow activity yet." : ""));
    return;
  }
  container.replaceChildren(...workflows.map(workflowBlock));
}

function describeChanges(step) {
  const parts = Object.entries(step.changes || {}).map(([key, value]) =>
    `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  if (step.result && typeof step.result === "object") {
    parts.push(...Object.entries(step.result).map(([key, value]) => `${key}: ${JSON.stringify(value)}`));
  } else if (step.result !== null && step.result !== undefined) {
    parts.push(`result: ${JSON.stringify(step.result)}`);
  }
  return parts.join(" · ");
}

function workflowBlock(workflow) {
  const block = el("article", "workflow");
  block.dataset.workflow = workflow.id;
  const steps = workflow.order.map((id) => workflow.steps[id]);
  const done = steps.filter((step) => step.completed).length;
  const head = el("div", "workflow-head");
  head.append(el("h3", null, workflow.id), el("span", "count", `${done}/${steps.length} done`));
  block.append(head);
  const list = el("ol", "steps");
  for (const step of steps) {
    const item = el("li", `step${step.completed ? " done" : ""}`);
    item.dataset.step = step.id;
    item.append(el("span", "check", step.completed ? "✓" : ""));
    const body = el("div", "step-body");
    const line = el("div", "step-line");
    line.append(el("span", "step-name", step.id));
    if (step.user) line.append(el("span", "step-user", step.user));
    body.append(line);
    const details = describeChanges(step);
    if (details) {
      const changes = el("div", "step-changes", details);
      changes.title = details;
      body.append(changes);
    }
    const tone = step.completed ? "ok" : step.status === "in_review" ? "warn" : "info";
    item.append(body, badge(step.status || "updated", tone));
    list.append(item);
  }
  block.append(list);
  return block;
}

function renderDeployments() {
  const container = $("deployments");
  // Keep each log box where the reader left it; follow the tail when it was at the bottom.
  const scroll = {};
  for (const box of container.querySelectorAll(".log")) {
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    scroll[box.dataset.deployment] = atBottom ? null : box.scrollTop;
  }
  const deployments = Object.values(state.view.deployments).sort((a, b) => b.offset - a.offset);
  $("deployments-count").textContent = deployments.length ? `${deployments.length}` : "";
  if (!deployments.length) {
    container.replaceChildren(empty(state.project ? "No deployments yet." : ""));
    return;
  }
  container.replaceChildren(...deployments.map(deploymentCard));
  for (const box of container.querySelectorAll(".log")) {
    const kept = scroll[box.dataset.deployment];
    box.scrollTop = kept === undefined || kept === null ? box.scrollHeight : kept;
  }
}

function deploymentCard(deployment) {
  const tone = deploymentTone(deployment.status);
  const card = el("article", `card deployment status-${tone}`);
  card.dataset.deployment = deployment.id;
  const head = el("div", "card-head");
  const title = el("div", "card-title");
  title.append(el("h3", null, deployment.id));
  title.append(el("span", "card-sub", [deployment.message, clock(deployment.at)].filter(Boolean).join(" · ")));
  head.append(title, badge(deployment.status, tone));
  card.append(head);
  const { bar, percent } = progressBar(deployment.progress, tone, `${deployment.id} progress`);
  const row = el("div", "progress-row");
  row.append(bar, el("span", "percent", percent === null ? "–" : `${percent}%`));
  card.append(row);
  const log = el("div", "log");
  log.dataset.deployment = deployment.id;
  log.setAttribute("role", "log");
  log.setAttribute("aria-label", `${deployment.id} log`);
  if (!deployment.logs.length) log.append(el("div", "log-line log-empty", "no output yet"));
  for (const entry of deployment.logs) {
    log.append(el("div", `log-line ${entry.stream === "stderr" ? "stderr" : "stdout"}`, entry.line));
  }
  card.append(log);
  return card;
}

let notice = null;

function showNotice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(notice);
  notice = setTimeout(hideNotice, 15000);
}

function hideNotice() {
  clearTimeout(notice);
  $("notice").hidden = true;
}

const RENDERERS = {
  agents: renderAgents,
  feed: renderFeed,
  workflows: renderWorkflows,
  deployments: renderDeployments,
  header: renderHeader,
  picker: renderPicker,
  auth: renderAuth,
};
const dirty = new Set();
let frameQueued = false;

function schedule(...panels) {
  for (const panel of panels) dirty.add(panel);
  if (frameQueued) return;
  frameQueued = true;
  // Many events in a burst render once; the timer covers tabs where frames are throttled.
  requestAnimationFrame(flush);
  setTimeout(flush, 150);
}

function flush() {
  if (!frameQueued) return;
  frameQueued = false;
  const panels = [...dirty];
  dirty.clear();
  for (const panel of panels) RENDERERS[panel]();
}

// ---- start -------------------------------------------------------------------------------

$("project-form").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const input = $("project-input");
  const value = input.value.trim();
  if (!openProject(value)) {
    input.setCustomValidity("1–64 letters, digits, _ or -");
    input.reportValidity();
  }
});
$("project-input").addEventListener("input", (changed) => changed.target.setCustomValidity(""));
$("token-form").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const input = $("token-input");
  const token = input.value.trim();
  if (!token) {
    input.setCustomValidity("paste an access token (a JWT)");
    input.reportValidity();
    return;
  }
  input.value = "";
  storeToken(token);
  state.auth.refused = null;
  state.attempt = 0;
  schedule("auth", "agents");
  connectProject(); // resumes every room from its stored offset
  refreshProjects();
});
$("token-input").addEventListener("input", (changed) => changed.target.setCustomValidity(""));
$("project-select").addEventListener("change", (changed) => {
  if (changed.target.value) openProject(changed.target.value);
});

// Nothing is applied once the page is going away, so what is stored is what was applied.
window.addEventListener("pagehide", () => {
  unloading = true;
  if (client) client.close();
});
window.addEventListener("pageshow", (shown) => {
  if (shown.persisted) {
    // Back from the back/forward cache: the old connection is gone; resume from storage.
    unloading = false;
    connectProject();
  }
});
window.addEventListener("online", () => {
  // Back online: try at once rather than at the end of the backoff (not while a token is needed).
  if (client && state.connection === "reconnecting") client.connect();
});

const first = initialProject();
if (first) {
  openProject(first);
} else {
  setConnection("idle");
  schedule("agents", "workflows", "deployments", "feed", "header", "picker");
}
refreshProjects();
setInterval(refreshProjects, PROJECTS_EVERY_MS);

// ---- presence ------------------------------------------------------------------------------
// Who is in the selected project right now, over every replica (docs/clients.md, "Presence"):
// GET /api/projects/<project>/presence every PRESENCE_EVERY_MS, with the token as
// `Authorization: Bearer` like /api/projects. Each member shows its name (or user id), its
// connections when more than one, and its state; this page's own connection is one of them.
// window.dashboard.presence lists the user ids shown.

const PRESENCE_EVERY_MS = 2000;
let presenceMembers = [];
let presenceNote = "";

async function refreshPresence() {
  const project = state.project;
  const token = authToken;
  if (!project) {
    presenceMembers = [];
    presenceNote = "";
    renderPresence();
    return;
  }
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const path = `api/projects/${encodeURIComponent(project)}/presence`;
    const response = await fetch(new URL(path, location.href), { cache: "no-store", headers });
    if (project !== state.project || token !== authToken) return; // a newer call follows
    presenceMembers = response.ok ? (await response.json()).members || [] : [];
    presenceNote = {
      401: "a token is needed",
      403: "the token does not grant this project",
      404: "presence is off on this bridge",
    }[response.status] || "";
  } catch {
    return; // the bridge is unreachable: the connection pill already says so
  }
  renderPresence();
}

function renderPresence() {
  const count = presenceMembers.length;
  $("presence-count").textContent = presenceNote || (count === 1 ? "1 user" : `${count} users`);
  $("presence-list").replaceChildren(...presenceMembers.map(presenceItem));
  dashboard.presence = presenceMembers.map((member) => member.user_id);
}

function presenceItem(member) {
  const item = el("li", "presence-member");
  item.dataset.user = member.user_id;
  const since = new Date(member.since * 1000).toLocaleTimeString();
  item.title = `${member.user_id}, here since ${since}`;
  item.append(el("span", "presence-name", member.name || member.user_id));
  if (member.connections > 1) {
    item.append(el("span", "presence-connections", `×${member.connections}`));
  }
  if (member.state) {
    const text = Object.entries(member.state)
      .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(", ");
    item.append(el("span", "presence-state", text.slice(0, 80)));
  }
  return item;
}

refreshPresence();
setInterval(refreshPresence, PRESENCE_EVERY_MS);
