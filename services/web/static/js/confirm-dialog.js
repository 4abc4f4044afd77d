// A question before something that cannot be undone (ending the conversation, leaving
// it), in the page's own modal <dialog> instead of the browser's confirm(): it speaks the
// page's language, is styled like the page, keeps focus inside (Tab, Escape) and gives it
// back to the button that opened it.
import { el } from "./common.js";

let counter = 0;

/**
 * Ask; resolves true when `confirm` is chosen, false on `cancel` or Escape.
 * { title, text, confirm, cancel, danger } are the words; `id` names the dialog
 * (its confirm button gets `${id}-confirm`).
 */
export function confirmDialog({ id, title, text, confirm, cancel, danger = true }) {
  counter += 1;
  const dialogId = id || `confirm-dialog-${counter}`;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const heading = el("h2", { id: `${dialogId}-title`, text: title });
    const body = el("p", { id: `${dialogId}-text`, text });
    const yes = el("button", { type: "button", id: `${dialogId}-confirm`, className: danger ? "danger" : "", text: confirm });
    const no = el("button", { type: "button", id: `${dialogId}-cancel`, className: "secondary", text: cancel });
    const dialog = el(
      "dialog",
      { id: dialogId, className: "confirm-dialog", "aria-labelledby": heading.id, "aria-describedby": body.id },
      heading,
      body,
      el("div", { className: "button-row" }, no, yes),
    );
    let answer = false;
    yes.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    no.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus(); // the safe choice first: Enter right away changes nothing
  });
}
