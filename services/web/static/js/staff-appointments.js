// A department's appointments for its staff: a day or a week (booked, checked in, missed,
// cancelled, and the no-shows per day), cancelling with a reason, and booking on a
// citizen's behalf. Live: booking's stream of this department's appointments says when
// one changed (booked, moved, cancelled, checked in, missed), and the list is fetched again.
import { announce, api, el, formatTime, LiveStream, locale, show, slot, t } from "./common.js";
import { requireStaff } from "./staff-session.js";

const ZONE = "Europe/Berlin";
const REASONS = ["office_closed", "staff_unavailable", "not_responsible", "duplicate", "other"];
const root = document.getElementById("appointments");
const departmentId = root.dataset.departmentId;
const state = document.getElementById("appointments-state");
const result = document.getElementById("appointments-result");
const viewForm = document.getElementById("view-form");
const dayInput = document.getElementById("view-day");
const list = document.getElementById("appointment-days");
const bookForm = document.getElementById("book-form");
const bookDay = document.getElementById("book-day");
const bookTime = document.getElementById("book-time");
const bookError = document.getElementById("book-error");
let csrf = "";
let department = null;
let counter = 0;
let refreshing = null;
let again = false;

const intl = locale === "en" ? "en-GB" : "de-DE";
const localDay = (date) => new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(date);

function dayLabel(iso) {
  return new Intl.DateTimeFormat(intl, { weekday: "long", day: "numeric", month: "long", timeZone: "UTC" })
    .format(new Date(`${iso}T12:00:00Z`));
}

function say(text, kind = "ok") {
  result.className = `notice notice-${kind}`;
  result.textContent = text;
  show(result, true);
}

function span() {
  return viewForm.querySelector('input[name="span"]:checked').value;
}

function cancelForm(item) {
  counter += 1;
  const selectId = `reason-${counter}`;
  const time = formatTime(new Date(item.start));
  const form = el("form", {},
    el("div", { className: "field" },
      el("label", { for: selectId, text: t("reason") }),
      el("select", { id: selectId }, ...REASONS.map((r) => el("option", { value: r, text: t(`reason_${r}`) })))),
    el("button", { type: "submit", className: "danger small", text: t("cancel_confirm") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/offices/${departmentId}/appointments/${item.appointment_id}/cancel`, {
        method: "POST", body: { reason: form.querySelector("select").value }, csrf,
      });
      say(t("cancelled_done", { time }));
      await refresh();
    } catch (error) {
      say(error.message || t("error_generic"), "error");
    }
  });
  return el("details", {}, el("summary", { "aria-label": t("cancel_label", { time }), text: t("cancel") }), form);
}

function entry(item) {
  const notes = [];
  if (item.booked_by_staff) notes.push(t("booked_by_staff"));
  if (item.checked_in_at) notes.push(t("checked_in_at", { time: formatTime(new Date(item.checked_in_at)) }));
  if (item.status === "cancelled") {
    notes.push(item.cancel_reason ? t("cancelled_reason", { reason: t(`reason_${item.cancel_reason}`) }) : t("cancelled_by_citizen"));
  }
  const badge = { booked: "badge-info", checked_in: "badge-open", missed: "badge-warn", cancelled: "badge-closed" }[item.status] || "";
  return el("li", { "data-status": item.status },
    el("strong", { text: `${formatTime(new Date(item.start))}–${formatTime(new Date(item.end))}` }), " ",
    el("span", { className: `badge ${badge}`, text: t(`status_${item.status}`) }), " ",
    el("span", { className: "muted", text: notes.join(", ") }),
    item.status === "booked" ? cancelForm(item) : null);
}

function render(view) {
  const byDay = new Map();
  for (let i = 0; i < view.days; i += 1) {
    const day = new Date(`${view.first_day}T12:00:00Z`);
    day.setUTCDate(day.getUTCDate() + i);
    byDay.set(day.toISOString().slice(0, 10), []);
  }
  for (const item of view.appointments) byDay.get(localDay(new Date(item.start)))?.push(item);
  list.replaceChildren(...[...byDay.entries()].map(([day, items]) => {
    counter += 1;
    const headingId = `day-heading-${counter}`;
    return el("section", { className: "panel", "aria-labelledby": headingId },
      el("h2", { id: headingId, text: t("day_heading", { day: dayLabel(day), n: items.length }) }),
      view.no_shows[day] ? el("p", { className: "muted", text: t("no_shows", { n: view.no_shows[day] }) }) : null,
      items.length ? el("ul", { className: "appointment-list" }, ...items.map(entry)) : el("p", { className: "muted", text: t("none") }));
  }));
}

/** Fetch the list; asked again while fetching, it fetches once more afterwards (a change
 * may have come after the answer was made). */
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      try {
        const view = await api(`/offices/${departmentId}/appointments?day=${dayInput.value}&span=${span()}`);
        render(view);
      } catch (error) {
        say(error.message || t("error_generic"), "error");
      }
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

function shift(direction) {
  const day = new Date(`${dayInput.value}T12:00:00Z`);
  day.setUTCDate(day.getUTCDate() + direction * (span() === "week" ? 7 : 1));
  dayInput.value = day.toISOString().slice(0, 10);
  refresh();
}

async function loadTimes() {
  bookTime.replaceChildren();
  if (!bookDay.value) return;
  const from = new Date(`${bookDay.value}T00:00:00Z`);
  from.setUTCHours(from.getUTCHours() - 3); // the Berlin day begins before midnight UTC
  const to = new Date(from.getTime() + 30 * 3600 * 1000);
  try {
    const found = await api(`/departments/${departmentId}/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
    const slots = found.slots.filter((s) => localDay(new Date(s.start)) === bookDay.value);
    bookTime.replaceChildren(...(slots.length
      ? slots.map((s) => el("option", { value: s.start, text: t("time_option", { time: formatTime(new Date(s.start)), n: s.remaining }) }))
      : [el("option", { value: "", text: t("no_free_times") })]));
  } catch (error) {
    bookTime.replaceChildren(el("option", { value: "", text: error.message || t("error_generic") }));
  }
}

bookForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(bookError, false);
  const body = {
    start: bookTime.value,
    language: document.getElementById("book-language").value,
    topic: document.getElementById("book-topic").value || null,
    request_id: crypto.randomUUID(),
  };
  if (!body.start) {
    bookError.textContent = t("no_free_times");
    show(bookError, true);
    return;
  }
  if (!department.anonymous) {
    const name = document.getElementById("book-name").value.trim();
    const email = document.getElementById("book-email").value.trim();
    if (name) body.display_name = name;
    if (email) body.email = email;
  }
  try {
    const booked = await api(`/offices/${departmentId}/appointments`, { method: "POST", body, csrf });
    const done = document.getElementById("book-done");
    const start = new Date(booked.appointment.start);
    slot(done, "summary").textContent = t("booked_done", { when: `${dayLabel(localDay(start))}, ${formatTime(start)}` });
    document.getElementById("book-link").value = `${window.location.origin}/appointments/${booked.appointment_id}#token=${booked.token}`;
    show(done, true);
    announce(t("booked_done", { when: formatTime(start) }));
    await Promise.all([refresh(), loadTimes()]);
  } catch (error) {
    const detail = Array.isArray(error.data.detail) ? t("error_generic") : error.message;
    bookError.textContent = detail || t("error_generic");
    show(bookError, true);
  }
});

viewForm.addEventListener("submit", (event) => {
  event.preventDefault();
  refresh();
});
viewForm.querySelectorAll('input[name="span"]').forEach((input) => input.addEventListener("change", refresh));
viewForm.querySelector('[data-action="previous"]').addEventListener("click", () => shift(-1));
viewForm.querySelector('[data-action="next"]').addEventListener("click", () => shift(1));
bookDay.addEventListener("change", loadTimes);

async function main() {
  const me = await requireStaff();
  csrf = me.csrf_token;
  try {
    department = await api(`/departments/${departmentId}?lang=${locale}`);
  } catch (error) {
    state.className = "notice notice-error";
    state.textContent = error.message || t("error_generic");
    return;
  }
  slot(root, "name").textContent = `${document.title.split(" – ")[0]}: ${department.name}`;
  if (!department.accepts_appointments) say(t("no_appointments_here"), "warn");
  if (department.anonymous) {
    slot(bookForm, "name-field").remove();
    slot(bookForm, "email-field").remove();
  }
  document.getElementById("book-topic").replaceChildren(
    el("option", { value: "", text: t("no_topic") }),
    ...department.topics.map((topic) => el("option", { value: topic.id, text: topic[locale] || topic.de })),
  );
  dayInput.value = localDay(new Date());
  bookDay.value = dayInput.value;
  await Promise.all([refresh(), loadTimes()]);
  state.textContent = t("loaded");
  state.className = "visually-hidden";
  // "ready" also after a reconnection: what changed meanwhile is fetched then.
  const changed = (data) => data.department_id === departmentId && refresh();
  new LiveStream(`/api/v1/offices/${departmentId}/appointments/stream`, { appointment: changed, ready: changed }, (live) => {
    if (live === "lost") say(t("live_lost"), "warn");
    else if (result.textContent === t("live_lost")) show(result, false);
  });
}
main();
