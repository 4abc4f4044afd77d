// The citizen's consultation page: join with the ticket's token, show the stage, leave.
import { api, focusHeading, show, store, t } from "./common.js";
import { confirmDialog } from "./confirm-dialog.js";
import { startStage } from "./stage.js";

const root = document.getElementById("consultation");
const consultationId = root.dataset.consultationId;
const errorBox = document.getElementById("consultation-error");
const inCall = document.getElementById("in-call");
let pass = store.get(`bb.pass.${consultationId}`);
let stage = null;

function fail(text) {
  errorBox.textContent = text;
  show(errorBox, true);
  show(inCall, false);
}

async function join() {
  const ticket = store.get("bb.ticket");
  if (!pass) {
    if (!ticket) {
      fail(t("no_ticket"));
      return;
    }
    try {
      pass = await api(`/consultations/${consultationId}/join`, { method: "POST", token: ticket.token });
      store.set(`bb.pass.${consultationId}`, pass);
    } catch (error) {
      if (error.status === 403) fail(t("forbidden"));
      else if (error.status === 404 || error.status === 409 || error.status === 410 || error.status === 401) fail(t("gone"));
      else fail(error.message || t("error_generic"));
      return;
    }
  }
  stage = await startStage(document.getElementById("media"), pass, { onEnded: showEnded });
}

function forget() {
  store.remove(`bb.pass.${consultationId}`);
  store.remove("bb.ticket");
  store.remove("bb.admitted");
}

/** Staff ended the conversation for everyone: a friendly end page, focus on its heading. */
function showEnded() {
  forget();
  document.title = t("ended_title");
  show(inCall, false);
  show(document.getElementById("ended"), true);
  focusHeading(document.getElementById("ended-heading"));
}

document.getElementById("leave-call").addEventListener("click", async () => {
  const sure = await confirmDialog({
    id: "leave-dialog",
    title: t("leave_confirm"),
    text: t("leave_confirm_text"),
    confirm: t("leave_confirm_yes"),
    cancel: t("leave_confirm_no"),
  });
  if (!sure) return;
  if (stage) await stage.close();
  if (pass) {
    try {
      await api(`/consultations/${consultationId}/leave`, { method: "POST", token: pass.participant_token });
    } catch {
      // Leaving is best effort: the consultation ends for everyone when staff end it.
    }
  }
  forget();
  show(inCall, false);
  show(document.getElementById("left"), true);
  focusHeading(document.getElementById("left-heading"));
});

join();
