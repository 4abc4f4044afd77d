// A department admin's appointment schedule on the office page: weekly appointment hours,
// slot length, places per slot, how far ahead and how short-notice, the check-in window,
// the federal state whose public holidays take no appointments, and days without any.
// Checked here first (each problem named at its field); the booking API's refusals name
// their field too, and are shown there in the page's language.
import { announce, api, el, show, t } from "./common.js";

const NUMBERS = {
  slot_minutes: { id: "slot-minutes", min: 5, max: 240 },
  capacity: { id: "capacity", min: 1, max: 100 },
  days_ahead: { id: "days-ahead", min: 1, max: 366 },
  notice_minutes: { id: "notice-minutes", min: 0, max: 20160 },
  check_in_before_minutes: { id: "check-in-before", min: 0, max: 120 },
  check_in_after_minutes: { id: "check-in-after", min: 0, max: 120 },
};
const DEFAULTS = {
  hours: [],
  slot_minutes: 15,
  capacity: 1,
  days_ahead: 60,
  notice_minutes: 60,
  check_in_before_minutes: 10,
  check_in_after_minutes: 15,
  state: "NW",
  timezone: "Europe/Berlin",
  closed_days: [],
};

const form = document.getElementById("schedule-form");
const rows = document.getElementById("schedule-rows");
const closedList = document.getElementById("schedule-closed-days");
const newClosedDay = document.getElementById("new-schedule-closed-day");
const stateSelect = document.getElementById("schedule-state");
const errorBox = document.getElementById("schedule-error");
let departmentId = "";
let csrf = "";
let timezone = DEFAULTS.timezone;
let closedDays = [];
let periods = 0;

const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

function periodRow(period = { weekday: 0, opens: "08:00", closes: "12:00" }) {
  periods += 1;
  const n = periods;
  const row = el("tr", {},
    el("td", {}, el("select", { "aria-label": t("schedule_day_label", { n }), "data-field": "weekday" },
      [0, 1, 2, 3, 4, 5, 6].map((weekday) =>
        el("option", { value: weekday, selected: weekday === period.weekday || undefined, text: t(`weekday_${weekday}`) })))),
    el("td", {}, el("input", { type: "time", value: period.opens, "aria-label": t("schedule_opens_label", { n }), "data-field": "opens" })),
    el("td", {}, el("input", {
      type: "time",
      value: period.closes === "24:00" ? "23:59" : period.closes,
      "aria-label": t("schedule_closes_label", { n }),
      "data-field": "closes",
    })));
  row.append(el("td", {}, el("button", {
    type: "button",
    className: "secondary small",
    "aria-label": t("schedule_remove_period", { n }),
    text: t("remove"),
    onclick: () => {
      row.remove();
      document.getElementById("add-schedule-period").focus();
    },
  })));
  return row;
}

function renderClosedDays() {
  closedList.replaceChildren(...closedDays.sort().map((day) =>
    el("li", { className: "badge badge-info" }, day, " ", el("button", {
      type: "button",
      className: "linklike",
      "aria-label": t("schedule_remove_day", { day }),
      text: "×",
      onclick: () => {
        closedDays = closedDays.filter((other) => other !== day);
        renderClosedDays();
        newClosedDay.focus();
      },
    }))));
}

function render(schedule) {
  rows.replaceChildren(...schedule.hours.map(periodRow));
  for (const [name, { id }] of Object.entries(NUMBERS)) document.getElementById(id).value = String(schedule[name]);
  stateSelect.value = schedule.state || "";
  timezone = schedule.timezone;
  closedDays = [...schedule.closed_days];
  renderClosedDays();
}

function clearErrors() {
  show(errorBox, false);
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

/** Show the problem in the form's alert, mark the field and take the keyboard there. */
function fail(text, field) {
  errorBox.textContent = t("schedule_error_unsaved", { reason: text });
  show(errorBox, true);
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

function fieldOf(name) {
  if (NUMBERS[name]) return document.getElementById(NUMBERS[name].id);
  if (name === "state") return stateSelect;
  if (name === "closed_days") return newClosedDay;
  if (name === "hours") return rows.querySelector("select") || document.getElementById("add-schedule-period");
  return null;
}

/** The schedule as the form says, or null after showing what is wrong. */
function read() {
  const schedule = { timezone, closed_days: [...closedDays], state: stateSelect.value || null };
  for (const [name, { id, min, max }] of Object.entries(NUMBERS)) {
    const text = document.getElementById(id).value.trim();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      fail(t(`schedule_error_${name}`), document.getElementById(id));
      return null;
    }
    schedule[name] = value;
  }
  // 23:59 in the form is midnight: a time input cannot say 24:00.
  const spans = [...rows.querySelectorAll("tr")].map((row, index) => {
    const shown = row.querySelector('[data-field="closes"]').value;
    return {
      n: index + 1,
      row,
      weekday: Number(row.querySelector('[data-field="weekday"]').value),
      opens: row.querySelector('[data-field="opens"]').value,
      closes: shown === "23:59" ? "24:00" : shown,
    };
  });
  schedule.hours = spans.map(({ weekday, opens, closes }) => ({ weekday, opens, closes }));
  for (const span of spans) {
    if (!span.opens || !span.closes || minutes(span.closes) <= minutes(span.opens)) {
      fail(t("schedule_error_order", { n: span.n }), span.row.querySelector('[data-field="closes"]'));
      return null;
    }
    if (minutes(span.closes) - minutes(span.opens) < schedule.slot_minutes) {
      fail(t("schedule_error_short", { n: span.n }), span.row.querySelector('[data-field="closes"]'));
      return null;
    }
  }
  for (const a of spans) {
    for (const b of spans) {
      if (a.n < b.n && a.weekday === b.weekday && minutes(a.opens) < minutes(b.closes) && minutes(b.opens) < minutes(a.closes)) {
        fail(t("schedule_error_overlap", { a: a.n, b: b.n }), b.row.querySelector('[data-field="opens"]'));
        return null;
      }
    }
  }
  return schedule;
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  const schedule = read();
  if (!schedule) return;
  try {
    render(await api(`/offices/${departmentId}/schedule`, { method: "PUT", body: schedule, csrf }));
    show(document.getElementById("schedule-none"), false);
    announce(t("schedule_saved"));
    errorBox.textContent = "";
    const done = document.getElementById("office-result");
    done.className = "notice notice-ok";
    done.textContent = t("schedule_saved");
    show(done, true);
  } catch (error) {
    const field = error.data && typeof error.data.field === "string" ? error.data.field : null;
    const known = field ? t(`schedule_error_${field}`) : "";
    fail(known && known !== `schedule_error_${field}` ? known : error.message || t("error_generic"), field && fieldOf(field));
  }
}

/** Show the schedule form to a department admin (the page checked the role). */
export async function editSchedule(department, token) {
  departmentId = department;
  csrf = token;
  show(form, true);
  try {
    render(await api(`/offices/${departmentId}/schedule`));
  } catch (error) {
    if (error.status !== 409) {
      // Not known now (booking unreachable): nothing to edit, rather than defaults to save.
      errorBox.textContent = error.message || t("error_generic");
      show(errorBox, true);
      form.querySelector('button[type="submit"]').disabled = true;
      return;
    }
    render(DEFAULTS); // none yet: start from the usual terms
    show(document.getElementById("schedule-none"), true);
  }
  document.getElementById("add-schedule-period").addEventListener("click", () => {
    const row = periodRow();
    rows.append(row);
    row.querySelector("select").focus();
  });
  document.getElementById("add-schedule-closed-day").addEventListener("click", () => {
    if (newClosedDay.value && !closedDays.includes(newClosedDay.value)) {
      closedDays.push(newClosedDay.value);
      renderClosedDays();
    }
    newClosedDay.value = "";
  });
  form.addEventListener("submit", save);
}
