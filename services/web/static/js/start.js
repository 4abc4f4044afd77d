// The start page: every department, open or not, who waits and how long.
import { api, announce, el, formatExpectedWait, formatTime, formatWhen, locale, show, slot, t } from "./common.js";

const list = document.getElementById("departments");
const state = document.getElementById("departments-state");
const retry = document.getElementById("departments-retry");
const template = document.getElementById("department-card");

function waitingText(department) {
  const count =
    department.waiting === 0
      ? t("waiting_none")
      : department.waiting === 1
        ? t("waiting_one")
        : t("waiting_many", { n: department.waiting });
  const wait = department.expected_wait?.staff_free
    ? t("staff_free")
    : t("wait_expected", { wait: formatExpectedWait(department.expected_wait) });
  return `${count} ${wait}`;
}

function card(department) {
  const node = template.content.firstElementChild.cloneNode(true);
  const headingId = `dept-${department.id}`;
  const heading = slot(node, "name");
  heading.textContent = department.name;
  heading.id = headingId;
  node.setAttribute("aria-labelledby", headingId);
  const badges = slot(node, "badges");
  badges.append(
    el("li", {}, el("span", {
      className: `badge ${department.open ? "badge-open" : "badge-closed"}`,
      text: department.open ? t("open_now") : t("closed_now"),
    })),
  );
  if (department.anonymous) badges.append(el("li", {}, el("span", { className: "badge badge-info", text: t("anonymous") })));
  if (department.accepts_appointments) {
    badges.append(el("li", {}, el("span", { className: "badge badge-info", text: t("appointments") })));
  }
  slot(node, "description").textContent = department.description;
  // The badge says "open now" already: the line says until when, if known.
  const hours = slot(node, "hours");
  if (!department.open) hours.textContent = t("opens_next", { when: formatWhen(department.opens_at) });
  else if (department.closes_at) hours.textContent = t("open_until", { time: formatTime(new Date(department.closes_at)) });
  else hours.remove();
  const waiting = slot(node, "waiting");
  if (department.open) waiting.textContent = waitingText(department);
  else waiting.remove();
  const link = slot(node, "link");
  link.href = `/office/${department.id}`;
  link.textContent = department.open ? t("knock") : t("details");
  link.setAttribute("aria-label", t(department.open ? "knock_label" : "details_label", { name: department.name }));
  if (!department.open) link.className = "button button-secondary";
  if (department.accepts_appointments) {
    const book = slot(node, "book");
    book.href = `/office/${department.id}/book`;
    book.setAttribute("aria-label", t("book_label", { name: department.name }));
    show(book, true);
  }
  return node;
}

async function load() {
  show(retry, false);
  state.textContent = "";
  try {
    const departments = await api(`/departments?lang=${locale}`);
    list.replaceChildren(...departments.map(card));
    state.textContent = t("loaded", { n: departments.length });
    state.className = "visually-hidden";
  } catch (error) {
    state.className = "notice notice-error";
    state.textContent = `${t("load_failed")} ${error.message}`;
    show(retry, true);
  }
}

retry.querySelector("button").addEventListener("click", () => {
  load();
  announce("");
});
load();
