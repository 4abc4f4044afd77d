// Who is in the consultation, as this participant may see them: the media room's
// "chat-members" message names the interpreter (with the language) to everyone and the
// citizen (where the department asks for a name) to staff only (services/media/chat.py).
import { languageName, t } from "./common.js";

const ROLE_KEY = { staff: "tile_staff", citizen: "tile_citizen", interpreter: "tile_interpreter" };

export function roleLabel(role) {
  return t(ROLE_KEY[role] || "tile_guest");
}

/** The people of the room; `onChange()` is called when names arrive or change. */
export function createPeople(onChange = () => {}) {
  const members = new Map(); // participantId -> {role, name, language}

  const describe = (participantId, role) => {
    const member = members.get(participantId);
    const roleText = roleLabel(member?.role || role);
    if (!member || !member.name) return roleText;
    const language = member.language ? languageName(member.language) : "";
    return language
      ? t("person_with_language", { name: member.name, role: roleText, language })
      : t("person", { name: member.name, role: roleText });
  };

  return {
    /** A "chat-members" message of the room. */
    update(list) {
      members.clear();
      for (const member of list || []) {
        members.set(member.participant_id, { role: member.role, name: member.name || "", language: member.language || "" });
      }
      onChange();
    },
    /** "Ayşe Yılmaz (Interpreter, Turkish)", "Erika Muster (Citizen)" or just the role. */
    label: describe,
    /** The short form for a chat line or a list: the name, else the role. */
    short(participantId, role) {
      const member = members.get(participantId);
      return member?.name || roleLabel(member?.role || role);
    },
  };
}
