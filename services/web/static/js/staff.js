// The staff dashboard: every department I serve, its live queue, and what I can do.
// A line may be very long (a flood, a rush): the page holds and renders only its first
// entries (as many as the server sends, 50 by default) and counts the rest.
import {
  announce,
  api,
  departmentName,
  el,
  formatTime,
  languageName,
  LiveStream,
  locale,
  show,
  slot,
  t,
  topicLabel,
} from "./common.js";
import { confirmDialog } from "./confirm-dialog.js";
import { chime, unlockAudioOnInteraction } from "./sound.js";
import { requireStaff } from "./staff-session.js";

const officesRoot = document.getElementById("offices");
const state = document.getElementById("dashboard-state");
const result = document.getElementById("action-result");
const officeTemplate = document.getElementById("office-template");
const entryTemplate = document.getElementById("entry-template");
const soundToggle = document.getElementById("knock-sound");
const notifyButton = document.getElementById("enable-notifications");
let csrf = "";
let staffId = "";
let departments = new Map();
const views = new Map(); // department id -> OfficeView
let counter = 0;
const SHOWN = 50; // entries of a line rendered; the server sends no more than this by default
// Tickets this page admitted, and the consultations the stream named for tickets:
// whichever arrives second takes the staff member into the conversation.
const admitting = new Set();
const consultations = new Map();

unlockAudioOnInteraction();

function say(text, kind = "ok") {
  result.className = `notice notice-${kind}`;
  result.textContent = text;
  show(result, true);
}

function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

function linkLabel(root, labelSelector, control) {
  const label = root.querySelector(labelSelector);
  if (!label || !control) return;
  control.id = uid("field");
  label.htmlFor = control.id;
}

async function act(path, body) {
  return api(path, { method: "POST", body, csrf });
}

function since(knockedAt) {
  const minutes = Math.floor((Date.now() - new Date(knockedAt).getTime()) / 60000);
  return minutes < 1 ? t("seconds_waiting") : t("minutes_waiting", { n: minutes });
}

function goToConsultation(ticketId, consultationId) {
  const known = consultationId || consultations.get(ticketId);
  if (known) {
    window.location.assign(`/staff/consultation/${known}`);
    return;
  }
  admitting.add(ticketId); // the stream's `consultation` event follows in a moment
}

/** The stream says where an admitted ticket's conversation is (one of my lines). */
function consultationOpened(data) {
  consultations.set(data.ticket_id, data.consultation_id);
  if (admitting.has(data.ticket_id) && (!data.staff_id || data.staff_id === staffId)) {
    admitting.delete(data.ticket_id);
    window.location.assign(`/staff/consultation/${data.consultation_id}`);
  }
}

function notifyKnock(office) {
  if (soundToggle.checked) chime([880, 660]);
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      new Notification(t("knock_title"), { body: t("knock_body", { department: office.name }), tag: `knock-${office.id}` });
    } catch {
      // Some browsers allow notifications only from a service worker: the tone still plays.
    }
  }
}

class OfficeView {
  constructor(office) {
    this.office = office;
    this.department = departments.get(office.id);
    this.name = locale === "en" ? office.name_en : office.name_de;
    this.entries = new Map(); // the first of the line, at most this.capacity
    this.capacity = SHOWN;
    this.total = 0; // everyone waiting, shown or not
    this.shared = []; // client addresses with several tickets: {client_tag, waiting}
    this.refilling = null;
    this.node = officeTemplate.content.firstElementChild.cloneNode(true);
    const headingId = uid("office");
    slot(this.node, "name").textContent = this.name;
    slot(this.node, "name").id = headingId;
    this.node.setAttribute("aria-labelledby", headingId);
    this.queue = slot(this.node, "queue");
    this.queueHeading = slot(this.node, "queue-heading");
    this.queueHeading.id = uid("queue");
    this.queue.setAttribute("aria-labelledby", this.queueHeading.id);
    if (this.department?.accepts_appointments) {
      const link = slot(this.node, "appointments");
      link.href = `/staff/appointments/${office.id}`;
      link.setAttribute("aria-label", `${link.textContent}: ${this.name}`);
      show(link, true);
    }
    if (office.my_role === "admin") {
      const link = slot(this.node, "settings");
      link.href = `/staff/office/${office.id}`;
      show(link, true);
    }
    const allInput = slot(this.node, "message-all-input");
    linkLabel(this.node, '[data-slot="message-all-label"]', allInput);
    slot(this.node, "message-all-label").textContent = t("message_all_label", { department: this.name });
    this.bind();
    this.setOpen(office.open);
    this.render();
    this.wakeAtOpening();
  }

  setLive(live) {
    slot(this.node, "summary").textContent = live === "lost" ? t("live_lost") : this.summary();
  }

  /** A closed office opens by its schedule: start listening then (a timer, not polling). */
  wakeAtOpening() {
    const opensAt = this.department?.opens_at;
    if (this.open || !opensAt) return;
    const delay = new Date(opensAt).getTime() - Date.now() + 2000;
    if (delay > 0 && delay < 24 * 3600 * 1000) {
      window.setTimeout(() => {
        this.setOpen(true);
      }, delay);
    }
  }

  bind() {
    this.node.querySelector('[data-action="admit-next"]').addEventListener("click", async () => {
      try {
        const admitted = await act(`/departments/${this.office.id}/queue/admit-next`);
        say(t("admitted"));
        goToConsultation(admitted.ticket_id, admitted.consultation_id);
      } catch (error) {
        say(error.message, "error");
      }
    });
    this.node.querySelector('[data-action="open"]').addEventListener("click", async () => {
      try {
        const office = await act(`/offices/${this.office.id}/open`);
        this.setOpen(office.open);
        say(t("office_opened"));
      } catch (error) {
        say(error.message, "error");
      }
    });
    this.node.querySelector('[data-action="close"]').addEventListener("click", async () => {
      const sure = await confirmDialog({
        id: "close-dialog",
        title: t("close_confirm_title"),
        text: t("close_confirm"),
        confirm: t("close_confirm_yes"),
        cancel: t("close_confirm_no"),
      });
      if (!sure) return;
      try {
        const office = await act(`/offices/${this.office.id}/close`);
        this.setOpen(office.open);
        say(t("office_closed"));
      } catch (error) {
        say(error.message, "error");
      }
    });
    this.node.querySelector('[data-form="message-all"]').addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = slot(this.node, "message-all-input");
      if (!input.value.trim()) return;
      try {
        await act(`/departments/${this.office.id}/queue/message`, { text: input.value.trim() });
        input.value = "";
        say(t("message_sent"));
      } catch (error) {
        say(error.message, "error");
      }
    });
  }

  setOpen(open) {
    this.open = open;
    const badge = slot(this.node, "state");
    badge.textContent = open ? t("open") : t("closed");
    badge.className = `badge ${open ? "badge-open" : "badge-closed"}`;
    show(this.node.querySelector('[data-action="open"]'), !open);
    show(this.node.querySelector('[data-action="close"]'), open);
    if (!open) {
      this.entries.clear();
      this.total = 0;
      this.shared = [];
      this.render();
    }
  }

  summary() {
    return this.total === 0 ? t("none_waiting") : t("waiting_count", { n: this.total });
  }

  snapshot(data) {
    if (data.open !== this.open) this.setOpen(data.open);
    this.entries.clear();
    for (const entry of data.waiting) this.entries.set(entry.ticket_id, entry);
    this.total = data.total ?? data.waiting.length;
    // The server sent the first of a longer line: that many are what this page shows.
    this.capacity = data.waiting.length < this.total ? Math.max(data.waiting.length, 1) : SHOWN;
    this.shared = data.shared_addresses || [];
    this.render();
  }

  knocked(entry) {
    const wasIdle = this.total === 0;
    this.total = entry.waiting ?? this.total + 1;
    if (entry.client_tag) this.sameClient(entry.client_tag, entry.same_client);
    const ordered = this.ordered();
    const last = ordered[ordered.length - 1];
    if (ordered.length < this.capacity || !last || compare(entry, last) < 0) {
      this.entries.set(entry.ticket_id, entry);
      if (this.entries.size > this.capacity) this.entries.delete(this.ordered().pop().ticket_id);
      announce(t("knock_announce", { department: this.name, number: entry.number ?? "" }));
    }
    this.render();
    if (wasIdle) notifyKnock({ id: this.office.id, name: this.name });
  }

  left(data) {
    this.total = data.waiting ?? Math.max(this.total - 1, 0);
    const entry = this.entries.get(data.ticket_id);
    if (entry) {
      this.entries.delete(data.ticket_id);
      announce(t("left_announce", { department: this.name, number: entry.number }));
    }
    this.render();
    if (this.entries.size < Math.min(this.capacity, this.total)) this.refill();
  }

  /** Those behind the shown part move up: fetch the line's first entries again (one
   * request at a time, however many leave meanwhile). */
  refill() {
    if (this.refilling) {
      this.refillAgain = true;
      return;
    }
    this.refilling = api(`/departments/${this.office.id}/queue`)
      .then((data) => this.snapshot(data))
      .catch(() => {})
      .finally(() => {
        this.refilling = null;
        if (this.refillAgain) {
          this.refillAgain = false;
          this.refill();
        }
      });
  }

  /** Tickets of one client address: how many there are now, on every shown entry. */
  sameClient(tag, count) {
    for (const entry of this.entries.values()) {
      if (entry.client_tag === tag) entry.same_client = count;
    }
    const group = this.shared.find((g) => g.client_tag === tag);
    if (group) group.waiting = count;
    else this.shared.push({ client_tag: tag, waiting: count });
    this.shared.sort((a, b) => b.waiting - a.waiting);
  }

  ordered() {
    return [...this.entries.values()].sort(compare);
  }

  renderShared() {
    const box = slot(this.node, "shared");
    const groups = this.shared.filter((g) => g.waiting > 1);
    const drawn = groups.map((g) => `${g.client_tag}:${g.waiting}`).join(" ");
    if (drawn === this.sharedDrawn) return; // unchanged: keep the buttons (and the focus)
    this.sharedDrawn = drawn;
    show(box, groups.length > 0);
    slot(box, "shared-list").replaceChildren(
      ...groups.map((group) =>
        el(
          "li",
          {},
          el("span", { text: t("shared_group", { tag: group.client_tag, n: group.waiting }) }),
          el("button", {
            type: "button",
            className: "danger small",
            text: t("decline_group", { n: group.waiting }),
            "aria-label": t("decline_group_label", { n: group.waiting, tag: group.client_tag }),
            onclick: () => this.declineGroup(group),
          }),
        ),
      ),
    );
  }

  async declineGroup(group) {
    const sure = await confirmDialog({
      id: "decline-group-dialog",
      title: t("decline_group_confirm_title", { n: group.waiting }),
      text: t("decline_group_confirm"),
      confirm: t("decline_group_confirm_yes"),
      cancel: t("decline_group_confirm_no"),
    });
    if (!sure) return;
    try {
      const done = await act(`/departments/${this.office.id}/queue/decline-client`, {
        client_tag: group.client_tag,
        reason: "other",
      });
      say(t("declined_many", { n: done.declined }));
      this.refill();
    } catch (error) {
      say(error.message, "error");
    }
  }

  render() {
    const keep = new Map([...this.queue.querySelectorAll("li[data-ticket]")].map((li) => [li.dataset.ticket, li]));
    const items = this.ordered().map((entry) => keep.get(entry.ticket_id) || this.entryNode(entry));
    if (items.length === 0) {
      this.queue.replaceChildren(el("li", { className: "empty", text: t("nobody") }));
    } else {
      // Keep existing nodes (and the focus or an open form inside them) where they are.
      for (const li of this.queue.children) if (!items.includes(li)) li.remove();
      items.forEach((li, index) => {
        if (this.queue.children[index] !== li) this.queue.insertBefore(li, this.queue.children[index] || null);
      });
    }
    this.queueHeading.textContent = t("waiting_heading", { n: this.total });
    this.node.querySelector('[data-action="admit-next"]').disabled = this.total === 0;
    slot(this.node, "summary").textContent = this.summary();
    const more = slot(this.node, "more");
    const hidden = this.total - this.entries.size;
    show(more, hidden > 0);
    more.textContent = hidden > 0 ? t("more_waiting", { n: hidden, shown: this.entries.size }) : "";
    for (const li of this.queue.querySelectorAll("li[data-ticket]")) this.markSameClient(li);
    this.renderShared();
    this.tick();
  }

  markSameClient(li) {
    const entry = this.entries.get(li.dataset.ticket);
    const badge = slot(li, "same-client");
    const shared = Boolean(entry?.client_tag) && entry.same_client > 1;
    show(badge, shared);
    badge.textContent = shared ? t("same_client", { n: entry.same_client }) : "";
  }

  tick() {
    for (const li of this.queue.querySelectorAll("li[data-ticket]")) {
      const entry = this.entries.get(li.dataset.ticket);
      if (entry) slot(li, "since").textContent = since(entry.knocked_at);
    }
  }

  entryNode(entry) {
    const li = entryTemplate.content.firstElementChild.cloneNode(true);
    li.dataset.ticket = entry.ticket_id;
    const number = entry.number;
    const name = entry.anonymous ? t("pseudonym", { number }) : entry.display_name;
    let who = name ? t("who", { number, name }) : t("who_anonymous", { number });
    if (entry.transferred) who += ` ${t("transferred")}`;
    if (entry.priority === "appointment") {
      const at = entry.appointment_at ? new Date(entry.appointment_at) : null;
      who += ` ${at ? t("appointment_at", { time: formatTime(at) }) : t("appointment")}`;
    }
    slot(li, "who").textContent = who;
    slot(li, "language").textContent = entry.language ? t("language", { language: languageName(entry.language) }) : "";
    const topic = topicLabel(this.department, entry.topic);
    slot(li, "topic").textContent = topic ? t("topic", { topic }) : "";

    const admit = li.querySelector('[data-action="admit"]');
    admit.setAttribute("aria-label", t("admit_label", { number }));
    admit.addEventListener("click", async () => {
      try {
        const admitted = await act(`/tickets/${entry.ticket_id}/admit`);
        say(t("admitted"));
        goToConsultation(entry.ticket_id, admitted?.consultation_id);
      } catch (error) {
        say(error.message, "error");
      }
    });

    linkLabel(li, 'label[data-for="reason"]', slot(li, "reason"));
    linkLabel(li, 'label[data-for="decline-text"]', slot(li, "decline-text"));
    linkLabel(li, 'label[data-for="target"]', slot(li, "target"));
    linkLabel(li, 'label[data-for="message-text"]', slot(li, "message-text"));
    slot(li, "decline").querySelector("summary").setAttribute("aria-label", t("decline_label", { number }));
    slot(li, "transfer").querySelector("summary").setAttribute("aria-label", t("transfer_label", { number }));
    slot(li, "message").querySelector("summary").setAttribute("aria-label", t("message_label", { number }));

    li.querySelector('[data-form="decline"]').addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = slot(li, "decline-text").value.trim();
      try {
        await act(`/tickets/${entry.ticket_id}/decline`, { reason: slot(li, "reason").value, message: text || null });
        say(t("declined"));
      } catch (error) {
        say(error.message, "error");
      }
    });

    const target = slot(li, "target");
    target.replaceChildren(
      ...[...departments.values()]
        .filter((department) => department.id !== this.office.id)
        .map((department) => el("option", { value: department.id, text: departmentName(department) })),
    );
    li.querySelector('[data-form="transfer"]').addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await act(`/tickets/${entry.ticket_id}/transfer`, { department_id: target.value });
        say(t("transferred_done"));
      } catch (error) {
        say(error.message, "error");
      }
    });

    li.querySelector('[data-form="message-one"]').addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = slot(li, "message-text");
      if (!input.value.trim()) return;
      try {
        await act(`/tickets/${entry.ticket_id}/message`, { text: input.value.trim() });
        input.value = "";
        say(t("message_sent"));
      } catch (error) {
        say(error.message, "error");
      }
    });
    return li;
  }
}

/** The line's order as the server keeps it (each entry's `line_order`): the rule lives
 * there alone; this only places a ticket that joins the line live. */
function compare(a, b) {
  return a.line_order < b.line_order ? -1 : a.line_order > b.line_order ? 1 : 0;
}

/** One stream for every line I serve: each event names its department. */
function followQueues() {
  const to = (method) => (data) => {
    const view = views.get(data.department_id);
    if (view) view[method](data);
  };
  return new LiveStream(
    "/api/v1/departments/queues/stream",
    { snapshot: to("snapshot"), knocked: to("knocked"), left: to("left"), consultation: consultationOpened },
    (live) => views.forEach((view) => view.setLive(live)),
  );
}

async function main() {
  const me = await requireStaff();
  csrf = me.csrf_token;
  staffId = me.staff_id;
  if ("Notification" in window && Notification.permission === "default") {
    show(notifyButton, true);
    notifyButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      show(notifyButton, Notification.permission === "default");
    });
  }
  try {
    const [offices, all] = await Promise.all([api("/offices"), api(`/departments?lang=${locale}`)]);
    departments = new Map(all.map((department) => [department.id, department]));
    if (offices.length === 0) {
      state.textContent = t("no_offices");
      return;
    }
    for (const office of offices) views.set(office.id, new OfficeView(office));
    officesRoot.replaceChildren(...[...views.values()].map((view) => view.node));
    state.textContent = t("loaded", { n: offices.length });
    state.className = "visually-hidden";
    followQueues();
    window.setInterval(() => views.forEach((view) => view.tick()), 10000);
  } catch (error) {
    state.className = "notice notice-error";
    state.textContent = error.message || t("error_generic");
  }
}

main();
