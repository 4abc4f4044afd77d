// The 403 page for staff without the role "dpo": name and sign-out in the header.
import { requireStaff } from "./staff-session.js";

requireStaff();
