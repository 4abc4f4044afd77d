// Staff sign-in: POST /api/v1/auth/login sets the session cookie (HttpOnly, SameSite=Strict).
import { api, show, t } from "./common.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const username = document.getElementById("username");
const password = document.getElementById("password");
const submit = form.querySelector("button[type=submit]");

const query = new URLSearchParams(window.location.search);
for (const [flag, id] of [["signed_out", "signed-out"], ["expired", "session-expired"]]) {
  if (query.has(flag)) {
    show(document.getElementById(id), true);
    window.history.replaceState(null, "", window.location.pathname);
  }
}

function failed(error) {
  if (error.status === 401) return t("wrong");
  if (error.status === 429) {
    // Too many failed sign-ins: the server says how long to wait; so does the button.
    const seconds = Number(error.data.retry_after_seconds) || 60;
    const minutes = Math.max(1, Math.round(seconds / 60));
    submit.disabled = true;
    window.setTimeout(() => { submit.disabled = false; }, seconds * 1000);
    return minutes === 1 ? t("too_many_one") : t("too_many", { minutes });
  }
  return error.message || t("error_generic");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(errorBox, false);
  if (!username.value.trim() || !password.value) {
    errorBox.textContent = t("missing");
    show(errorBox, true);
    (username.value.trim() ? password : username).focus();
    return;
  }
  try {
    const session = await api("/auth/login", { method: "POST", body: { username: username.value.trim(), password: password.value } });
    // A data protection officer without a desk goes straight to the audit log.
    const roles = session.roles || [];
    window.location.assign(roles.includes("dpo") && !roles.includes("staff") ? "/dpo" : "/staff");
  } catch (error) {
    errorBox.textContent = failed(error);
    show(errorBox, true);
    password.value = "";
    password.focus();
  }
});
