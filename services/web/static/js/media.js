// The transport of a consultation: the media service's browser client
// (/api/v1/media/client.js, docs/media.md) behind a small interface for stage.js.
//
// `connect(options)` is called once the page holds a participant pass from
// POST /api/v1/consultations/{id}/join (or /interpreter-join). It receives:
//   consultationId, participantToken (shown to the media service as a bearer token,
//   never in a URL), mediaPath (GET it with the token: signal URL and ICE settings),
//   localStream (camera + microphone from the chosen devices, possibly with a
//   processed camera track; may be null) and callbacks:
//   onTrack(detail) / onTrackEnded(detail)   a remote track: {trackId, mid, track,
//                                             participantId, role, source, kind}
//   onParticipants(list)                     [{participantId, role}]
//   onQuality(figures)                       every 2 s: per remote track the frames
//                                             decoded, own sending, loss, delay (see the
//                                             "quality" event of the client)
//   onReconnecting({reason}) / onReconnected({attempt})
//                                             the media path broke; the client rejoins
//                                             by itself (same session object)
//   onMessage(message)                       the room's other signalling messages
//   onDisconnected({kind, code, reason, reconnectFailed})
//                                             kind: left | ended | replaced | refused | lost
// It resolves to a session: setMicrophoneMuted, setCameraOff, switchCamera,
// replaceCameraTrack(track), startScreenShare, stopScreenShare, screenSharing, send(message)
// (a chat line to the room; false while not connected),
// stats() (inbound/outbound video figures, also window.bbMediaStats() for tests), close().
// It rejects with an Error whose `code` is "ended", "refused" or "unavailable".
import { joinConsultation } from "/api/v1/media/client.js";

export const MEDIA_AVAILABLE = true;

/** The media service's path prefix for `joinConsultation` (it appends /consultations/{id}). */
function apiBaseOf(mediaPath, consultationId) {
  const suffix = `/consultations/${consultationId}`;
  return mediaPath && mediaPath.endsWith(suffix) ? mediaPath.slice(0, -suffix.length) : "/api/v1/media";
}

async function videoStats(call) {
  const pc = call.pc;
  if (!pc || pc.signalingState === "closed") return [];
  const report = await pc.getStats();
  const remote = new Map();
  for (const transceiver of pc.getTransceivers()) {
    const info = call.remoteTrack(transceiver.mid);
    if (info) remote.set(transceiver.mid, info);
  }
  const out = [];
  report.forEach((stat) => {
    if (stat.kind !== "video") return;
    if (stat.type === "inbound-rtp") {
      const info = remote.get(stat.mid) || {};
      out.push({
        direction: "inbound",
        mid: stat.mid,
        role: info.role || null,
        source: info.source || null,
        participantId: info.participantId || null,
        framesDecoded: stat.framesDecoded || 0,
        framesReceived: stat.framesReceived || 0,
        frameWidth: stat.frameWidth || 0,
        framesPerSecond: stat.framesPerSecond || 0,
      });
    } else if (stat.type === "outbound-rtp") {
      out.push({
        direction: "outbound",
        mid: stat.mid,
        framesEncoded: stat.framesEncoded || 0,
        frameWidth: stat.frameWidth || 0,
        qualityLimitationReason: stat.qualityLimitationReason || null,
      });
    }
  });
  return out;
}

export async function connect(options) {
  const call = await joinConsultation({
    consultationId: options.consultationId,
    token: options.participantToken,
    apiBase: apiBaseOf(options.mediaPath, options.consultationId),
    localStream: options.localStream || null,
  });
  const on = (name, handler) => {
    if (handler) call.addEventListener(name, (event) => handler(event.detail));
  };
  on("track", options.onTrack);
  on("trackended", options.onTrackEnded);
  on("participants", (detail) => options.onParticipants && options.onParticipants(detail.participants));
  on("quality", options.onQuality);
  on("connectionstate", options.onConnectionState);
  on("reconnecting", options.onReconnecting);
  on("reconnected", options.onReconnected);
  on("message", options.onMessage);
  on("disconnected", options.onDisconnected);

  const session = {
    call,
    get screenSharing() {
      return call.screenSharing;
    },
    setMicrophoneMuted: (muted) => call.setMicrophoneMuted(muted),
    setCameraOff: (off) => call.setCameraOff(off),
    switchCamera: (deviceId) => call.switchCamera(deviceId),
    /** Send another camera track (processed background or the plain camera) on the same m-line. */
    async replaceCameraTrack(track) {
      const stream = call.localStream;
      const current = stream && stream.getVideoTracks()[0];
      const sender = call.pc.getSenders().find((s) => s.track && current && s.track === current);
      if (!sender) return false;
      track.enabled = current.enabled;
      await sender.replaceTrack(track);
      stream.removeTrack(current);
      stream.addTrack(track);
      return true;
    },
    async startScreenShare(onEnded) {
      await call.startScreenShare();
      const track = call.screenTrack;
      if (track && onEnded) track.addEventListener("ended", () => onEnded());
    },
    stopScreenShare: () => call.stopScreenShare(),
    send: (message) => call.send(message),
    stats: () => videoStats(call),
    async close() {
      await call.leave();
    },
  };
  window.bbMediaStats = () => videoStats(call);
  return session;
}
