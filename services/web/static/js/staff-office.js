// A department admin's page: weekly opening hours, closed days and the roster.
import { api, el, focusHeading, show, slot, t } from "./common.js";
import { requireStaff } from "./staff-session.js";

const root = document.getElementById("office");
const departmentId = root.dataset.departmentId;
const state = document.getElementById("office-state");
const result = document.getElementById("office-result");
const hoursForm = document.getElementById("hours-form");
const hoursRows = document.getElementById("hours-rows");
const closedList = document.getElementById("closed-days");
const rosterSection = document.getElementById("roster-section");
const rosterRows = document.getElementById("roster-rows");
let csrf = "";
let closedDays = [];
let periodCount = 0;

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
    if (office.my_role !== "admin") {
      state.className = "notice notice-warn";
      state.textContent = t("not_admin");
      return;
    }
    state.textContent = t("loaded");
    state.className = "visually-hidden";
    show(hoursForm, true);
    show(rosterSection, true);
  } catch (error) {
    state.className = "notice notice-error";
    state.textContent = error.message;
    focusHeading(slot(root, "name"));
  }
}

main();
