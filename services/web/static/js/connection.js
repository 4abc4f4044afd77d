// The stage's connection parts: the quality line (from frames actually decoded, saying
// whose side a problem is on), the "reconnecting" banner with its "Reconnect" button
// once rejoining gave up, and, for staff, the state of each participant's connection.
import { announce, el, slot, t } from "./common.js";
import { QualityJudge } from "./quality.js";

const PEER_KEY = {
  good: "peer_good",
  weak: "peer_weak",
  none: "peer_none",
  audio: "peer_audio",
  connecting: "peer_connecting",
  stalled: "peer_stalled",
  reconnecting: "peer_reconnecting",
};

function percent(value) {
  return `${Math.round((value || 0) * 1000) / 10}`;
}

/**
 * `roleLabel(role)` names a role; `onRejoin()` is called by the "Reconnect" button.
 * Returns the handlers stage.js wires to the media session.
 */
export function connectionView(root, { roleLabel, onRejoin }) {
  const quality = slot(root, "quality");
  const banner = slot(root, "media-reconnecting");
  const bannerText = slot(root, "reconnecting-text");
  const rejoinButton = root.querySelector('[data-action="rejoin"]');
  const peerBox = slot(root, "peer-states-box");
  const peerList = slot(root, "peer-states");
  let judge = new QualityJudge();
  let roles = new Map(); // participantId -> role, the others
  let lastLevel = null;
  rejoinButton.addEventListener("click", () => {
    banner.hidden = true;
    onRejoin();
  });

  const names = (ids) => ids.map((id) => roleLabel(roles.get(id))).join(", ");

  const renderPeers = (peers) => {
    if (!peerList) return;
    peerList.replaceChildren(
      ...[...roles].map(([id, role]) =>
        el("li", { "data-participant": id, "data-state": peers[id] || "good" },
          t("peer_state", { role: roleLabel(role), state: t(PEER_KEY[peers[id] || "good"]) })),
      ),
    );
    peerBox.hidden = roles.size === 0;
  };

  const describe = (figures) => {
    const parts = [t("quality_loss", { n: percent(figures.packetLoss) })];
    if (figures.rttMs !== null && figures.rttMs !== undefined) parts.push(t("quality_rtt", { n: Math.round(figures.rttMs) }));
    if (figures.fps !== null && figures.fps !== undefined) parts.push(t("quality_fps", { n: Math.round(figures.fps) }));
    return `(${parts.join(", ")})`;
  };

  return {
    participants(list, me) {
      roles = new Map(list.filter((p) => p.participantId !== me).map((p) => [p.participantId, p.role]));
      judge.participants([...roles.keys()]);
      renderPeers({});
    },
    quality(figures) {
      if (!banner.hidden) return; // reconnecting: the banner speaks
      const verdict = judge.judge(figures);
      const side = verdict.side ? ` ${t(`quality_side_${verdict.side}`, { names: names(verdict.who) })}` : "";
      const text = `${t(`quality_${verdict.level}`)}${side}`;
      slot(quality, "quality-level").textContent = text;
      slot(quality, "quality-detail").textContent = describe(figures);
      quality.dataset.level = verdict.level === "none" ? "poor" : verdict.level;
      quality.dataset.picture = verdict.level === "none" ? "none" : "arrives";
      quality.dataset.side = verdict.side || "";
      quality.hidden = false;
      renderPeers(verdict.peers);
      // Say it only when it changes, and not the first "good": a polite hint, not a ticker.
      const said = `${verdict.level}:${verdict.side}`;
      if (said !== lastLevel && !(lastLevel === null && verdict.level === "good")) announce(text);
      lastLevel = said;
    },
    reconnecting() {
      bannerText.textContent = t("reconnecting");
      rejoinButton.hidden = true;
      banner.hidden = false;
      quality.hidden = true;
      lastLevel = null;
      judge = new QualityJudge();
    },
    reconnected() {
      banner.hidden = true;
      announce(t("reconnected"));
    },
    gaveUp() {
      bannerText.textContent = t("reconnect_failed");
      rejoinButton.hidden = false;
      banner.hidden = false;
      rejoinButton.focus();
    },
    reset() {
      banner.hidden = true;
      quality.hidden = true;
      if (peerBox) peerBox.hidden = true;
      lastLevel = null;
      judge = new QualityJudge();
      roles = new Map();
    },
  };
}
