// The data protection officer's view of the audit log: consultations by department and
// day with their timelines, search, queue statistics, export, online verification and
// who looked. Every read goes to /api/v1/audit on the same origin, which records it.
import { api, departmentName, el, focusHeading, locale, show, t } from "./common.js";
import { startMonitor } from "./dpo-monitor.js";
import { requireStaff } from "./staff-session.js";

const TIME_ZONE = "Europe/Berlin";
const intlLocale = locale === "en" ? "en-GB" : "de-DE";
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
let departments = [];

function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE }).format(new Date());
}

function dateTime(iso) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat(intlLocale, {
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: TIME_ZONE,
  }).format(new Date(iso));
}

function clock(iso) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat(intlLocale, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: TIME_ZONE }).format(
    new Date(iso),
  );
}

/** Seconds as "1:05:09" / "4:07" / "0:12". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const total = Math.round(Number(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function departmentLabel(id) {
  const found = departments.find((d) => String(d.id) === String(id));
  return found ? departmentName(found) : id || "–";
}

function setState(node, text, kind) {
  node.textContent = text;
  node.className = kind ? `notice notice-${kind}` : "";
}

// -- timeline -----------------------------------------------------------------------------

// The booking's steps of a consultation begun with an appointment (their words are in the
// page's catalog, templates/dpo.html).
const APPOINTMENT_EVENTS = new Set([
  "AppointmentBooked", "AppointmentRescheduled", "AppointmentCancelled", "AppointmentCheckedIn", "AppointmentMissed",
]);

function slotTime(iso) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat(intlLocale, {
    day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE,
  }).format(new Date(iso));
}

function appointmentText(step) {
  const actor = step.booked_by || step.cancelled_by;
  const by = actor === "staff" ? t("ev_appointment_by_staff", { staff: step.staff_id || "–" }) : t("ev_appointment_by_citizen");
  return t(`ev_${step.event}`, {
    slot: slotTime(step.slot_start),
    from: slotTime(step.from_start),
    at: clock(step.checked_in_at || step.at),
    by,
    appointment: step.appointment_id || "–",
  });
}

function stepText(step) {
  if (step.service === "booking" && APPOINTMENT_EVENTS.has(step.event)) return appointmentText(step);
  const vars = {
    staff: step.staff_id || step.admitted_by || step.invited_by || step.revoked_by || step.ended_by || "–",
    participant: step.participant_id || "–",
    role: step.role || "–",
    invitation: step.invitation_id || "–",
    number: step.number ?? "–",
    reason: step.reason || "–",
    source: step.source ? t(`source_${step.source}`) : "–",
  };
  if (step.event === "ParticipantJoined") {
    const kind = step.role === "citizen" ? "citizen" : step.role === "staff" ? "staff" : "other";
    return t(`ev_ParticipantJoined_${kind}`, vars);
  }
  if (step.event === "InvitationRevoked") vars.staff = step.revoked_by || "–";
  if (step.event === "InterpreterInvited") vars.staff = step.invited_by || "–";
  if (step.event === "ConsultationEnded") vars.staff = step.ended_by || "–";
  if (step.event === "TrackPublished" && step.source === "screen") return t("ev_TrackPublished_screen", vars);
  const key = `ev_${step.event}`;
  const text = t(key, vars);
  return text === key ? step.event : text;
}

function renderTimeline(view, kind = "consultation") {
  const section = document.getElementById("timeline-section");
  const heading = document.getElementById("timeline-heading");
  heading.textContent =
    kind === "ticket" ? t("timeline_of_ticket", { id: view.ticket_id }) : t("timeline_of", { id: view.consultation_id });
  const slots = (name) => section.querySelector(`[data-slot="${name}"]`);
  slots("consultation").textContent = view.consultation_id || "–";
  slots("ticket").textContent = view.ticket_id || "–";
  slots("department").textContent = departmentLabel(view.department_id);
  slots("waited").textContent = duration(view.durations?.waited_seconds);
  slots("duration").textContent = duration(view.durations?.consultation_seconds);
  document.getElementById("timeline-steps").replaceChildren(
    ...view.steps.map((step) =>
      el(
        "li",
        { "data-event": step.event, "data-service": step.service },
        el("time", { datetime: step.at, text: clock(step.at) }),
        " ",
        el("span", { text: stepText(step) }),
      ),
    ),
  );
  const presence = Object.entries(view.durations?.presence_seconds || {});
  document
    .getElementById("timeline-presence")
    .replaceChildren(
      ...(presence.length
        ? presence.map(([who, seconds]) => el("li", { text: t("presence", { participant: who, duration: duration(seconds) }) }))
        : [el("li", { className: "muted", text: t("no_presence") })]),
    );
  show(section, true);
  focusHeading(heading);
}

async function openTimeline(consultationId) {
  try {
    renderTimeline(await api(`/audit/consultations/${consultationId}`));
  } catch (error) {
    setState(document.getElementById("consultations-state"), error.message || t("error_generic"), "error");
  }
}

// -- consultations of a day ----------------------------------------------------------------

async function loadConsultations() {
  const stateNode = document.getElementById("consultations-state");
  const department = document.getElementById("consultations-department").value;
  const day = document.getElementById("consultations-date").value;
  if (!department || !day) return;
  setState(stateNode, t("loading"));
  const table = document.getElementById("consultations-table");
  try {
    const rows = await api(`/audit/consultations?department_id=${encodeURIComponent(department)}&date=${encodeURIComponent(day)}`);
    rows.sort((a, b) => String(a.opened_at).localeCompare(String(b.opened_at)));
    document.getElementById("consultations-rows").replaceChildren(
      ...rows.map((row) =>
        el(
          "tr",
          { "data-consultation": row.consultation_id, "data-ticket": row.ticket_id },
          el("td", { text: clock(row.opened_at) }),
          el("td", { text: clock(row.ended_at) }),
          el("td", {}, el("code", { text: row.consultation_id })),
          el("td", {}, el("code", { text: row.ticket_id || "–" })),
          el("td", { text: (row.staff || []).join(", ") || "–" }),
          el("td", { text: row.participants }),
          el("td", { text: row.screen_shares }),
          el("td", { text: duration(row.waited_seconds) }),
          el("td", { text: duration(row.consultation_seconds) }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              className: "secondary small",
              "aria-label": t("show_timeline_of", { id: row.consultation_id }),
              text: t("show_timeline"),
              onclick: () => openTimeline(row.consultation_id),
            }),
          ),
        ),
      ),
    );
    show(table, rows.length > 0);
    setState(stateNode, rows.length ? t("n_consultations", { n: rows.length }) : t("none_that_day"));
  } catch (error) {
    show(table, false);
    setState(stateNode, error.message || t("error_generic"), "error");
  }
}

// -- search ---------------------------------------------------------------------------------

async function search() {
  const stateNode = document.getElementById("search-state");
  const input = document.getElementById("search-id");
  const id = input.value.trim();
  if (!UUID_PATTERN.test(id)) {
    setState(stateNode, t("not_an_id"), "error");
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  input.removeAttribute("aria-invalid");
  setState(stateNode, t("loading"));
  try {
    const found = await api(`/audit/search?id=${encodeURIComponent(id)}`);
    setState(
      stateNode,
      found.kind === "ticket" && !found.consultation_id
        ? t("found_ticket", { id: found.ticket_id })
        : t("found_consultation", { id: found.consultation_id }),
      "ok",
    );
    renderTimeline(found, found.consultation_id ? "consultation" : "ticket");
  } catch (error) {
    setState(stateNode, error.status === 404 ? t("not_found") : error.message || t("error_generic"), "error");
  }
}

// -- statistics -----------------------------------------------------------------------------

const COUNTED = [
  "Knocked",
  "Admitted",
  "Declined",
  "Withdrawn",
  "Transferred",
  "Expired",
  "ConsultationOpened",
  "ConsultationEnded",
];
async function loadStatistics() {
  const stateNode = document.getElementById("statistics-state");
  const department = document.getElementById("statistics-department").value;
  const first = document.getElementById("statistics-from").value;
  const last = document.getElementById("statistics-to").value;
  if (!department || !first || !last) return;
  setState(stateNode, t("loading"));
  try {
    const stats = await api(
      `/audit/statistics?department_id=${encodeURIComponent(department)}&from=${encodeURIComponent(first)}&to=${encodeURIComponent(last)}`,
    );
    const rows = COUNTED.map((kind) =>
      el("tr", { "data-count": kind }, el("th", { scope: "row", text: t(`count_${kind}`) }), el("td", { text: stats.counts[kind] ?? 0 })),
    );
    for (const [reason, n] of Object.entries(stats.declined_by_reason || {})) {
      rows.push(el("tr", {}, el("th", { scope: "row", text: t("declined_reason", { reason }) }), el("td", { text: n })));
    }
    document.getElementById("statistics-counts").replaceChildren(...rows);
    const dist = (label, d) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: label }),
        el("td", { text: d.count }),
        el("td", { text: duration(d.mean) }),
        el("td", { text: duration(d.median) }),
        el("td", { text: duration(d.p90) }),
        el("td", { text: duration(d.max) }),
      );
    document
      .getElementById("statistics-durations")
      .replaceChildren(dist(t("stats_wait"), stats.wait_seconds), dist(t("stats_consultation"), stats.consultation_seconds));
    show(document.getElementById("statistics-result"), true);
    const any = Object.values(stats.counts).some((n) => n > 0);
    setState(stateNode, any ? "" : t("stats_none"));
  } catch (error) {
    setState(stateNode, error.message || t("error_generic"), "error");
  }
}

// -- verification and who looked ----------------------------------------------------------

async function runVerify() {
  const box = document.getElementById("verify-result");
  setState(box, t("loading"));
  try {
    const report = await api("/audit/verify");
    if (report.ok) {
      setState(box, t("verify_ok", { records: report.records, checkpoints: report.checkpoints.length }), "ok");
    } else {
      setState(box, t("verify_failed", { failure: report.failure }), "error");
    }
    box.dataset.ok = String(report.ok);
  } catch (error) {
    setState(box, error.message || t("error_generic"), "error");
  }
}

/** A recorded read as a table row: a DPO's read of the log, or a staff member's of a consultation. */
function viewRow(view) {
  const staffRead = view.type === "ConsultationViewed";
  const action = staffRead ? `consultation_${view.read}` : view.action;
  const target = staffRead ? `consultation=${view.consultation_id}` : view.target;
  return el(
    "tr",
    { "data-action": action, "data-staff": view.staff_id, "data-type": view.type },
    el("td", {}, el("time", { datetime: view.occurred_at, text: dateTime(view.occurred_at) })),
    el("td", { text: view.staff_id }),
    el("td", { text: t(`action_${action}`) }),
    el("td", {}, el("code", { text: target || "–" })),
  );
}

async function loadViews() {
  const stateNode = document.getElementById("views-state");
  const table = document.getElementById("views-table");
  const consultation = document.getElementById("views-consultation").value.trim();
  if (consultation && !UUID_PATTERN.test(consultation)) {
    setState(stateNode, t("views_not_an_id"), "error");
    show(table, false);
    return;
  }
  setState(stateNode, t("loading"));
  try {
    const query = consultation ? `&consultation_id=${encodeURIComponent(consultation)}` : "";
    const views = await api(`/audit/views?limit=200${query}`); // the newest first
    document.getElementById("views-rows").replaceChildren(...views.map(viewRow));
    show(table, views.length > 0);
    if (consultation) {
      const key = views.length ? "views_of" : "views_none_of";
      setState(stateNode, t(key, { n: views.length, id: consultation }));
    } else {
      setState(stateNode, views.length ? t("views_count", { n: views.length }) : t("views_none"));
    }
  } catch (error) {
    setState(stateNode, error.message || t("error_generic"), "error");
  }
}

// -- start ------------------------------------------------------------------------------------

async function start() {
  startMonitor();
  const me = await requireStaff();
  if (!(me.roles || []).includes("dpo")) {
    setState(document.getElementById("consultations-state"), t("forbidden"), "error");
    return;
  }
  document.getElementById("verify-command").textContent =
    `buergerbuero audit verify audit.jsonl --key "$(curl -s ${window.location.origin}/api/v1/audit/key)"`;
  const day = today();
  document.getElementById("consultations-date").value = day;
  document.getElementById("statistics-from").value = day;
  document.getElementById("statistics-to").value = day;
  try {
    departments = await api("/departments");
  } catch {
    departments = [];
  }
  for (const select of document.querySelectorAll("select[data-departments]")) {
    select.replaceChildren(...departments.map((d) => el("option", { value: d.id, text: departmentName(d) })));
  }
  document.getElementById("consultations-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadConsultations();
  });
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  document.getElementById("statistics-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadStatistics();
  });
  document.getElementById("run-verify").addEventListener("click", runVerify);
  document.getElementById("views-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadViews();
  });
  document.body.dataset.ready = "true";
  await loadConsultations();
}

start();
