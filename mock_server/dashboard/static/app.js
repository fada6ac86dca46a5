// The emulator's dashboard: reads and changes the emulator only through the control plane,
// the public API (POST .../status, signed on the server) and the tenant's event feed.
"use strict";

const SETTINGS = JSON.parse(document.getElementById("settings").textContent);
const STATUSES = SETTINGS.statuses; // {"4": "WAIT_TRANSACT", ...}, from the server's rules
const MAX_POINTS = 600; // the chart keeps this many moments, the oldest dropped
const JOURNAL_EVERY_MS = 2000;
const RECONNECT_MS = 1000;
const POLL_MS = 300; // without WebSockets, how often the event log is read

const view = {
  tenant: null, // the tenant's state, as GET /__admin/tenants/{id} answers it
  agents: new Map(), // agent id -> fixture-format agent
  cards: new Map(), // agent id -> its card
  socket: null,
  polling: null, // the tenant whose event log is polled, without WebSockets
  lastMessageId: null,
  loading: new Set(), // while the tenant is read, each read's list of the events meanwhile
  series: [], // [{t, counts: {status: n}}]
};

const $ = (selector, root = document) => root.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(text) {
  const box = $("#message");
  box.textContent = text;
  box.hidden = !text;
}

// -- calls -------------------------------------------------------------------------------

async function admin(method, path, body) {
  const headers = {};
  if (SETTINGS.adminToken) headers[SETTINGS.adminHeader] = SETTINGS.adminToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(SETTINGS.adminRoot + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (ignored) {
    data = null;
  }
  if (!answer.ok) {
    const reason = data && data.detail ? data.detail : text.slice(0, 200);
    throw new Error(`${method} ${path}: ${answer.status} ${reason}`);
  }
  return data;
}

const tenantPath = (suffix = "") => `/tenants/${encodeURIComponent(view.tenantId)}${suffix}`;

async function guarded(action) {
  try {
    say("");
    await action();
  } catch (error) {
    say(error.message);
  }
}

// -- labels ------------------------------------------------------------------------------

function statusLabel(status) {
  return `${status} ${STATUSES[String(status)] || "?"}`;
}

function codeLabel(agent) {
  const listId = agent["status-code-list-id"];
  if (listId === undefined) return "no status code";
  const itemId = agent["status-code-item-id"];
  const list = view.tenant["status-code-lists"].find((candidate) => candidate.id === listId);
  const item = list ? list.items.find((candidate) => candidate.id === itemId) : undefined;
  const short = agent["status-code-item-short-code"] || (item ? item["short-code"] : "");
  const listName = list ? ` ${list.name}` : "";
  return `${listId}${listName} / ${itemId}${short ? ` ${short}` : ""}`;
}

function codesOfGroup(groupId) {
  const group = view.tenant.groups.find((candidate) => candidate.id === groupId);
  const listIds = group ? group["status-code-lists"] : [];
  const codes = [];
  for (const list of view.tenant["status-code-lists"]) {
    if (!listIds.includes(list.id)) continue;
    for (const item of list.items) codes.push({ list, item });
  }
  return codes;
}

// -- the board ---------------------------------------------------------------------------

function renderBoard() {
  const board = $("#board");
  board.replaceChildren();
  view.cards.clear();
  const groups = [...view.tenant.groups].sort((a, b) => a.id - b.id);
  const known = new Set(groups.map((group) => group.id));
  const orphans = [...view.agents.values()].filter((agent) => !known.has(agent["group-id"]));
  const sections = groups.map((group) => ({
    title: `${group.name} (group ${group.id})`,
    agents: [...view.agents.values()].filter((agent) => agent["group-id"] === group.id),
  }));
  if (orphans.length) sections.push({ title: "No group", agents: orphans });
  for (const section of sections) {
    if (!section.agents.length) continue;
    const cards = element("div", { class: "cards" });
    section.agents.sort((a, b) => (a.name || a["agent-id"]).localeCompare(b.name || b["agent-id"]));
    for (const agent of section.agents) cards.append(card(agent));
    board.append(element("section", { class: "group" }, element("h3", { text: section.title }), cards));
  }
}

function card(agent) {
  const id = agent["agent-id"];
  const node = element("article", { class: "agent", "data-agent-id": id, "aria-label": agent.name || id });
  node.append(
    element("h4", { text: agent.name || "(no name)" }),
    element("p", { class: "agent-id", text: id }),
    element("p", { class: "status", "data-field": "status" }),
    element("p", { class: "code", "data-field": "code" }),
    element("p", { class: "sub", "data-field": "sub-status" }),
    changeForm(agent),
  );
  view.cards.set(id, node);
  fillCard(node, agent);
  return node;
}

function fillCard(node, agent) {
  const status = $("[data-field=status]", node);
  status.textContent = statusLabel(agent["agent-status"]);
  status.className = `status s${agent["agent-status"]}`;
  $("[data-field=code]", node).textContent = codeLabel(agent);
  $("[data-field=sub-status]", node).textContent = `sub-status: ${agent["agent-sub-status"] || "none"}`;
}

function changeForm(agent) {
  const id = agent["agent-id"];
  const statusSelect = element("select", { name: "agent-status" });
  for (const [value, name] of Object.entries(STATUSES)) {
    statusSelect.append(element("option", { value, text: `${value} ${name}` }));
  }
  statusSelect.value = String(agent["agent-status"]);
  const codeSelect = element("select", { name: "status-code" });
  codeSelect.append(element("option", { value: "", text: "no status code" }));
  for (const { list, item } of codesOfGroup(agent["group-id"])) {
    codeSelect.append(
      element("option", { value: `${list.id}=${item.id}`, text: `${list.id} / ${item.id} ${item["short-code"]}` }),
    );
  }
  const outcome = element("p", { class: "outcome", role: "status", "aria-live": "polite" });
  const viaApi = element("button", { type: "submit", name: "api", text: "Set through the API" });
  const place = element("button", { type: "button", name: "place", text: "Place (control plane)" });
  const form = element(
    "form",
    { class: "change" },
    element("label", {}, "Status ", statusSelect),
    element("label", {}, "Status code ", codeSelect),
    element("div", { class: "row" }, viaApi, place),
    outcome,
  );
  const chosen = () => {
    const body = { "agent-status": Number(statusSelect.value) };
    if (codeSelect.value) {
      const [listId, itemId] = codeSelect.value.split("=").map(Number);
      body["status-code-list-id"] = listId;
      body["status-code-item-id"] = itemId;
    }
    return body;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      outcome.textContent = "sending…";
      const path = `${tenantPath(`/agents/${encodeURIComponent(id)}/status`)}`;
      const answer = await admin("POST", `/dashboard${path}`, chosen());
      outcome.textContent = apiOutcome(answer);
      outcome.classList.toggle("refused", answer.status < 200 || answer.status >= 300);
    });
  });
  place.addEventListener("click", () => {
    guarded(async () => {
      const current = view.agents.get(id);
      const placed = { ...current, ...chosen() };
      if (!codeSelect.value) {
        delete placed["status-code-list-id"];
        delete placed["status-code-item-id"];
      }
      delete placed["status-code-item-short-code"];
      await admin("PUT", tenantPath(`/agents/${encodeURIComponent(id)}`), placed);
      outcome.textContent = `placed in ${statusLabel(placed["agent-status"])}`;
      outcome.classList.remove("refused");
    });
  });
  return element("details", {}, element("summary", { text: "Change status" }), form);
}

function apiOutcome(answer) {
  if (answer.status >= 200 && answer.status < 300) return `applied (API answered ${answer.status})`;
  let reason = answer.body;
  try {
    const problem = JSON.parse(answer.body);
    reason = problem.detail || problem.title || answer.body;
  } catch (ignored) {
    const xml = /<Error>([^<]*)<\/Error>/.exec(answer.body || "");
    if (xml) reason = xml[1];
  }
  return `refused: ${answer.status} ${reason}`;
}

// -- the live feed -----------------------------------------------------------------------

function connect() {
  if (view.socket) view.socket.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = SETTINGS.streamPath.replace("{tenantId}", encodeURIComponent(view.tenantId));
  const from = view.lastMessageId ? `?messageId=${encodeURIComponent(view.lastMessageId)}` : "";
  const socket = new WebSocket(`${scheme}//${location.host}${path}${from}`);
  view.socket = socket;
  const feed = $("#feed");
  socket.addEventListener("open", () => {
    feed.textContent = "live";
    feed.className = "feed live";
    // Read after the feed is open: an event between the two is applied twice, never lost.
    guarded(async () => {
      await loadTenant();
      if (from && view.socket === socket) await checkResumed();
    });
  });
  socket.addEventListener("message", (message) => {
    if (view.socket !== socket) return; // another tenant's feed, closing
    const frame = JSON.parse(message.data);
    if (!frame.messageId) return;
    socket.send(JSON.stringify({ messageId: frame.messageId }));
    view.lastMessageId = frame.messageId;
    const bytes = Uint8Array.from(atob(frame.payload), (char) => char.charCodeAt(0));
    apply(JSON.parse(new TextDecoder().decode(bytes)));
  });
  let opened = false;
  socket.addEventListener("open", () => (opened = true));
  socket.addEventListener("close", () => {
    if (view.socket !== socket) return;
    if (!opened && !view.lastMessageId) {
      // A server with no WebSockets (the in-thread server of the pytest plugin): read the
      // same events from the control plane's log instead.
      view.socket = null;
      guarded(poll);
      return;
    }
    feed.textContent = "offline, reconnecting…";
    feed.className = "feed offline";
    setTimeout(() => view.socket === socket && connect(), RECONNECT_MS);
  });
}

// A message id is base64 of protobuf fields; field 2 (tag 0x10) is the event's number.
function sequenceOf(messageId) {
  const bytes = Uint8Array.from(atob(messageId), (char) => char.charCodeAt(0));
  let position = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 1; position < bytes.length; shift *= 128) {
      const byte = bytes[position++];
      value += (byte & 127) * shift;
      if (byte < 128) break;
    }
    return value;
  };
  while (position < bytes.length) {
    const key = varint();
    const value = varint();
    if (key === 0x10) return value;
  }
  return 0;
}

// Resumed after the last message read: an emulator restarted underneath numbers its events
// from 1 again, and a feed resumed past its newest would never send one; read from now on.
async function checkResumed() {
  const tenantId = view.tenantId;
  const { last } = await admin("GET", `/tenants/${encodeURIComponent(tenantId)}/events?limit=1`);
  if (view.tenantId !== tenantId || !view.lastMessageId) return;
  if (last < sequenceOf(view.lastMessageId)) {
    view.lastMessageId = null;
    connect();
  }
}

async function poll() {
  const tenantId = view.tenantId;
  const log = `/tenants/${encodeURIComponent(tenantId)}/events`;
  let last = (await admin("GET", `${log}?limit=1`)).last;
  await loadTenant();
  const feed = $("#feed");
  feed.textContent = "live (polling)";
  feed.className = "feed live";
  view.polling = tenantId;
  while (view.polling === tenantId) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (view.polling !== tenantId) break;
    try {
      const { events } = await admin("GET", `${log}?after=${last}&limit=1000`);
      for (const entry of events) {
        last = entry.sequence;
        apply(entry.event);
      }
    } catch (error) {
      say(error.message);
    }
  }
}

function apply(event) {
  for (const pending of view.loading) pending.push(event);
  const change = event.AgentStatusChange;
  if (change) {
    applyChange(change);
    record();
  } else if (event.AgentProvChange) {
    guarded(loadTenant);
  }
}

function applyChange(change) {
  const agent = view.agents.get(change.agentId);
  if (!agent) return;
  agent["agent-status"] = change.newState;
  if (change.newSubState && change.newSubState !== "none") agent["agent-sub-status"] = change.newSubState;
  else delete agent["agent-sub-status"];
  delete agent["status-code-item-short-code"];
  if (change.newReasonCodeUser && change.newReasonCodeUser !== "none") {
    const [listId, itemId] = change.newReasonCodeUser.split("=").map(Number);
    agent["status-code-list-id"] = listId;
    agent["status-code-item-id"] = itemId;
  } else {
    delete agent["status-code-list-id"];
    delete agent["status-code-item-id"];
  }
  const node = view.cards.get(change.agentId);
  if (node) fillCard(node, agent);
}

// -- the chart ---------------------------------------------------------------------------

function record() {
  const counts = {};
  for (const agent of view.agents.values()) {
    counts[agent["agent-status"]] = (counts[agent["agent-status"]] || 0) + 1;
  }
  view.series.push({ t: Date.now(), counts });
  if (view.series.length > MAX_POINTS) view.series.shift();
  drawChart();
}

function drawChart() {
  const svg = $("#chart");
  const legend = $("#legend");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  legend.replaceChildren();
  if (!view.series.length) return;
  // One moment is drawn as a level line across the chart.
  const points = view.series.length > 1 ? view.series : [{ ...view.series[0], t: view.series[0].t - 1 }, view.series[0]];
  const first = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - first);
  const top = Math.max(1, ...points.flatMap((point) => Object.values(point.counts)));
  const statuses = [...new Set(points.flatMap((point) => Object.keys(point.counts)))].sort((a, b) => a - b);
  for (const status of statuses) {
    let path = "";
    points.forEach((point, index) => {
      const x = ((point.t - first) / span) * 600;
      const y = 195 - ((point.counts[status] || 0) / top) * 185;
      path += `${index ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
    });
    const line = document.createElementNS(ns, "path");
    line.setAttribute("d", path);
    line.setAttribute("class", `line s${status}`);
    svg.append(line);
    const now = points[points.length - 1].counts[status] || 0;
    legend.append(element("li", { class: `s${status}`, text: `${statusLabel(status)}: ${now}` }));
  }
}

// -- tenant controls ---------------------------------------------------------------------

async function loadTenant() {
  // The events that come while the tenant is read are applied again on what it answers:
  // the answer may have left the server before them and arrive after them.
  const tenantId = view.tenantId;
  const pending = [];
  view.loading.add(pending);
  let tenant;
  try {
    tenant = await admin("GET", `/tenants/${encodeURIComponent(tenantId)}`);
  } finally {
    view.loading.delete(pending);
  }
  if (view.tenantId !== tenantId) return; // another tenant was chosen meanwhile
  view.tenant = tenant;
  view.agents = new Map(tenant.agents.map((agent) => [agent["agent-id"], agent]));
  showGate(tenant["api-enabled"]);
  renderBoard();
  for (const event of pending) if (event.AgentStatusChange) applyChange(event.AgentStatusChange);
  record();
}

async function chooseTenant(tenantId) {
  view.tenantId = tenantId;
  view.polling = null;
  view.lastMessageId = null;
  view.series = [];
  location.hash = `tenant=${encodeURIComponent(tenantId)}`;
  connect(); // the tenant is read once its feed is open (loadTenant)
  await refreshSimulation();
  await refreshJournal();
  await refreshFaults();
}

function bindControls() {
  $("#tenant").addEventListener("change", (event) => guarded(() => chooseTenant(event.target.value)));
  $("#api-enabled").addEventListener("change", (event) =>
    guarded(async () => {
      const box = event.target;
      box.disabled = true;
      try {
        const state = await admin("PATCH", tenantPath(), { "api-enabled": box.checked });
        showGate(state["api-enabled"]);
      } finally {
        box.disabled = false;
      }
    }),
  );
  $("#rotate").addEventListener("click", () =>
    guarded(async () => {
      const { token } = await admin("POST", tenantPath("/token"));
      $("#token").textContent = `new token: ${token}`;
      $("#token-hide").hidden = false;
    }),
  );
  $("#token-hide").addEventListener("click", hideToken);
  $("#reset-tenant").addEventListener("click", () =>
    guarded(async () => {
      hideToken();
      await admin("POST", tenantPath("/reset"));
      await loadTenant();
    }),
  );
  $("#sim-start").addEventListener("click", () =>
    guarded(async () => {
      const body = {
        seed: Number($("#sim-seed").value),
        speed: Number($("#sim-speed").value),
        tenants: { [view.tenantId]: {} },
      };
      showSimulation(await admin("POST", "/simulation", body));
    }),
  );
  $("#sim-stop").addEventListener("click", () => guarded(async () => showSimulation(await admin("DELETE", "/simulation"))));
  $("#clock-advance").addEventListener("click", () =>
    guarded(async () => {
      const body = { "advance-seconds": Number($("#clock-seconds").value) };
      showSimulation(await admin("POST", "/clock", body));
    }),
  );
  $("#journal-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(refreshJournal);
  });
  $("#fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => addFault(event.target));
  });
}

function showGate(enabled) {
  $("#api-enabled").checked = enabled;
  $("#gate-state").textContent = enabled ? "the API answers" : "the API answers 403 to every call";
}

function hideToken() {
  const shown = $("#token");
  if (!$("#token-hide").hidden) shown.textContent = "token rotated: ••••••••";
  $("#token-hide").hidden = true;
}

async function refreshSimulation() {
  showSimulation(await admin("GET", "/simulation"));
}

function showSimulation(state) {
  if (!state || !state.running) {
    $("#sim-state").textContent = "simulator stopped";
    return;
  }
  const seconds = Math.round((state["elapsed-ms"] || 0) / 1000);
  $("#sim-state").textContent = `simulator running, ${seconds} s simulated`;
}

// -- journal and faults ------------------------------------------------------------------

async function refreshJournal() {
  const form = $("#journal-filter");
  const query = new URLSearchParams({ tenant: view.tenantId });
  for (const name of ["method", "path", "status"]) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  const { requests } = await admin("GET", `/requests?${query}`);
  const rows = [...requests].sort((a, b) => b.id - a.id);
  $("#journal tbody").replaceChildren(
    ...rows.map((entry) =>
      element(
        "tr",
        {},
        element("td", { text: entry.id }),
        element("td", { text: entry.time.slice(11, 23) }),
        element("td", { text: entry.method }),
        element("td", { class: "path", text: entry.path }),
        element("td", { text: entry.status === null ? entry.outcome : entry.status }),
        element("td", { text: entry.fault || "" }),
        element("td", { text: (entry.request.headers && entry.request.headers.Authorization) || "" }),
      ),
    ),
  );
}

async function refreshFaults() {
  const { faults } = await admin("GET", "/faults");
  $("#faults tbody").replaceChildren(
    ...faults.map((fault) => {
      const remove = element("button", { type: "button", text: "Delete", "aria-label": `Delete fault ${fault.id}` });
      remove.addEventListener("click", () =>
        guarded(async () => {
          await admin("DELETE", `/faults/${encodeURIComponent(fault.id)}`);
          await refreshFaults();
        }),
      );
      return element(
        "tr",
        { "data-fault-id": fault.id },
        element("td", { text: fault.id }),
        element("td", { text: JSON.stringify(fault.match || {}) }),
        element("td", { text: JSON.stringify(fault.action || {}) }),
        element("td", { text: fault.hits }),
        element("td", { text: fault.remaining === null ? "∞" : fault.remaining }),
        element("td", { text: fault.active ? "yes" : "no" }),
        element("td", {}, remove),
      );
    }),
  );
}

async function addFault(form) {
  const value = (name) => form.elements[name].value.trim();
  const match = {};
  if (value("method")) match.method = value("method");
  if (value("path")) match.path = value("path");
  const action = { type: value("type") };
  if (action.type === "respond" && value("status")) action.status = Number(value("status"));
  const body = { match, action };
  if (value("times")) body.times = Number(value("times"));
  if (value("probability")) body.probability = Number(value("probability"));
  await admin("POST", "/faults", body);
  await refreshFaults();
}

// -- start -------------------------------------------------------------------------------

async function start() {
  bindControls();
  const { tenants } = await admin("GET", "/tenants");
  const select = $("#tenant");
  select.replaceChildren(...tenants.map((id) => element("option", { value: id, text: id })));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("tenant");
  const chosen = tenants.includes(wanted) ? wanted : tenants[0];
  if (!chosen) {
    say("The emulator holds no tenant.");
    return;
  }
  select.value = chosen;
  await chooseTenant(chosen);
  setInterval(() => {
    if ($("#journal-live").checked && !document.hidden) {
      refreshJournal().catch((error) => say(error.message));
      refreshFaults().catch((error) => say(error.message));
    }
  }, JOURNAL_EVERY_MS);
}

start().catch((error) => say(error.message));
