// How good the connection is, judged from what actually arrives: frames decoded per
// remote video, bytes from the room, and the room's receiver reports on the own sending.
// It never says "good" while a picture that should arrive does not, and it says on
// whose side a problem is: the own receiving, the own sending, or someone else's.

const GRACE_MS = 5000; // a new remote video gets this long for its first frames
const SILENT_MS = 8000; // someone in the room from whom nothing at all has arrived

const unique = (items) => [...new Set(items)];

export class QualityJudge {
  constructor(now = () => Date.now()) {
    this._now = now;
    this._seen = new Map(); // participantId -> when it was first in the room
  }

  /** The others in the room now (participant ids). */
  participants(ids) {
    const now = this._now();
    for (const id of ids) if (!this._seen.has(id)) this._seen.set(id, now);
    for (const id of [...this._seen.keys()]) if (!ids.includes(id)) this._seen.delete(id);
  }

  /**
   * figures: the client's "quality" event. Returns {level, side, who, peers}:
   * level "good" | "fair" | "poor" | "none" (a picture does not arrive);
   * side null | "own_receive" | "own_send" | "other"; who: participant ids on the
   * other side; peers: {participantId: "good" | "weak" | "none" | "audio" | "connecting" |
   * "stalled" | "reconnecting"}; the last three are the room's word (figures.states).
   */
  judge(figures) {
    const now = this._now();
    const tracks = Object.values(figures.tracks || {});
    const videos = tracks.filter((t) => t.kind === "video");
    const peers = {};
    const states = figures.states || {};
    for (const id of this._seen.keys()) {
      if (["stalled", "reconnecting", "connecting"].includes(states[id])) {
        peers[id] = states[id]; // the room knows better than our own figures
        continue;
      }
      const theirs = tracks.filter((t) => t.participantId === id);
      const video = theirs.filter((t) => t.kind === "video" && t.ageMs > GRACE_MS);
      if (!theirs.length) peers[id] = now - this._seen.get(id) > SILENT_MS ? "none" : "good";
      else if (video.some((t) => t.framesDecoded === 0)) peers[id] = "none";
      else if (video.some((t) => t.fps < 12 || t.packetLoss > 0.02)) peers[id] = "weak";
      else if (!theirs.some((t) => t.kind === "video")) peers[id] = "audio";
      else peers[id] = "good";
    }
    const dark = Object.keys(peers).filter((id) => ["none", "stalled", "reconnecting"].includes(peers[id]));
    if (dark.length) {
      if (!figures.receivedBytes) return { level: "none", side: "own_receive", who: [], peers };
      return { level: "none", side: "other", who: dark, peers };
    }
    const level = levelOf(figures, videos.filter((t) => t.ageMs > GRACE_MS));
    if (level === "good") return { level, side: null, who: [], peers };
    return { level, ...sideOf(figures, videos, peers), peers };
  }
}

function levelOf({ packetLoss, rttMs }, videos) {
  const loss = packetLoss || 0;
  const fps = videos.length ? Math.min(...videos.map((t) => t.fps)) : null;
  if (loss > 0.08 || (rttMs !== null && rttMs > 600) || (fps !== null && fps < 5)) return "poor";
  if (loss > 0.02 || (rttMs !== null && rttMs > 300) || (fps !== null && fps < 12)) return "fair";
  return "good";
}

function sideOf({ sending, packetLoss }, videos, peers) {
  const send = sending || {};
  if ((send.lossReported || 0) > 0.05 || send.qualityLimitationReason === "bandwidth") {
    return { side: "own_send", who: [] };
  }
  const weak = Object.keys(peers).filter((id) => peers[id] === "weak");
  const everyone = Object.keys(peers).filter((id) => !["audio", "connecting"].includes(peers[id]));
  // Only some of the others stutter: their side. All of them (or loss on everything): ours.
  if (weak.length && weak.length < everyone.length) return { side: "other", who: unique(weak) };
  if (weak.length === 1 && everyone.length === 1 && (packetLoss || 0) <= 0.02) {
    return { side: "other", who: weak };
  }
  return { side: "own_receive", who: [] };
}
