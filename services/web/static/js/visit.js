// The waiting room: live place and wait from the ticket's stream, messages, leaving,
// and a clear page for every way a visit can end. The ticket's token lives in this
// tab's sessionStorage and appears in no URL except the EventSource's query.
import {
  announce,
  api,
  departmentName,
  el,
  focusHeading,
  formatExpectedWait,
  formatTime,
  formatWhen,
  LiveStream,
  locale,
  show,
  slot,
  store,
  t,
  waitBasis,
} from "./common.js";
import { confirmDialog } from "./confirm-dialog.js";
import { setupDeviceCheck } from "./devicecheck.js";
import { chime, unlockAudioOnInteraction } from "./sound.js";

const SECTIONS = ["no-visit", "waiting", "admitted", "declined", "expired", "withdrawn", "gone"];
const ticket = store.get("bb.ticket");
const baseTitle = document.title;
const connection = document.getElementById("connection");
const waiting = document.getElementById("waiting");
const messages = document.getElementById("messages");
const soundOn = document.getElementById("sound-on");
const notifyOn = document.getElementById("notify-on");
let stream = null;
let shownDepartment = "";
let current = null;
let departmentShown = null;
const received = [];

unlockAudioOnInteraction();

function showSection(id) {
  for (const name of SECTIONS) show(document.getElementById(name), name === id);
  if (id !== "waiting") show(connection, false);
}

function endWith(id) {
  if (current === id) return;
  current = id;
  showSection(id);
  focusHeading(document.getElementById(`${id}-heading`));
  // Keep listening a little longer: a last message from the office may follow.
  if (id !== "admitted") window.setTimeout(() => stream && stream.close(), 15000);
}

async function showDepartment(departmentId) {
  if (departmentShown === departmentId) return;
  const transferred = departmentShown !== null || (ticket.department_id && ticket.department_id !== departmentId);
  departmentShown = departmentId;
  let name = "";
  try {
    const department = await api(`/departments/${departmentId}?lang=${locale}`);
    name = departmentName(department);
  } catch {
    name = "";
  }
  shownDepartment = name;
  slot(waiting, "department").textContent = t("department", { name });
  if (transferred) {
    const note = document.getElementById("transferred");
    note.textContent = t("transferred", { name });
    show(note, true);
    ticket.department_id = departmentId;
    store.set("bb.ticket", ticket);
  }
}

function onWaiting(status) {
  if (current !== "waiting") {
    current = "waiting";
    showSection("waiting");
  }
  showDepartment(status.department_id);
  const wait = formatExpectedWait(status.expected_wait);
  slot(waiting, "place").textContent = String(status.place);
  slot(waiting, "wait").textContent = wait;
  slot(waiting, "wait-basis").textContent = waitBasis(status.expected_wait);
  document.title = t("title_waiting", { place: status.place });
  const sentence = status.place === 1 ? t("first_announce", { wait }) : t("place_announce", { place: status.place, wait });
  const region = document.getElementById("place-sentence");
  if (region.textContent !== sentence) region.textContent = sentence;
}

/** It is the citizen's turn: the tab's title, a tone and, if they chose it, a message from
 * the system say so (the tab may be in the background). */
function sayItIsYourTurn() {
  endWith("admitted");
  document.title = t("title_admitted");
  announce(t("admitted_announce"));
  if (soundOn.checked) chime();
  if (notifyOn.checked && "Notification" in window && Notification.permission === "granted" && document.hidden) {
    try {
      const note = new Notification(t("your_turn"), {
        body: t("your_turn_body", { name: shownDepartment }),
        tag: "bb-your-turn",
        requireInteraction: true,
      });
      note.addEventListener("click", () => {
        window.focus();
        note.close();
      });
    } catch {
      // Some browsers allow notifications only from a service worker: title and tone remain.
    }
  }
}

/** To the conversation, once the citizen can see this tab: not behind their back. */
function goWhenSeen(target) {
  const go = () => window.setTimeout(() => window.location.assign(target), 1500);
  if (!document.hidden) {
    go();
    return;
  }
  const onVisible = () => {
    if (document.hidden) return;
    document.removeEventListener("visibilitychange", onVisible);
    go();
  };
  document.addEventListener("visibilitychange", onVisible);
}

function onAdmitted(status) {
  if (current !== "admitted") sayItIsYourTurn();
  if (!status.consultation_id) return; // the door is opening; its id follows in a moment
  const target = `/visit/consultation/${status.consultation_id}`;
  store.set("bb.admitted", { consultation_id: status.consultation_id, ticket_id: ticket.ticket_id });
  const link = slot(document.getElementById("admitted"), "consultation-link");
  if (link.getAttribute("href") === target) return;
  link.href = target;
  if (stream) stream.close();
  goWhenSeen(target);
}

function onDeclined(status) {
  const reason = status.decline_reason || "other";
  const section = document.getElementById("declined");
  slot(section, "reason").textContent = t(`reason_${reason}`);
  slot(section, "next-step").textContent = t(`next_${reason}`);
  endWith("declined");
  document.title = baseTitle;
  renderMessagesInto(slot(section, "declined-messages"));
}

function onExpired(status) {
  const section = document.getElementById("expired");
  if (status.expiry_reason === "no_show") slot(section, "expired-text").textContent = t("expired_no_show");
  slot(section, "next-opening").textContent = t("opens_next", { when: formatWhen(status.next_opening) });
  endWith("expired");
  document.title = baseTitle;
}

function onStatus(status) {
  switch (status.status) {
    case "waiting":
      onWaiting(status);
      break;
    case "admitted":
      onAdmitted(status);
      break;
    case "declined":
      onDeclined(status);
      break;
    case "expired":
      onExpired(status);
      break;
    case "withdrawn":
      store.remove("bb.ticket");
      endWith("withdrawn");
      document.title = baseTitle;
      break;
    default:
      break;
  }
}

function messageItem(message) {
  return el("li", {}, el("time", { datetime: message.at.toISOString(), text: formatTime(message.at) }), message.text);
}

function renderMessagesInto(container) {
  if (!container) return;
  container.replaceChildren();
  if (received.length === 0) return;
  container.append(
    el("h2", { text: t("message_from_office") }),
    el("ul", { className: "messages" }, received.map(messageItem)),
  );
}

function onMessage(data) {
  if (!data.text) return;
  const message = { text: data.text, at: new Date() };
  received.push(message);
  show(slot(waiting, "no-messages"), false);
  messages.append(messageItem(message));
  if (current === "declined") renderMessagesInto(slot(document.getElementById("declined"), "declined-messages"));
  else if (current !== "waiting") announce(`${t("message_from_office")}: ${data.text}`);
}

function onConnection(state) {
  if (state === "lost") {
    show(connection, current === "waiting" || current === null);
  } else {
    if (!connection.hidden) announce(t("reconnected"));
    show(connection, false);
  }
}

document.getElementById("leave").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  const sure = await confirmDialog({
    id: "leave-dialog",
    title: t("leave_confirm_title"),
    text: t("leave_confirm"),
    confirm: t("leave_confirm_yes"),
    cancel: t("leave_confirm_no"),
  });
  if (!sure) return;
  button.disabled = true;
  try {
    const status = await api(`/tickets/${ticket.ticket_id}/withdraw`, { method: "POST", token: ticket.token });
    onStatus(status);
  } catch (error) {
    button.disabled = false;
    if (error.status === 409) return; // no longer waiting: the stream tells what happened
    window.alert(error.message || t("error_generic"));
  }
});

function setupNotifications() {
  if (!("Notification" in window)) return;
  show(document.getElementById("notify-field"), true);
  const blocked = document.getElementById("notify-blocked");
  notifyOn.checked = store.get("bb.notify") === true && Notification.permission === "granted";
  notifyOn.addEventListener("change", async () => {
    show(blocked, false);
    if (notifyOn.checked && Notification.permission !== "granted") {
      const answer = await Notification.requestPermission();
      if (answer !== "granted") {
        notifyOn.checked = false;
        show(blocked, true);
      }
    }
    store.set("bb.notify", notifyOn.checked);
  });
}

function begin() {
  if (!ticket || !ticket.ticket_id || !ticket.token) {
    showSection("no-visit");
    return;
  }
  const shownAs = ticket.anonymous ? t("pseudonym", { number: ticket.number }) : ticket.display_name;
  const number = shownAs ? t("name_shown", { name: shownAs }) : "";
  slot(waiting, "number").textContent = t("number", { number: ticket.number, name: number });
  setupDeviceCheck(waiting.querySelector("[data-device-check]"));
  setupNotifications();
  const url = `/api/v1/tickets/${encodeURIComponent(ticket.ticket_id)}/stream?token=${encodeURIComponent(ticket.token)}`;
  stream = new LiveStream(url, { status: onStatus, message: onMessage }, onConnection);
  // A token the server no longer accepts: say so instead of retrying for ever.
  api(`/tickets/${ticket.ticket_id}`, { token: ticket.token }).then(onStatus, (error) => {
    if (error.status === 401 || error.status === 404) {
      stream.close();
      store.remove("bb.ticket");
      endWith("gone");
    }
  });
}

begin();
