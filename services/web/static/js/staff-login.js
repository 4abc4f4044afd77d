// Staff sign-in: through the administration's identity provider (a link to
// /api/v1/auth/oidc/login, which returns with the session cookie) and/or with a local
// account (POST /api/v1/auth/login sets the session cookie; HttpOnly, SameSite=Strict).
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

function report(text) {
  errorBox.textContent = text;
  show(errorBox, true);
}

// Which ways to sign in this office offers; the provider's refusal, if it sent one back.
async function offerMethods() {
  let methods;
  try {
    methods = await api("/auth/methods");
  } catch {
    return;  // the form stays: a wrong guess is reported when it is sent
  }
  const provider = methods.provider;
  if (provider) {
    document.getElementById("sso-button").textContent = t("sign_in_with", { provider });
    show(document.getElementById("sso"), true);
    show(document.getElementById("local-heading"), methods.local_accounts);
  }
  show(form, methods.local_accounts);
  const reason = query.get("oidc_error");
  if (reason) {
    window.history.replaceState(null, "", window.location.pathname);
    const known = ["state", "refused", "no_access", "denied", "provider", "throttled"];
    report(t(`oidc_${known.includes(reason) ? reason : "state"}`, { provider: provider || "" }));
    document.getElementById(provider ? "sso-button" : "username").focus();
  }
}
offerMethods();

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
    report(t("missing"));
    (username.value.trim() ? password : username).focus();
    return;
  }
  try {
    const session = await api("/auth/login", { method: "POST", body: { username: username.value.trim(), password: password.value } });
    // A data protection officer without a desk goes straight to the audit log.
    const roles = session.roles || [];
    window.location.assign(roles.includes("dpo") && !roles.includes("staff") ? "/dpo" : "/staff");
  } catch (error) {
    report(failed(error));
    password.value = "";
    password.focus();
  }
});
