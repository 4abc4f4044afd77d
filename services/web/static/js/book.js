// The slot picker and the booking form: a list of days, the chosen day's free times as
// radio buttons (keyboard and screen reader friendly, no canvas calendar), then topic,
// language and, where the department is not anonymous, optional name and e-mail.
// With ?move=<appointment id> the same picker moves that appointment (its token is in
// this tab's sessionStorage, put there by the appointment page).
import { announce, api, departmentName, el, focusHeading, formatTime, languageName, locale, show, slot, store, t } from "./common.js";

const DAYS_AT_ONCE = 14;
const root = document.getElementById("booking");
const departmentId = root.dataset.departmentId;
const form = document.getElementById("booking-form");
const dayList = slot(form, "day-list");
const timesSet = document.getElementById("times");
const timeList = slot(form, "time-list");
const errorBox = document.getElementById("booking-error");
const submit = slot(form, "submit");
const moving = new URLSearchParams(window.location.search).get("move");
const held = moving ? store.get("bb.appointment") : null;
const requestId = crypto.randomUUID();
let department = null;
let timezone = "Europe/Berlin";
let searchedUntil = null;
const days = new Map(); // local day "2026-12-04" -> [{start, end, remaining}]
let chosen = null; // the chosen slot's start (ISO)

function dayKey(iso) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date(iso));
}

function dayLabel(iso) {
  return new Intl.DateTimeFormat(locale === "en" ? "en-GB" : "de-DE", {
    weekday: "long", day: "numeric", month: "long", timeZone: timezone,
  }).format(new Date(iso));
}

function whenLabel(iso) {
  return `${dayLabel(iso)}, ${formatTime(new Date(iso))}`;
}

function say(text, heading = false) {
  const state = slot(root, "state");
  state.textContent = text;
  if (heading) focusHeading(state);
}

async function search() {
  const from = searchedUntil || new Date();
  const to = new Date(from.getTime() + DAYS_AT_ONCE * 86400000);
  const found = await api(
    `/departments/${departmentId}/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`,
  );
  timezone = found.timezone || timezone;
  searchedUntil = to;
  const before = days.size;
  for (const free of found.slots) {
    const key = dayKey(free.start);
    if (!days.has(key)) days.set(key, []);
    days.get(key).push(free);
  }
  return days.size - before;
}

function renderDays() {
  const name = "day";
  dayList.replaceChildren(
    ...[...days.entries()].map(([key, slots]) => {
      const id = `day-${key}`;
      const count = slots.length;
      return el("label", { className: "choice", for: id },
        el("input", { type: "radio", name, id, value: key, onchange: () => chooseDay(key) }),
        el("span", { text: t("day_option", { day: dayLabel(slots[0].start), n: count }) }));
    }),
  );
  show(slot(form, "no-days"), days.size === 0);
}

function chooseDay(key) {
  const slots = days.get(key) || [];
  const day = dayLabel(slots[0].start);
  slot(form, "times-legend").textContent = t("times_legend", { day });
  const summary = t("free_on_day", { n: slots.length, day });
  slot(form, "times-summary").textContent = summary;
  timeList.replaceChildren(
    ...slots.map((free) => {
      const id = `time-${new Date(free.start).getTime()}`;
      const time = formatTime(new Date(free.start));
      const text = free.remaining === 1 ? t("time_option_one", { time }) : t("time_option", { time, n: free.remaining });
      return el("label", { className: "choice", for: id },
        el("input", { type: "radio", name: "time", id, value: free.start, checked: free.start === chosen || undefined,
          onchange: () => chooseTime(free.start) }),
        el("span", { text }));
    }),
  );
  show(timesSet, true);
  announce(summary);
}

function chooseTime(start) {
  chosen = start;
  slot(form, "chosen").textContent = t("chosen", { when: whenLabel(start) });
}

function fail(message, nearest = []) {
  slot(errorBox, "message").textContent = message;
  slot(errorBox, "nearest").replaceChildren(
    ...nearest.map((free) => el("button", {
      type: "button", className: "secondary small", text: t("take_instead", { when: whenLabel(free.start) }),
      onclick: () => {
        chooseTime(free.start);
        send();
      },
    })),
  );
  show(errorBox, true);
  errorBox.focus();
}

function explain(error) {
  if (error.status === 409 && Array.isArray(error.data.nearest)) {
    return fail(error.data.nearest.length ? t("slot_taken") : t("slot_taken_none"), error.data.nearest);
  }
  if (error.status === 429) {
    return fail(t("too_many_bookings", { n: Math.max(1, Math.ceil((error.data.retry_after_seconds || 60) / 60)) }));
  }
  if (error.status === 422 && Array.isArray(error.data.detail)) {
    const fields = error.data.detail.map((item) => (item.loc || []).slice(-1)[0]);
    if (fields.includes("email")) return fail(t("email_invalid"));
    if (fields.includes("display_name")) return fail(t("name_invalid"));
    return fail(t("check_input"));
  }
  if (error.status === 422 && error.data.reason) return fail(t("not_bookable"));
  return fail(error.message || t("error_generic"));
}

function bookingBody() {
  const body = {
    start: chosen,
    language: document.getElementById("language").value,
    topic: document.getElementById("topic").value || null,
    request_id: requestId,
  };
  if (!department.anonymous) {
    const name = document.getElementById("display-name").value.trim();
    const email = document.getElementById("email").value.trim();
    if (name) body.display_name = name;
    if (email) body.email = email;
  }
  return body;
}

async function send() {
  show(errorBox, false);
  if (!chosen) {
    fail(t("time_missing"));
    return;
  }
  const label = submit.textContent;
  submit.disabled = true;
  submit.textContent = moving ? t("moving") : t("booking");
  try {
    if (moving) {
      await api(`/appointments/${held.appointment_id}/reschedule`, { method: "POST", body: { start: chosen }, token: held.token });
      window.location.assign(`/appointments/${held.appointment_id}#token=${held.token}`);
      return;
    }
    const body = bookingBody();
    const booked = await api(`/departments/${departmentId}/appointments`, { method: "POST", body });
    store.set("bb.appointment", {
      appointment_id: booked.appointment_id, token: booked.token, display_name: body.display_name || null, topic: body.topic,
    });
    window.location.assign(`/appointments/${booked.appointment_id}#token=${booked.token}`);
  } catch (error) {
    submit.disabled = false;
    submit.textContent = label;
    explain(error);
  }
}

function fillDetails() {
  document.getElementById("topic").replaceChildren(
    el("option", { value: "", text: t("no_topic") }),
    ...department.topics.map((topic) => el("option", { value: topic.id, text: topic[locale] || topic.de })),
  );
  document.getElementById("language").replaceChildren(
    ...["de", "en"].filter((code) => department.languages.includes(code) || code === "de").map((code) =>
      el("option", { value: code, lang: code, selected: code === locale || undefined, text: languageName(code) })),
  );
  if (department.anonymous) {
    slot(form, "name-field").remove();
    slot(form, "email-field").remove();
    show(slot(form, "anonymous-note"), true);
  }
  if (moving) {
    document.getElementById("details").remove();
    slot(root, "heading").textContent = t("move_heading");
    document.title = `${t("move_heading")} – ${document.title.split(" – ").slice(-1)[0]}`;
    submit.textContent = t("move_submit");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

form.querySelector('[data-action="later"]').addEventListener("click", async () => {
  try {
    const added = await search();
    renderDays();
    if (added === 0) announce(t("no_more_days"));
    else dayList.querySelectorAll("input")[days.size - added]?.focus();
  } catch (error) {
    explain(error);
  }
});

async function load() {
  try {
    department = await api(`/departments/${departmentId}?lang=${locale}`);
  } catch (error) {
    say(error.status === 404 || error.status === 422 ? t("not_found") : error.message);
    return;
  }
  slot(root, "department").textContent = departmentName(department);
  if (!department.accepts_appointments) {
    say("");
    show(document.getElementById("no-booking"), true);
    return;
  }
  if (moving && (!held || held.appointment_id !== moving)) {
    say(t("move_lost"));
    return;
  }
  fillDetails();
  try {
    await search();
  } catch (error) {
    say(error.message || t("error_generic"));
    return;
  }
  renderDays();
  show(form, true);
  say(t("loaded"));
  slot(root, "state").className = "visually-hidden";
}
load();
