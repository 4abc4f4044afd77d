// The signed-in staff member: who it is, the CSRF token for changes, signing out.
import { api, show } from "./common.js";

const SIGN_IN = "/staff/login";

export async function requireStaff() {
  try {
    const me = await api("/auth/me");
    const who = document.getElementById("staff-who");
    if (who) {
      who.textContent = me.display_name;
      show(who, true);
    }
    const signOut = document.getElementById("sign-out");
    if (signOut) {
      show(signOut, true);
      signOut.addEventListener("click", async () => {
        let next = `${SIGN_IN}?signed_out=1`;
        try {
          const out = await api("/auth/logout", { method: "POST", csrf: me.csrf_token });
          // Signed in through the identity provider: sign out there too (it comes back).
          if (out && out.logout_url) next = out.logout_url;
        } finally {
          window.location.assign(next);
        }
      });
    }
    keepSessionOpen(me.idle_seconds);
    return me;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      window.location.assign(SIGN_IN);
      return new Promise(() => {});
    }
    throw error;
  }
}

// A session ends when unused for its idle time; an open staff page keeps it (the server
// renews the cookie), and notices within a minute when it has ended elsewhere (signed
// out on another device, password changed, account disabled).
function keepSessionOpen(idleSeconds) {
  if (!idleSeconds) return;
  const every = Math.min(60, Math.max(1, idleSeconds / 3)) * 1000;
  window.setInterval(async () => {
    try {
      await api("/auth/me");
    } catch (error) {
      if (error.status === 401) window.location.assign(`${SIGN_IN}?expired=1`);
    }
  }, every);
}
