// The citizen's appointment: its token is in the fragment of the personal link (never
// sent with the page request); every call to the API carries it as a bearer token.
// Shows the time, offers the .ics file, moving and cancelling, and in the check-in window
// "Knock now": check in, knock with the returned token, continue into the waiting room.
import { announce, api, el, focusHeading, formatTime, formatWhen, locale, show, slot, store, t } from "./common.js";

const root = document.getElementById("appointment");
const appointmentId = root.dataset.appointmentId;
const details = document.getElementById("details");
const knockButton = document.getElementById("knock-now");
const checkInError = document.getElementById("check-in-error");
const actionError = document.getElementById("action-error");
const confirmBox = document.getElementById("cancel-confirm");
const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
const kept = store.get("bb.appointment");
const token = fromFragment || (kept && kept.appointment_id === appointmentId ? kept.token : null);
let appointment = null;
let timer = null;

function remember() {
  const previous = kept && kept.appointment_id === appointmentId ? kept : {};
  store.set("bb.appointment", { ...previous, appointment_id: appointmentId, token });
}

function linkProblem(message) {
  show(details, false);
  slot(root, "state").textContent = "";
  const panel = document.getElementById("link-problem");
  slot(panel, "message").textContent = message;
  show(panel, true);
  focusHeading(document.getElementById("link-problem-heading"));
}

function longDay(date) {
  return new Intl.DateTimeFormat(locale === "en" ? "en-GB" : "de-DE", {
    weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: appointment.timezone || "Europe/Berlin",
  }).format(date);
}

function renderCheckIn() {
  window.clearTimeout(timer);
  const box = document.getElementById("check-in");
  const note = slot(box, "check-in-note");
  show(box, appointment.status === "booked" || appointment.status === "checked_in");
  show(knockButton, false);
  if (appointment.status === "checked_in") {
    const ticket = store.get("bb.ticket");
    note.replaceChildren(ticket ? el("a", { href: "/visit", text: t("checked_in_visit") }) : t("status_checked_in"));
    return;
  }
  if (appointment.status !== "booked") return;
  const now = Date.now();
  const opens = new Date(appointment.check_in_opens).getTime();
  const closes = new Date(appointment.check_in_closes).getTime();
  if (now < opens) {
    note.textContent = t("knock_from", { when: formatWhen(appointment.check_in_opens) });
    // One timer to the opening of the window (no polling): the button appears then.
    if (opens - now < 24 * 3600 * 1000) timer = window.setTimeout(renderCheckIn, opens - now + 500);
  } else if (now > closes) {
    note.textContent = t("knock_over", { when: formatWhen(appointment.check_in_closes) });
  } else {
    note.textContent = t("knock_open");
    show(knockButton, true);
    timer = window.setTimeout(renderCheckIn, closes - now + 500);
  }
}

function render() {
  const start = new Date(appointment.start);
  slot(details, "when").textContent = t("when", { day: longDay(start), time: formatTime(start) });
  slot(details, "department").textContent = appointment.department_name;
  const status = slot(details, "status");
  status.textContent = t(`status_${appointment.status}`);
  status.className = `notice ${appointment.status === "booked" || appointment.status === "checked_in" ? "notice-ok" : "notice-warn"}`;
  const active = appointment.status === "booked";
  show(document.getElementById("move"), active);
  show(document.getElementById("cancel"), active);
  if (!active) show(confirmBox, false);
  document.getElementById("move").href = `/office/${appointment.department_id}/book?move=${appointmentId}`;
  renderCheckIn();
  show(details, true);
}

function actionFailed(error, box = actionError) {
  if (error.status === 410) return linkProblem(t("gone"));
  if (error.status === 401) return linkProblem(t("invalid"));
  box.textContent = error.message || t("error_generic");
  show(box, true);
  box.focus?.();
}

async function downloadCalendar() {
  show(actionError, false);
  try {
    const response = await fetch(`/api/v1/appointments/${appointmentId}/calendar.ics`, {
      headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
    });
    if (!response.ok) {
      let detail = "";
      try { detail = (await response.json()).detail; } catch { detail = ""; }
      throw Object.assign(new Error(typeof detail === "string" ? detail : ""), { status: response.status });
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: t("ics_filename"), hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    announce(t("downloaded"));
  } catch (error) {
    actionFailed(error.status ? error : { message: t("error_network") });
  }
}

async function cancel() {
  try {
    appointment = await api(`/appointments/${appointmentId}/cancel`, { method: "POST", token });
    show(confirmBox, false);
    render();
    announce(t("cancelled"));
    focusHeading(document.getElementById("appointment-heading"));
  } catch (error) {
    actionFailed(error);
  }
}

async function knockNow() {
  show(checkInError, false);
  knockButton.disabled = true;
  const label = knockButton.textContent;
  knockButton.textContent = t("knocking");
  try {
    const checkedIn = await api(`/appointments/${appointmentId}/check-in`, { method: "POST", token });
    appointment = checkedIn.appointment;
    const held = store.get("bb.appointment") || {};
    const body = { language: appointment.language, topic: held.topic || null };
    if (held.display_name) body.display_name = held.display_name;
    const ticket = await api(checkedIn.knock.replace(/^\/api\/v1/, ""), { method: "POST", body, token: checkedIn.knock_token });
    store.set("bb.ticket", {
      ticket_id: ticket.ticket_id,
      token: ticket.token,
      number: ticket.number,
      display_name: ticket.display_name,
      department_id: appointment.department_id,
      anonymous: ticket.anonymous,
    });
    window.location.assign("/visit");
  } catch (error) {
    knockButton.disabled = false;
    knockButton.textContent = label;
    if (error.status === 409 && error.data.opens_at && !error.data.closes_at) {
      checkInError.textContent = t("office_closed", { when: formatWhen(error.data.opens_at) });
      show(checkInError, true);
      return;
    }
    if (error.status === 409 && error.data.closes_at) {
      checkInError.textContent = error.message;
      show(checkInError, true);
      return;
    }
    if (error.status === 422) {
      checkInError.textContent = t("knock_refused", { reason: error.message || t("error_generic") });
      show(checkInError, true);
      return;
    }
    actionFailed(error, checkInError);
  }
}

document.getElementById("download-ics").addEventListener("click", downloadCalendar);
document.getElementById("cancel").addEventListener("click", () => {
  show(confirmBox, true);
  focusHeading(document.getElementById("cancel-confirm-heading"));
});
document.getElementById("cancel-no").addEventListener("click", () => {
  show(confirmBox, false);
  document.getElementById("cancel").focus();
});
document.getElementById("cancel-yes").addEventListener("click", cancel);
document.getElementById("move").addEventListener("click", remember);
knockButton.addEventListener("click", knockNow);

async function load() {
  if (!token) {
    linkProblem(t("no_token"));
    return;
  }
  remember();
  document.getElementById("personal-link").value = `${window.location.origin}/appointments/${appointmentId}#token=${token}`;
  try {
    appointment = await api(`/appointments/${appointmentId}`, { token });
  } catch (error) {
    if (error.status === 404) return linkProblem(t("not_found"));
    return actionFailed(error, slot(root, "state"));
  }
  render();
  slot(root, "state").textContent = t("loaded");
  slot(root, "state").className = "visually-hidden";
}
load();
