// The knock page: name (not where anonymous), language, topic, device check, knock.
// The server renders the department for the first view and hands its data over in
// #bb-department; where it could not, the page is drawn here from the API.
import {
  api,
  el,
  focusHeading,
  formatExpectedWait,
  formatWhen,
  languageName,
  locale,
  show,
  slot,
  store,
  t,
  weekdayName,
} from "./common.js";
import { setupDeviceCheck } from "./devicecheck.js";

const BUSY_ATTEMPTS = 4; // knocks in all while the office answers "busy" (503)
const header = document.getElementById("department");
const departmentId = header.dataset.departmentId;
const closedPanel = document.getElementById("closed");
const fullPanel = document.getElementById("line-full");
const knockPanel = document.getElementById("knock");
const form = document.getElementById("knock-form");
const errorBox = document.getElementById("knock-error");
const nameInput = document.getElementById("display-name");
const languageSelect = document.getElementById("language");
const topicSelect = document.getElementById("topic");
let department = null;

setupDeviceCheck(document.querySelector("[data-device-check]"));

function showClosed(opensAt) {
  show(knockPanel, false);
  show(closedPanel, true);
  slot(closedPanel, "next-opening").textContent = t("next_opening", { when: formatWhen(opensAt) });
}

/** The line holds as many as it may: no form, come back later. */
function showLineFull() {
  show(knockPanel, false);
  show(fullPanel, true);
}

function renderHours() {
  const list = slot(document.getElementById("hours"), "weekly");
  const items = [];
  for (let weekday = 0; weekday < 7; weekday += 1) {
    const spans = (department.weekly || [])
      .filter((period) => period.weekday === weekday)
      .map((period) => `${period.opens}–${period.closes}`)
      .sort();
    items.push(el("dt", { text: weekdayName(weekday) }), el("dd", { text: spans.length ? spans.join(", ") : t("closed_day") }));
  }
  list.replaceChildren(...items);
  show(document.getElementById("hours"), true);
}

function render() {
  document.title = `${department.name} – ${document.title.split(" – ").slice(-1)[0]}`;
  slot(header, "name").textContent = department.name;
  slot(header, "description").textContent = department.description;
  slot(header, "state").textContent = department.open ? t("loaded_open") : t("loaded_closed");
  slot(header, "state").className = "visually-hidden";
  const badges = slot(header, "badges");
  badges.replaceChildren(
    el("li", {}, el("span", {
      className: `badge ${department.open ? "badge-open" : "badge-closed"}`,
      text: department.open ? t("open_now") : t("closed_now"),
    })),
  );
  if (department.anonymous) badges.append(el("li", {}, el("span", { className: "badge badge-info", text: t("anonymous") })));
  if (department.accepts_appointments) {
    badges.append(el("li", {}, el("span", { className: "badge badge-info", text: t("appointments") })));
    show(document.getElementById("book"), true);
  }
  renderHours();
  if (!department.open) {
    showClosed(department.opens_at);
    return;
  }
  if (department.line_full) {
    showLineFull();
    return;
  }
  show(knockPanel, true);
  slot(knockPanel, "wait").textContent = department.expected_wait?.staff_free
    ? t("staff_free")
    : t("expected_wait", { n: department.waiting, wait: formatExpectedWait(department.expected_wait) });
  const nameField = slot(form, "name-field");
  if (department.anonymous) {
    if (nameField) nameField.remove();
    show(slot(form, "anonymous-note"), true);
  }
  languageSelect.replaceChildren(
    ...department.languages.map((code) =>
      el("option", { value: code, lang: code, selected: code === locale || undefined, text: languageName(code) }),
    ),
  );
  topicSelect.replaceChildren(
    el("option", { value: "", text: t("no_topic") }),
    ...department.topics.map((topic) => el("option", { value: topic.id, text: topic[locale] || topic.de })),
  );
}

function fail(message, field) {
  errorBox.textContent = message;
  show(errorBox, true);
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(errorBox, false);
  const body = { language: languageSelect.value, topic: topicSelect.value || null };
  if (!department.anonymous) {
    const name = nameInput.value.trim();
    if (!name) {
      fail(t("name_missing"), nameInput);
      return;
    }
    nameInput.removeAttribute("aria-invalid");
    body.display_name = name;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  button.textContent = t("knocking");
  try {
    const ticket = await knockPatiently(departmentId, body);
    store.set("bb.ticket", {
      ticket_id: ticket.ticket_id,
      token: ticket.token,
      number: ticket.number,
      display_name: ticket.display_name,
      department_id: departmentId,
      anonymous: department.anonymous,
    });
    window.location.assign("/visit");
  } catch (error) {
    button.disabled = false;
    button.textContent = form.dataset.label;
    if (error.status === 409 && "opens_at" in error.data) {
      showClosed(error.data.opens_at);
      focusHeading(document.getElementById("closed-heading"));
      return;
    }
    if (error.status === 429 && error.data.reason === "line_full") {
      showLineFull();
      focusHeading(document.getElementById("line-full-heading"));
      return;
    }
    if (error.status === 429 && error.data.reason === "too_many_knocks") {
      fail(t("too_many_knocks", { n: error.data.retry_after_seconds }));
      return;
    }
    if (error.status === 429 && error.data.reason === "too_many_waiting") {
      fail(t("too_many_waiting"));
      return;
    }
    fail(error.message || t("error_generic"));
  }
});
form.dataset.label = form.querySelector('button[type="submit"]').textContent;

async function load() {
  const given = document.getElementById("bb-department");
  if (given) {
    department = JSON.parse(given.textContent);
    return; // drawn by the server already
  }
  try {
    department = await api(`/departments/${departmentId}?lang=${locale}`);
    render();
  } catch (error) {
    const state = slot(header, "state");
    state.className = "notice notice-error";
    state.textContent = error.status === 404 || error.status === 422 ? t("not_found") : error.message;
  }
}
load();

// A 503 "busy" (the queue's processes raced for waiting numbers; nothing was stored) is
// answered by knocking again after its Retry-After, with the same knock id so that a knock
// stored after all is not stored twice.
async function knockPatiently(departmentId, body) {
  const knock = { ...body, knock_id: globalThis.crypto?.randomUUID?.() };
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await api(`/departments/${departmentId}/knock`, { method: "POST", body: knock });
    } catch (error) {
      if (error.status !== 503 || attempt >= BUSY_ATTEMPTS) throw error;
      const seconds = Number(error.data?.retry_after_seconds) || 1;
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    }
  }
}
