// The interpreter's link page: the token arrives in the URL fragment, moves into this
// tab's sessionStorage and leaves the address bar at once (history.replaceState).
import { api, el, focusHeading, languageName, locale, show, store, t } from "./common.js";
import { setupDeviceCheck } from "./devicecheck.js";
import { confirmDialog } from "./confirm-dialog.js";
import { startStage } from "./stage.js";

const root = document.getElementById("invite");
const consultationId = root.dataset.consultationId;
const key = `bb.invite.${consultationId}`;
const LANGUAGES = ["de", "en", "ar", "tr", "uk", "ru", "fa", "pl", "ro", "bg", "hu", "fr", "es", "it", "ps", "ku", "sq", "sr", "vi", "zh"];

function takeTokenFromFragment() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    store.set(key, { token });
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return store.get(key)?.token || null;
}

function showOnly(id) {
  for (const section of ["invite-form-section", "invite-joined", "invite-gone", "invite-invalid", "invite-ended", "invite-left"]) {
    show(document.getElementById(section), section === id);
  }
}

const token = takeTokenFromFragment();
const form = document.getElementById("invite-form");
const errorBox = document.getElementById("invite-error");
const nameInput = document.getElementById("guest-name");
const languageSelect = document.getElementById("guest-language");
let stage = null;
let pass = null;

// The office withdrew the invitation (or it expired) while connected: the room drops
// this participant at once, and the page says what to do, as opening the link again would.
function withdrawn() {
  store.remove(key);
  showOnly("invite-gone");
  focusHeading(document.getElementById("gone-heading"));
}

function ended() {
  store.remove(key);
  showOnly("invite-ended");
  focusHeading(document.getElementById("invite-ended-heading"));
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
      // Best effort: the room notices the closed connection anyway.
    }
  }
  showOnly("invite-left");
  focusHeading(document.getElementById("invite-left-heading"));
});

if (!token) {
  showOnly("invite-invalid");
} else {
  showOnly("invite-form-section");
  languageSelect.replaceChildren(
    ...LANGUAGES.map((code) => el("option", { value: code, selected: code === locale || undefined, text: languageName(code) })),
  );
  setupDeviceCheck(document.querySelector("[data-device-check]"));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(errorBox, false);
  const name = nameInput.value.trim();
  if (!name) {
    errorBox.textContent = t("name_missing");
    show(errorBox, true);
    nameInput.setAttribute("aria-invalid", "true");
    nameInput.focus();
    return;
  }
  nameInput.removeAttribute("aria-invalid");
  try {
    // Name and language are shown to the others; the language also goes on the record.
    const body = { display_name: name, language: languageSelect.value };
    pass = await api(`/consultations/${consultationId}/interpreter-join`, { method: "POST", token, body });
    store.set(key, { token, name, language: languageSelect.value });
    showOnly("invite-joined");
    focusHeading(document.getElementById("invite-heading"));
    stage = await startStage(document.getElementById("media"), { ...pass, display_name: name }, { onEnded: ended, onRefused: withdrawn });
  } catch (error) {
    if (error.status === 410) {
      store.remove(key);
      showOnly("invite-gone");
      focusHeading(document.getElementById("gone-heading"));
    } else if (error.status === 401) {
      store.remove(key);
      showOnly("invite-invalid");
      focusHeading(document.getElementById("invalid-heading"));
    } else if (error.status === 422) {
      errorBox.textContent = t("name_invalid");
      show(errorBox, true);
      nameInput.setAttribute("aria-invalid", "true");
      nameInput.focus();
    } else if (error.status === 403) {
      errorBox.textContent = t("wrong_consultation");
      show(errorBox, true);
    } else {
      errorBox.textContent = error.message || t("error_generic");
      show(errorBox, true);
    }
  }
});
