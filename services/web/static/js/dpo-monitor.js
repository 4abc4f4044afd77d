// The DPO's checkpoint monitor: remembers the last signed checkpoint this browser saw
// (localStorage) and, on every visit and every minute, verifies in the browser that the
// current checkpoint extends it (RFC 9162 consistency proof, see merkle.js). A failure —
// a proof that does not verify, a shrunk tree, a second root for one size — raises a loud
// alert and keeps the remembered checkpoint as evidence.
import { formatTime, t } from "./common.js";
import { fromBase64, parseCheckpoint, verifyConsistency } from "./merkle.js";

export const STORAGE_KEY = "bb.audit.checkpoint";
const INTERVAL_MS = 60_000;

const alertBox = document.getElementById("monitor-alert");
const stateBox = document.getElementById("monitor-state");
const rememberedBox = document.getElementById("monitor-remembered");
const currentBox = document.getElementById("monitor-current");
const checkedBox = document.getElementById("monitor-checked");
let running = false;
let alarmed = false;

function describe(checkpoint) {
  return t("size_root", { size: checkpoint.size.toString(), root: checkpoint.rootBase64 });
}

function state(text, kind) {
  stateBox.className = `notice notice-${kind}`;
  stateBox.dataset.state = kind;
  stateBox.textContent = text;
}

function alarm(reason) {
  alarmed = true;
  alertBox.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = t("alert_prefix");
  const detail = document.createElement("p");
  detail.textContent = reason;
  const keep = document.createElement("p");
  keep.textContent = t("alert_keep");
  alertBox.append(strong, detail, keep);
  alertBox.hidden = false;
  state(reason, "error");
  document.getElementById("monitor").classList.add("panel-error");
}

function remembered() {
  const raw = window.localStorage.getItem(STORAGE_KEY);
  if (raw === null) return null;
  const stored = JSON.parse(raw);
  return parseCheckpoint(stored.note);
}

function remember(checkpoint) {
  window.localStorage.setItem(STORAGE_KEY, JSON.stringify({ note: checkpoint.note, seen_at: new Date().toISOString() }));
  rememberedBox.textContent = describe(checkpoint);
}

async function fetchText(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  return { status: response.status, text: response.ok ? await response.text() : "" };
}

async function fetchProof(first, second) {
  const response = await fetch(`/api/v1/audit/proof/consistency?first=${first}&second=${second}`, {
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) return { status: response.status, proof: null };
  const data = await response.json();
  return { status: response.status, proof: data };
}

/** One integrity check; resolves to the state it ended in ("first", "same", "extended", …). */
export async function checkOnce() {
  if (running) return "busy";
  running = true;
  try {
    return await check();
  } finally {
    running = false;
    checkedBox.textContent = formatTime(new Date());
  }
}

async function check() {
  let fetched;
  try {
    fetched = await fetchText("/api/v1/audit/checkpoint");
  } catch {
    if (!alarmed) state(t("monitor_unreachable"), "warn");
    return "unreachable";
  }
  if (fetched.status === 404) {
    if (!alarmed) state(t("monitor_none"), "warn");
    return "none";
  }
  if (!fetched.text) {
    if (!alarmed) state(t("monitor_unreachable"), "warn");
    return "unreachable";
  }
  const latest = parseCheckpoint(fetched.text);
  currentBox.textContent = describe(latest);

  let old;
  try {
    old = remembered();
  } catch {
    alarm(t("alert_remembered"));
    return "alert";
  }
  if (old === null) {
    remember(latest);
    if (!alarmed) state(t("monitor_first", { size: latest.size.toString() }), "ok");
    return "first";
  }
  rememberedBox.textContent = describe(old);
  if (old.origin !== latest.origin) {
    alarm(t("alert_origin", { origin: latest.origin }));
    return "alert";
  }
  if (latest.size < old.size) {
    alarm(t("alert_shrank", { old: old.size.toString(), new: latest.size.toString() }));
    return "alert";
  }
  if (latest.size === old.size) {
    try {
      await verifyConsistency(old.size, latest.size, old.root, latest.root, []);
    } catch {
      alarm(t("alert_fork", { size: latest.size.toString() }));
      return "alert";
    }
    if (!alarmed) state(t("monitor_same", { size: latest.size.toString() }), "ok");
    return "same";
  }
  let answer;
  try {
    answer = await fetchProof(old.size, latest.size);
  } catch {
    if (!alarmed) state(t("monitor_unreachable"), "warn");
    return "unreachable";
  }
  const sizes = { old: old.size.toString(), new: latest.size.toString() };
  if (answer.proof === null) {
    alarm(t("alert_no_proof", { ...sizes, status: answer.status }));
    return "alert";
  }
  try {
    if (BigInt(answer.proof.first) !== old.size || BigInt(answer.proof.second) !== latest.size) {
      throw new Error("the proof is for other sizes");
    }
    const proof = answer.proof.proof.map((entry) => fromBase64(entry));
    await verifyConsistency(old.size, latest.size, old.root, latest.root, proof);
  } catch (error) {
    alarm(t("alert_proof", { ...sizes, reason: error.message }));
    return "alert";
  }
  remember(latest);
  if (!alarmed) state(t("monitor_extended", sizes), "ok");
  return "extended";
}

export function startMonitor() {
  try {
    const old = remembered();
    if (old) rememberedBox.textContent = describe(old);
  } catch {
    // check() names it loudly
  }
  state(t("monitor_checking"), "info");
  document.getElementById("monitor-check").addEventListener("click", () => checkOnce());
  const run = () => checkOnce().catch((error) => alarm(error.message || String(error)));
  run();
  window.setInterval(run, INTERVAL_MS);
}
