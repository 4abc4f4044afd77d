// The staff member's consultation view: join, participants, invitation links, end.
import { api, el, focusHeading, show, t } from "./common.js";
import { confirmDialog } from "./confirm-dialog.js";
import { startStage } from "./stage.js";
import { requireStaff } from "./staff-session.js";

const root = document.getElementById("consultation");
const consultationId = root.dataset.consultationId;
const state = document.getElementById("consultation-state");
const errorBox = document.getElementById("consultation-error");
const inCall = document.getElementById("in-call");
const invitations = document.getElementById("invitations");
let csrf = "";
let stage = null;
let invitationCount = 0;

function fail(text) {
  errorBox.textContent = text;
  show(errorBox, true);
}

function renderParticipants(consultation) {
  const list = document.getElementById("participants");
  const roles = { staff: t("role_staff"), citizen: t("role_citizen"), interpreter: t("role_interpreter") };
  // From the video room: with the name where the pass carries one ("Erika Muster (Citizen)").
  const items = consultation.participants.map((participant) =>
    el("li", { text: participant.label || roles[participant.role] || participant.role }),
  );
  list.replaceChildren(...(items.length ? items : [el("li", { text: t("nobody") })]));
}

function showEnded() {
  if (stage) stage.close();
  state.textContent = ""; // "A new invitation link has been created" no longer applies
  show(inCall, false);
  show(document.getElementById("ended"), true);
  focusHeading(document.getElementById("ended-heading"));
}

/** The consultation is opened by the rooms service right after admission: wait briefly. */
async function fetchConsultation() {
  const pauses = [200, 400, 800, 1500, 2500, 4000];
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api(`/consultations/${consultationId}`);
    } catch (error) {
      if (error.status !== 404 || attempt >= pauses.length) throw error;
      await new Promise((resolve) => window.setTimeout(resolve, pauses[attempt]));
    }
  }
}

function invitationItem(invitation) {
  invitationCount += 1;
  const n = invitationCount;
  const input = el("input", { type: "text", readonly: true, value: invitation.link, "aria-label": t("link_label", { n }) });
  const item = el("li", {});
  const copy = el("button", {
    type: "button",
    className: "secondary small",
    "aria-label": t("copy_label", { n }),
    text: t("copy"),
    onclick: async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(invitation.link);
      } catch {
        document.execCommand?.("copy");
      }
      state.textContent = t("copied");
    },
  });
  const revoke = el("button", {
    type: "button",
    className: "danger small",
    "aria-label": t("revoke_label", { n }),
    text: t("revoke"),
    onclick: async () => {
      try {
        await api(`/consultations/${consultationId}/invitations/${invitation.invitation_id}`, { method: "DELETE", csrf });
        item.replaceChildren(el("span", { text: t("revoked") }));
        state.textContent = t("revoked");
        document.getElementById("invite").focus();
      } catch (error) {
        fail(error.message);
      }
    },
  });
  item.append(el("div", { className: "invite-link" }, input, copy, revoke));
  return item;
}

document.getElementById("invite").addEventListener("click", async () => {
  try {
    const invitation = await api(`/consultations/${consultationId}/invitations`, { method: "POST", csrf });
    const item = invitationItem(invitation);
    invitations.append(item);
    state.textContent = t("created");
    item.querySelector("input").focus();
  } catch (error) {
    fail(error.message);
  }
});

document.getElementById("end").addEventListener("click", async () => {
  const sure = await confirmDialog({
    id: "end-dialog",
    title: t("end_confirm"),
    text: t("end_confirm_text"),
    confirm: t("end_confirm_yes"),
    cancel: t("end_confirm_no"),
  });
  if (!sure) return;
  try {
    await api(`/consultations/${consultationId}/end`, { method: "POST", csrf });
    if (stage) await stage.close();
    showEnded();
  } catch (error) {
    fail(error.message);
  }
});

async function main() {
  const me = await requireStaff();
  csrf = me.csrf_token;
  let consultation;
  try {
    consultation = await fetchConsultation();
  } catch (error) {
    state.textContent = "";
    fail(error.status === 403 ? t("forbidden") : error.status === 404 ? t("not_found") : error.message);
    return;
  }
  if (consultation.ended) {
    state.textContent = t("already_ended");
    showEnded();
    return;
  }
  try {
    const pass = await api(`/consultations/${consultationId}/join`, { method: "POST", csrf });
    show(inCall, true);
    state.textContent = t("ready");
    renderParticipants(await api(`/consultations/${consultationId}`));
    stage = await startStage(document.getElementById("media"), pass, {
      onEnded: showEnded,
      // Who is in the video room now, live (the rooms service's list was the start).
      onParticipants: (participants) => renderParticipants({ participants }),
    });
  } catch (error) {
    fail(error.status === 409 ? t("already_ended") : error.message);
  }
}

main();
