// The web phone: renders the stand-in's snapshot and posts what the visitor does.
"use strict";

const POLL_MS = 400;
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
const shown = new Set();
const cards = new Map();
let snapshot = null;
let since = 0;
const events = [];
const spoken = new Map();

// Every POST carries the session's CSRF token: another site cannot drive these phones.
const CSRF_TOKEN = document.querySelector('meta[name="csrf-token"]').content;

function post(path, fields = {}) {
  const body = new URLSearchParams(fields);
  return fetch(path, { method: "POST", body, headers: { "X-CSRF-Token": CSRF_TOKEN } }).then((r) => r.json()).then((reply) => {
    if (!reply.ok) { alert(reply.error); }
    return reply;
  }).then(() => refresh());
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function activeLeg(number) {
  const phone = snapshot && snapshot.phones[number];
  if (!phone) return null;
  return phone.legs.find((leg) => !["completed", "busy", "no-answer", "failed", "canceled"].includes(leg.status)) || null;
}

function legInfo(sid) {
  return (snapshot.legs || []).find((leg) => leg.sid === sid) || {};
}

function makeCard(number) {
  const node = document.getElementById("phone-template").content.firstElementChild.cloneNode(true);
  node.dataset.number = number;
  const keypad = node.querySelector(".keypad");
  for (const key of KEYS) {
    const button = el("button", { type: "button", "data-key": key }, key);
    button.addEventListener("click", () => {
      const leg = activeLeg(number);
      if (leg) post(`/phone/api/legs/${leg.sid}/press`, { digits: key });
    });
    keypad.append(button);
  }
  node.querySelector(".dial").addEventListener("click", () => post(`/phone/api/phones/${encodeURIComponent(number)}/dial`));
  for (const action of ["answer", "decline", "hangup"]) {
    node.querySelector(`.${action}`).addEventListener("click", () => {
      const leg = activeLeg(number);
      if (leg) post(`/phone/api/legs/${leg.sid}/${action}`);
    });
  }
  node.querySelector("form.say").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    const leg = activeLeg(number);
    if (leg && input.value.trim()) post(`/phone/api/legs/${leg.sid}/speak`, { text: input.value.trim() });
    input.value = "";
  });
  node.querySelector("form.sms").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.body;
    if (input.value.trim()) post(`/phone/api/phones/${encodeURIComponent(number)}/sms`, { body: input.value.trim() });
    input.value = "";
  });
  node.querySelector(".availability input").addEventListener("change", (event) => {
    post(`/phone/api/phones/${encodeURIComponent(number)}/availability`, { on: event.target.checked ? "1" : "0" });
  });
  node.querySelector("details.texts").addEventListener("toggle", () => renderCard(number));
  node.querySelector(".close").addEventListener("click", () => { shown.delete(number); node.remove(); cards.delete(number); renderPicker(); });
  document.getElementById("phones").append(node);
  cards.set(number, node);
  return node;
}

// The line the simulator puts between calls in a transcript (hotline.simulator.state).
const CALL_BREAK = "— new call —";

// The simulator's words for what a leg is doing, as a person on the phone would say it.
const PLAIN = {
  gathering: "waiting for your answer", "in queue": "on hold for a supporter",
  bridged: "connected", playing: "listening", dialing: "calling out", ended: "ended",
};

function describe(number, leg) {
  if (!leg) return ["Idle", ""];
  const info = legInfo(leg.sid);
  const incoming = info.to === number;
  const other = leg.peer || (incoming ? info.from : info.to) || "";
  if (leg.status === "ringing" || leg.status === "queued") {
    return incoming ? [`Ringing: call from ${other}`, "ringing"] : [`Calling ${other}…`, "ringing"];
  }
  const doing = leg.doing ? ` · ${PLAIN[leg.doing] || leg.doing}` : "";
  return [`In call with ${other}${doing}`, "live"];
}

function renderCard(number) {
  const node = cards.get(number) || makeCard(number);
  // A focused button that this render disables (Call hotline once the call starts, Hang up
  // once it ends) would drop focus to the page body: keep it on this phone instead.
  const hadFocus = node.contains(document.activeElement);
  const phone = snapshot.phones[number];
  const leg = activeLeg(number);
  const [status, mood] = describe(number, leg);
  const role = snapshot.roles[number] || phone.kind || "";
  node.querySelector(".label").textContent = phone.label || number;
  node.querySelector(".role").textContent = role;
  node.querySelector(".number").textContent = number;
  const statusNode = node.querySelector(".status");
  statusNode.textContent = status;
  statusNode.className = `status ${mood}`;
  node.classList.toggle("ringing", mood === "ringing");
  node.classList.toggle("live", mood === "live");
  const info = leg ? legInfo(leg.sid) : {};
  const ringingIn = leg && leg.status === "ringing" && info.to === number;
  node.querySelector(".dial").disabled = Boolean(leg);
  node.querySelector(".answer").disabled = !ringingIn;
  node.querySelector(".decline").disabled = !ringingIn;
  node.querySelector(".hangup").disabled = !leg;
  for (const button of node.querySelectorAll(".keypad button")) button.disabled = !leg || ringingIn;
  const screen = node.querySelector(".screen");
  const lines = phone.heard || [];
  if (screen.childElementCount !== lines.length || screen.dataset.last !== lines[lines.length - 1]) {
    screen.replaceChildren(...lines.map((line) => (line === CALL_BREAK
      ? el("li", { class: "call-break" }, "— new call —")
      : el("li", {}, line))));
    screen.dataset.last = lines[lines.length - 1] || "";
    screen.scrollTop = screen.scrollHeight;
    speakNew(number, lines);
  }
  const supporter = (snapshot.routing.supporters || []).find((s) => s.phone === number);
  const availability = node.querySelector(".availability");
  availability.hidden = !supporter;
  if (supporter) availability.querySelector("input").checked = supporter.available;
  node.querySelector(".paused-note").hidden = !(supporter && supporter.paused);
  const messages = (phone.messages || []).map((m) => el("li", { class: m.direction === "inbound" ? "out" : "in" }, m.body || "(redacted)"));
  const list = node.querySelector(".messages");
  if (list.childElementCount !== messages.length) {
    list.replaceChildren(...messages);
    list.scrollTop = list.scrollHeight;
  }
  markUnread(node, messages.length);
  if (hadFocus && (!node.contains(document.activeElement) || document.activeElement.disabled)) {
    const target = [".hangup", ".answer", ".dial"].map((s) => node.querySelector(s)).find((b) => !b.disabled);
    if (target) target.focus();
  }
}

// Texts that arrive while "Texts" is folded: say how many on the fold (read out politely).
function markUnread(node, count) {
  const details = node.querySelector("details.texts");
  if (details.open || node.dataset.seen === undefined) node.dataset.seen = String(count);
  const unread = count - Number(node.dataset.seen);
  const badge = node.querySelector(".unread");
  const text = unread > 0 ? ` (${unread} new)` : "";
  if (badge.textContent !== text) badge.textContent = text;
  details.classList.toggle("has-unread", unread > 0);
}

function speakNew(number, lines) {
  const done = spoken.get(number) || 0;
  spoken.set(number, lines.length);
  if (!document.getElementById("speak-toggle").checked || !window.speechSynthesis) return;
  for (const line of lines.slice(done)) {
    if (!line.startsWith("[")) window.speechSynthesis.speak(new SpeechSynthesisUtterance(line));
  }
}

function row(cells) { return el("tr", {}, ...cells.map((c) => el("td", {}, c))); }
function pill(text) { return el("span", { class: `pill ${text}` }, text); }

function renderPanel() {
  const routing = snapshot.routing;
  document.getElementById("contacts").replaceChildren(...routing.contacts.map((c) =>
    row([`#${c.id}`, c.channel, pill(c.state), c.outcome ? pill(c.outcome) : "…",
         c.match ? el("span", { class: "pill match", title: "match request" }, `match: ${c.match}`) : ""])));
  document.getElementById("offers").replaceChildren(...routing.offers.map((o) =>
    row([`#${o.contact}`, o.supporter, `tier ${o.tier}`, pill(o.state)])));
  document.getElementById("supporters").replaceChildren(...routing.supporters.map((s) =>
    row([s.name, `tier ${s.tier}`, s.available ? "on" : (s.paused ? pill("paused") : "off"), s.busy ? pill("busy") : "free",
         [s.role, ...(s.units || [])].filter(Boolean).join(" · ")])));
  document.getElementById("legs").replaceChildren(...(snapshot.legs || []).slice(-12).map((leg) =>
    row([`${leg.from} → ${leg.to}`, pill(leg.status), leg.queue ? `queue ${leg.queue}` : (leg.bridged_to ? "bridged" : "")])));
  const queues = Object.entries(snapshot.queues || {}).map(([name, members]) => el("li", {}, `${name}: ${members.length} waiting`));
  const bridges = (snapshot.bridges || []).filter((b) => !b.ended).map((b) => el("li", {}, `bridge ${legInfo(b.a).from || b.a} ⇄ ${legInfo(b.b).to || b.b}`));
  const rooms = (snapshot.conferences || []).filter((c) => c.status !== "completed").map((c) => el("li", {}, `conference ${c.name}: ${c.talking.length} talking, ${c.members.length - c.talking.length} on hold`));
  document.getElementById("queues").replaceChildren(...queues, ...bridges, ...rooms);
  const list = document.getElementById("events");
  list.replaceChildren(...events.slice(-60).map((e) => el("li", {}, `${e.t.toFixed(1)}s ${e.kind} ${summary(e.details)}`)));
  list.scrollTop = list.scrollHeight;
}

function summary(details) {
  return Object.entries(details || {}).filter(([k]) => ["sid", "to", "from", "status", "queue", "verb", "url"].includes(k))
    .map(([k, v]) => `${k}=${String(v).replace(/^https?:\/\/[^/]+/, "")}`).join(" ");
}

function renderPicker() {
  const picker = document.getElementById("phone-picker");
  const options = Object.keys(snapshot.phones).filter((n) => !shown.has(n)).map((n) =>
    el("option", { value: n }, `${snapshot.phones[n].label || n} (${snapshot.roles[n] || "phone"})`));
  picker.replaceChildren(el("option", { value: "" }, "choose…"), ...options);
}

function refresh() {
  return fetch(`/phone/api/state?since=${since}`).then((r) => r.json()).then((snap) => {
    const first = snapshot === null;
    snapshot = snap;
    events.push(...(snap.events || []));
    since = snap.next_event || since;
    if (first) {  // one clinician first, then every supporter
      const roles = Object.entries(snap.roles);
      const clinician = roles.find(([, role]) => role === "clinician");
      if (clinician) shown.add(clinician[0]);
      for (const [number, role] of roles) if (role.startsWith("supporter")) shown.add(number);
    }
    for (const number of shown) if (snap.phones[number]) renderCard(number);
    renderPanel();
    renderPicker();
  });
}

document.getElementById("phone-picker").addEventListener("change", (event) => {
  if (event.target.value) { shown.add(event.target.value); refresh(); }
});

function loop() { refresh().catch(() => {}).finally(() => setTimeout(loop, POLL_MS)); }
loop();
