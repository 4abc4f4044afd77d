// A department admin's page: weekly opening hours, closed days, languages and topics, roster,
// and the appointment schedule (staff-schedule.js).
import { announce, api, el, focusHeading, languageName, show, slot, t } from "./common.js";
import { editSchedule } from "./staff-schedule.js";
import { requireStaff } from "./staff-session.js";

const root = document.getElementById("office");
const departmentId = root.dataset.departmentId;
const state = document.getElementById("office-state");
const result = document.getElementById("office-result");
const hoursForm = document.getElementById("hours-form");
const hoursRows = document.getElementById("hours-rows");
const closedList = document.getElementById("closed-days");
const rosterSection = document.getElementById("roster-section");
const offerForm = document.getElementById("offer-form");
const languageList = document.getElementById("offer-languages");
const languageInput = document.getElementById("new-language");
const languageHint = document.getElementById("new-language-name");
const languageError = document.getElementById("language-error");
const topicList = document.getElementById("offer-topics");
const offerError = document.getElementById("offer-error");
const rosterRows = document.getElementById("roster-rows");
let csrf = "";
let closedDays = [];
let periodCount = 0;
let languages = [];
let topicCount = 0;

function say(text, kind = "ok") {
  result.className = `notice notice-${kind}`;
  result.textContent = text;
  show(result, true);
}

function periodRow(period = { weekday: 0, opens: "09:00", closes: "12:00" }) {
  periodCount += 1;
  const n = periodCount;
  const day = el(
    "select",
    { "aria-label": t("day_label", { n }), "data-field": "weekday" },
    [0, 1, 2, 3, 4, 5, 6].map((weekday) =>
      el("option", { value: weekday, selected: weekday === period.weekday || undefined, text: t(`weekday_${weekday}`) }),
    ),
  );
  const opens = el("input", { type: "time", value: period.opens, "aria-label": t("opens_label", { n }), "data-field": "opens", required: true });
  const closes = el("input", {
    type: "time",
    value: period.closes === "24:00" ? "23:59" : period.closes,
    "aria-label": t("closes_label", { n }),
    "data-field": "closes",
    required: true,
  });
  const row = el("tr", {}, el("td", {}, day), el("td", {}, opens), el("td", {}, closes));
  const remove = el("button", {
    type: "button",
    className: "secondary small",
    "aria-label": t("remove_period", { n }),
    text: t("remove"),
    onclick: () => {
      row.remove();
      document.getElementById("add-period").focus();
    },
  });
  row.append(el("td", {}, remove));
  return row;
}

function renderClosedDays() {
  closedList.replaceChildren(
    ...closedDays.sort().map((day) =>
      el(
        "li",
        { className: "badge badge-info" },
        day,
        " ",
        el("button", {
          type: "button",
          className: "linklike",
          "aria-label": t("remove_day", { day }),
          text: "×",
          onclick: () => {
            closedDays = closedDays.filter((other) => other !== day);
            renderClosedDays();
            document.getElementById("new-closed-day").focus();
          },
        }),
      ),
    ),
  );
}

function renderRoster(roster) {
  rosterRows.replaceChildren(
    ...Object.entries(roster).map(([staffId, role]) =>
      el(
        "tr",
        {},
        el("td", { text: staffId }),
        el("td", { text: t(`role_${role}`) }),
        el(
          "td",
          {},
          el("button", {
            type: "button",
            className: "secondary small",
            "aria-label": t("remove_staff", { name: staffId }),
            text: t("remove"),
            onclick: async () => {
              try {
                const office = await api(`/offices/${departmentId}/staff/${encodeURIComponent(staffId)}`, { method: "DELETE", csrf });
                renderRoster(office.roster);
                say(t("saved"));
              } catch (error) {
                say(error.message, "error");
              }
            },
          }),
        ),
      ),
    ),
  );
}

function render(office) {
  slot(root, "name").textContent = document.documentElement.lang === "en" ? office.name_en : office.name_de;
  hoursRows.replaceChildren(...office.weekly.map(periodRow));
  closedDays = [...office.closed_days];
  renderClosedDays();
  renderRoster(office.roster);
}

// -- languages and topics ------------------------------------------------------------------

/** "Polnisch (pl)" where the browser knows the code, else just the code. */
function knownName(code) {
  const name = languageName(code);
  return name && name.toLowerCase() !== code ? name : "";
}

function languageLabel(code) {
  const name = knownName(code);
  return name ? t("language_with_code", { name, code }) : code;
}

function setLanguageError(text) {
  languageError.textContent = text;
  show(languageError, Boolean(text));
  if (text) languageInput.setAttribute("aria-invalid", "true");
  else languageInput.removeAttribute("aria-invalid");
}

function renderLanguages() {
  languageList.replaceChildren(
    ...languages.map((code) =>
      el(
        "li",
        { className: "badge badge-info", "data-language": code },
        el("span", { text: languageLabel(code) }),
        " ",
        el("button", {
          type: "button",
          className: "linklike",
          "aria-label": t("remove_language", { name: languageLabel(code) }),
          text: "×",
          onclick: () => {
            if (languages.length === 1) {
              setLanguageError(t("language_needed"));
              return;
            }
            languages = languages.filter((other) => other !== code);
            renderLanguages();
            announce(t("language_removed", { name: languageLabel(code) }));
            languageInput.focus();
          },
        }),
      ),
    ),
  );
}

function addLanguage() {
  const code = languageInput.value.trim().toLowerCase();
  if (!code) {
    setLanguageError(t("language_empty"));
    languageInput.focus();
    return;
  }
  if (languages.includes(code)) {
    setLanguageError(t("language_twice", { name: languageLabel(code) }));
    languageInput.focus();
    return;
  }
  setLanguageError("");
  languages.push(code);
  renderLanguages();
  languageInput.value = "";
  languageHint.textContent = "";
  announce(t("language_added", { name: languageLabel(code) }));
  languageInput.focus();
}

function topicRows() {
  return [...topicList.querySelectorAll(":scope > li")];
}

/** Legends and button names say the position, so they follow every move. */
function renumberTopics() {
  const rows = topicRows();
  rows.forEach((row, index) => {
    const n = index + 1;
    row.querySelector("legend").textContent = t("topic_legend", { n });
    row.querySelector('[data-action="up"]').setAttribute("aria-label", t("move_up_label", { n }));
    row.querySelector('[data-action="down"]').setAttribute("aria-label", t("move_down_label", { n }));
    row.querySelector('[data-action="remove"]').setAttribute("aria-label", t("remove_topic", { n }));
    row.querySelector('[data-action="up"]').disabled = index === 0;
    row.querySelector('[data-action="down"]').disabled = index === rows.length - 1;
  });
}

function moveTopic(row, step) {
  const rows = topicRows();
  const index = rows.indexOf(row);
  const target = rows[index + step];
  if (!target) return;
  if (step < 0) target.before(row);
  else target.after(row);
  renumberTopics();
  const n = topicRows().indexOf(row) + 1;
  const button = row.querySelector(`[data-action="${step < 0 ? "up" : "down"}"]`);
  (button.disabled ? row.querySelector(`[data-action="${step < 0 ? "down" : "up"}"]`) : button).focus();
  announce(t("topic_moved", { n }));
}

function topicField(key, field, value, extra = {}) {
  const id = `topic-${key}-${field}`;
  return el(
    "div",
    { className: "field" },
    el("label", { for: id, text: t(`topic_${field}`) }),
    el("input", { type: "text", id, value, "data-field": field, autocomplete: "off", ...extra }),
  );
}

function topicRow(topic = { id: "", de: "", en: "" }) {
  topicCount += 1;
  const key = topicCount;
  const row = el("li", { className: "topic" });
  const button = (action, text, onclick) =>
    el("button", { type: "button", className: "secondary small", "data-action": action, text, onclick });
  row.append(
    el(
      "fieldset",
      {},
      el("legend", {}),
      topicField(key, "id", topic.id, { maxlength: 40, autocapitalize: "none", spellcheck: "false", className: "short" }),
      topicField(key, "de", topic.de, { maxlength: 80, lang: "de" }),
      topicField(key, "en", topic.en, { maxlength: 80, lang: "en" }),
      el(
        "div",
        { className: "button-row" },
        button("up", t("move_up"), () => moveTopic(row, -1)),
        button("down", t("move_down"), () => moveTopic(row, 1)),
        button("remove", t("remove"), () => {
          const rows = topicRows();
          const next = rows[rows.indexOf(row) + 1] || rows[rows.indexOf(row) - 1];
          row.remove();
          renumberTopics();
          announce(t("topic_removed"));
          (next ? next.querySelector('[data-field="id"]') : document.getElementById("add-topic")).focus();
        }),
      ),
    ),
  );
  return row;
}

function renderOffer(office) {
  languages = [...office.languages];
  renderLanguages();
  topicList.replaceChildren(...office.topics.map(topicRow));
  renumberTopics();
}

languageInput.addEventListener("input", () => {
  const code = languageInput.value.trim().toLowerCase();
  languageHint.textContent = code.length >= 2 ? knownName(code) || t("language_unknown") : "";
});

languageInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    addLanguage();
  }
});

document.getElementById("add-language").addEventListener("click", addLanguage);

document.getElementById("add-topic").addEventListener("click", () => {
  const row = topicRow();
  topicList.append(row);
  renumberTopics();
  row.querySelector("input").focus();
});

offerForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(offerError, false);
  setLanguageError("");
  const topics = topicRows().map((row) => ({
    id: row.querySelector('[data-field="id"]').value.trim(),
    de: row.querySelector('[data-field="de"]').value.trim(),
    en: row.querySelector('[data-field="en"]').value.trim(),
  }));
  try {
    const office = await api(`/offices/${departmentId}/offer`, { method: "PUT", body: { languages, topics }, csrf });
    renderOffer(office);
    say(t("saved"));
  } catch (error) {
    offerError.textContent = error.message;
    show(offerError, true);
  }
});

document.getElementById("add-period").addEventListener("click", () => {
  const row = periodRow();
  hoursRows.append(row);
  row.querySelector("select").focus();
});

document.getElementById("add-closed-day").addEventListener("click", () => {
  const input = document.getElementById("new-closed-day");
  if (input.value && !closedDays.includes(input.value)) {
    closedDays.push(input.value);
    renderClosedDays();
  }
  input.value = "";
});

hoursForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = document.getElementById("hours-error");
  show(errorBox, false);
  const weekly = [...hoursRows.querySelectorAll("tr")].map((row) => ({
    weekday: Number(row.querySelector('[data-field="weekday"]').value),
    opens: row.querySelector('[data-field="opens"]').value,
    closes: row.querySelector('[data-field="closes"]').value === "23:59" ? "24:00" : row.querySelector('[data-field="closes"]').value,
  }));
  try {
    const office = await api(`/offices/${departmentId}/hours`, { method: "PUT", body: { weekly, closed_days: closedDays }, csrf });
    render(office);
    say(t("saved"));
  } catch (error) {
    errorBox.textContent = error.message;
    show(errorBox, true);
  }
});

document.getElementById("roster-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = document.getElementById("roster-error");
  show(errorBox, false);
  const input = document.getElementById("new-staff");
  try {
    const office = await api(`/offices/${departmentId}/staff`, {
      method: "POST",
      body: { staff_id: input.value.trim(), role: document.getElementById("new-role").value },
      csrf,
    });
    renderRoster(office.roster);
    input.value = "";
    say(t("saved"));
  } catch (error) {
    errorBox.textContent = error.message;
    show(errorBox, true);
    input.focus();
  }
});

async function main() {
  const me = await requireStaff();
  csrf = me.csrf_token;
  try {
    const offices = await api("/offices");
    const office = offices.find((item) => item.id === departmentId);
    if (!office) {
      state.className = "notice notice-error";
      state.textContent = t("not_found");
      return;
    }
    render(office);
    renderOffer(office);
    if (office.my_role !== "admin") {
      state.className = "notice notice-warn";
      state.textContent = t("not_admin");
      return;
    }
    state.textContent = t("loaded");
    state.className = "visually-hidden";
    show(hoursForm, true);
    show(offerForm, true);
    show(rosterSection, true);
    await editSchedule(departmentId, csrf);
  } catch (error) {
    state.className = "notice notice-error";
    state.textContent = error.message;
    focusHeading(slot(root, "name"));
  }
}

main();
