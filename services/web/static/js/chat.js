// The consultation's chat: to spell a file number, pass on a link, or write to someone
// who cannot hear. Lines travel over the media room's signalling socket to the others in
// the room only (services/media/chat.py) and are kept nowhere but on this page, which
// forgets them when the conversation ends.
import { el, slot, t } from "./common.js";

const URL_PATTERN = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g;

/** The text with web addresses as links (text nodes only: nothing becomes markup). */
function withLinks(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
    parts.push(el("a", { href: match[0], target: "_blank", rel: "noopener noreferrer", text: match[0] }));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
  return parts;
}

/**
 * The chat panel in `root` (the media stage). `send(message)` puts a message on the
 * room's socket (false when not connected); `people` names the senders; `me()` is this
 * participant's id. Returns { onMessage(message), clear() }.
 */
export function startChat(root, { send, people, me }) {
  const box = slot(root, "chat");
  if (!box) return { onMessage() {}, clear() {} };
  const scroller = slot(box, "chat-scroll");
  const log = slot(box, "chat-log");
  const empty = slot(box, "chat-empty");
  const form = slot(box, "chat-form");
  const input = form.querySelector("textarea");
  const status = slot(box, "chat-status");
  const time = new Intl.DateTimeFormat(document.documentElement.lang === "en" ? "en-GB" : "de-DE", {
    hour: "2-digit",
    minute: "2-digit",
  });

  const addLine = (message) => {
    const mine = message.from === me();
    const who = mine ? t("chat_you") : people.short(message.from, message.role);
    const now = new Date();
    log.append(
      el(
        "li",
        { className: mine ? "chat-mine" : "" },
        el("time", { datetime: now.toISOString(), text: time.format(now) }),
        el("span", { className: "chat-who", text: t("chat_from", { who }) }),
        " ",
        el("span", { className: "chat-text" }, withLinks(message.text)),
      ),
    );
    empty.hidden = true;
    scroller.hidden = false;
    scroller.scrollTop = scroller.scrollHeight;
  };

  const submit = () => {
    const text = input.value.trim();
    if (!text) return;
    if (!send({ type: "chat", text })) {
      status.textContent = t("chat_not_connected");
      return;
    }
    status.textContent = "";
    input.value = "";
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });

  return {
    onMessage(message) {
      if (message.type === "chat" && typeof message.text === "string") addLine(message);
      else if (message.type === "chat-refused") status.textContent = t(`chat_refused_${message.reason}`);
    },
    /** The conversation is over: nothing of the chat stays on the page. */
    clear() {
      log.replaceChildren();
      scroller.hidden = true;
      empty.hidden = false;
      input.value = "";
      status.textContent = "";
    },
  };
}
