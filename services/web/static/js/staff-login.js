// Staff sign-in: POST /api/v1/auth/login sets the session cookie (HttpOnly, SameSite=Strict).
import { api, show, t } from "./common.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const username = document.getElementById("username");
const password = document.getElementById("password");

if (new URLSearchParams(window.location.search).has("signed_out")) {
  show(document.getElementById("signed-out"), true);
  window.history.replaceState(null, "", window.location.pathname);
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
    errorBox.textContent = error.status === 401 ? t("wrong") : error.message || t("error_generic");
    show(errorBox, true);
    password.value = "";
    password.focus();
  }
});
