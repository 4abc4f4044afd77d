// The signed-in staff member: who it is, the CSRF token for changes, signing out.
import { api, show } from "./common.js";

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
        try {
          await api("/auth/logout", { method: "POST", csrf: me.csrf_token });
        } finally {
          window.location.assign("/staff/login?signed_out=1");
        }
      });
    }
    return me;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      window.location.assign("/staff/login");
      return new Promise(() => {});
    }
    throw error;
  }
}
