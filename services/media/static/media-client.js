/**
 * Bürgerbüro media client: joins a consultation's audio/video room.
 * A plain ES module (no build step, no CDN), served at /api/v1/media/client.js.
 *
 *   import { joinConsultation } from "/api/v1/media/client.js";
 *
 *   const call = await joinConsultation({
 *     consultationId,            // from the rooms service's join answer
 *     token,                     // its participant_token (never put it in a URL)
 *     audio: true, video: true,  // or MediaStreamConstraints; false to join without
 *     localStream,               // optional: an already opened MediaStream instead
 *   });
 *   call.localStream                             // MediaStream of the own camera + mic
 *   call.addEventListener("track", (e) => ...)   // e.detail: {trackId, mid, track, stream,
 *                                                //   participantId, role, source, kind}
 *                                                //   source: "audio" | "camera" | "screen"
 *   call.addEventListener("trackended", (e) => ...)   // e.detail: same as "track"
 *   call.addEventListener("participants", (e) => ...) // e.detail.participants:
 *                                                     //   [{participantId, role}]
 *   call.addEventListener("quality", (e) => ...)  // every 2 s; e.detail: {packetLoss (0..1),
 *                                                 //   rttMs, fps, tracks: {mid: {fps,
 *                                                 //   packetLoss, participantId, source}}}
 *   call.addEventListener("connectionstate", (e) => ...)  // e.detail.state
 *   call.addEventListener("disconnected", (e) => ...)     // e.detail: {code, reason, kind}
 *                        // kind: "left" | "ended" | "replaced" | "refused" | "lost"
 *   call.setMicrophoneMuted(true | false)
 *   call.setCameraOff(true | false)
 *   await call.switchCamera(deviceId?)     // next camera when no id is given
 *   await call.startScreenShare()          // getDisplayMedia; stops when the user ends it
 *   await call.stopScreenShare()
 *   call.screenSharing                     // boolean
 *   await call.leave()
 *
 * joinConsultation rejects with an Error whose `code` is "ended" (HTTP 410), "refused"
 * (401/403) or "unavailable" when the room cannot be reached. The protocol is in
 * docs/media.md.
 */

const API_BASE = "/api/v1/media";
const READY_WAIT_MS = 30000;
const QUALITY_INTERVAL_MS = 2000;
const PING_INTERVAL_MS = 20000;

class MediaError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function findRoom(apiBase, consultationId, token) {
  const deadline = Date.now() + READY_WAIT_MS;
  for (;;) {
    const response = await fetch(`${apiBase}/consultations/${consultationId}`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (response.ok) return response.json();
    const body = await response.json().catch(() => ({}));
    if (response.status === 410) throw new MediaError("ended", body.detail || "ended");
    if (response.status === 401 || response.status === 403) {
      throw new MediaError("refused", body.detail || "refused");
    }
    if (Date.now() > deadline) throw new MediaError("unavailable", body.detail || "unavailable");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function closeKind(code) {
  if (code === 1000) return "left";
  if (code === 4000) return "ended";
  if (code === 4001) return "replaced";
  if (code >= 4400 && code < 4500) return "refused";
  return "lost";
}

export class MediaCall extends EventTarget {
  constructor(room, token, localStream) {
    super();
    this.room = room;
    this.localStream = localStream;
    this.screenSharing = false;
    this._token = token;
    this._sources = {};
    this._remote = new Map(); // mid -> track detail
    this._announced = {}; // mid -> track info from the room's last offer/answer
    this._makingOffer = false;
    this._needsOffer = false;
    this._left = false;
    this._lastStats = new Map();
    this._timers = [];
  }

  // -- joining ---------------------------------------------------------------------

  _connect() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.room.signal_url);
      this.ws.onopen = () => this._send({ type: "auth", token: this._token });
      this.ws.onclose = (event) => {
        reject(new MediaError(closeKind(event.code), event.reason || "connection closed"));
        this._closed(event.code, event.reason);
      };
      this.ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "welcome") {
          this.participantId = message.participant_id;
          this.role = message.role;
          this._start(message.ice).then(resolve, reject);
        } else {
          this._handle(message).catch((error) => console.warn("media signalling", error));
        }
      };
    });
  }

  async _start(ice) {
    this.pc = new RTCPeerConnection(ice);
    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate) this._send({ type: "candidate", ...candidate.toJSON() });
    };
    this.pc.ontrack = (event) => this._onTrack(event);
    this.pc.onconnectionstatechange = () =>
      this._emit("connectionstate", { state: this.pc.connectionState });
    for (const track of this.localStream ? this.localStream.getTracks() : []) {
      this._publish(track, track.kind === "audio" ? "audio" : "camera", this.localStream);
    }
    this._makingOffer = true;
    await this._setLocalOffer();
    this._makingOffer = false;
    this._send({ type: "join", sdp: this.pc.localDescription.sdp, sources: this._sourceHints() });
    this._timers.push(setInterval(() => this._sampleQuality(), QUALITY_INTERVAL_MS));
    this._timers.push(setInterval(() => this._send({ type: "ping" }), PING_INTERVAL_MS));
  }

  // The browser numbers payload types and header extensions its own way; the room's
  // offers keep that numbering (docs/media.md, "Payload types and extension ids").
  async _setLocalOffer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
  }

  _publish(track, source, stream) {
    this._sources[track.id] = source;
    return this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  }

  _sourceHints() {
    const hints = { ...this._sources };
    for (const transceiver of this.pc.getTransceivers()) {
      const track = transceiver.sender.track;
      if (track && transceiver.mid !== null && hints[track.id]) {
        hints[transceiver.mid] = hints[track.id];
      }
    }
    return hints;
  }

  // -- signalling --------------------------------------------------------------------

  async _handle(message) {
    switch (message.type) {
      case "answer":
        await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        this._announce(message.tracks);
        if (this._needsOffer) await this._negotiate();
        break;
      case "offer":
        // The room is the impolite peer: on a collision we roll back and answer it.
        if (this._makingOffer || this.pc.signalingState !== "stable") {
          this._needsOffer = true;
          await this.pc.setLocalDescription({ type: "rollback" });
        }
        await this.pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
        this._announce(message.tracks);
        await this.pc.setLocalDescription();
        this._send({ type: "answer", sdp: this.pc.localDescription.sdp });
        if (this._needsOffer) await this._negotiate();
        break;
      case "collision":
        this._needsOffer = true; // the room's offer is on its way; offer again after it
        break;
      case "participants":
        this._emit("participants", {
          participants: message.participants.map((p) => ({
            participantId: p.participant_id,
            role: p.role,
          })),
        });
        break;
      case "bye":
        this._byeReason = message.reason;
        break;
      case "error":
        console.warn("media room:", message.detail);
        break;
      default:
        break;
    }
  }

  async _negotiate() {
    if (this.pc.signalingState !== "stable" || this._makingOffer) {
      this._needsOffer = true;
      return;
    }
    this._needsOffer = false;
    this._makingOffer = true;
    try {
      await this._setLocalOffer();
      this._send({ type: "offer", sdp: this.pc.localDescription.sdp, sources: this._sourceHints() });
    } finally {
      this._makingOffer = false;
    }
  }

  _send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  // -- remote tracks -----------------------------------------------------------------

  _announce(tracks) {
    this._announced = tracks || {};
    for (const [mid, detail] of this._remote) {
      if (!this._announced[mid] || this._announced[mid].track_id !== detail.trackId) {
        this._remote.delete(mid);
        this._emit("trackended", detail);
      }
    }
    for (const transceiver of this.pc.getTransceivers()) {
      const info = this._announced[transceiver.mid];
      if (info && !this._remote.has(transceiver.mid) && transceiver.receiver.track) {
        this._addRemote(transceiver.mid, info, transceiver.receiver.track, null);
      }
    }
  }

  _onTrack(event) {
    const mid = event.transceiver.mid;
    const info = this._announced[mid];
    if (info && !this._remote.has(mid)) this._addRemote(mid, info, event.track, event.streams[0]);
  }

  _addRemote(mid, info, track, stream) {
    const detail = {
      mid,
      trackId: info.track_id,
      participantId: info.participant_id,
      role: info.role,
      source: info.source,
      kind: info.kind,
      track,
      stream: stream || new MediaStream([track]),
    };
    this._remote.set(mid, detail);
    this._emit("track", detail);
  }

  // -- quality -----------------------------------------------------------------------

  async _sampleQuality() {
    if (!this.pc || this.pc.connectionState === "closed") return;
    const report = await this.pc.getStats();
    let lost = 0;
    let received = 0;
    let rttMs = null;
    const fpsValues = [];
    const tracks = {};
    report.forEach((stat) => {
      if (stat.type === "inbound-rtp") {
        const last = this._lastStats.get(stat.id) || { lost: 0, received: 0 };
        const dLost = Math.max(0, (stat.packetsLost || 0) - last.lost);
        const dReceived = Math.max(0, (stat.packetsReceived || 0) - last.received);
        this._lastStats.set(stat.id, { lost: stat.packetsLost || 0, received: stat.packetsReceived || 0 });
        lost += dLost;
        received += dReceived;
        const remote = this._remote.get(stat.mid);
        if (stat.kind === "video" && stat.framesPerSecond !== undefined) fpsValues.push(stat.framesPerSecond);
        if (remote) {
          tracks[stat.mid] = {
            fps: stat.framesPerSecond ?? null,
            packetLoss: dLost + dReceived ? dLost / (dLost + dReceived) : 0,
            participantId: remote.participantId,
            source: remote.source,
          };
        }
      } else if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") {
        if (stat.currentRoundTripTime !== undefined) rttMs = stat.currentRoundTripTime * 1000;
      }
    });
    this._emit("quality", {
      packetLoss: lost + received ? lost / (lost + received) : 0,
      rttMs,
      fps: fpsValues.length ? Math.min(...fpsValues) : null,
      tracks,
    });
  }

  // -- own media ---------------------------------------------------------------------

  setMicrophoneMuted(muted) {
    for (const track of this.localStream ? this.localStream.getAudioTracks() : []) {
      track.enabled = !muted;
    }
  }

  setCameraOff(off) {
    for (const track of this.localStream ? this.localStream.getVideoTracks() : []) {
      track.enabled = !off;
    }
  }

  async switchCamera(deviceId) {
    const current = this.localStream && this.localStream.getVideoTracks()[0];
    if (!current) return;
    if (!deviceId) {
      const cameras = (await navigator.mediaDevices.enumerateDevices()).filter(
        (d) => d.kind === "videoinput",
      );
      const now = current.getSettings().deviceId;
      const index = cameras.findIndex((d) => d.deviceId === now);
      deviceId = cameras.length ? cameras[(index + 1) % cameras.length].deviceId : undefined;
    }
    const fresh = (await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: deviceId } } }))
      .getVideoTracks()[0];
    fresh.enabled = current.enabled;
    const sender = this.pc.getSenders().find((s) => s.track === current);
    await sender.replaceTrack(fresh); // same m-line: no renegotiation
    this.localStream.removeTrack(current);
    this.localStream.addTrack(fresh);
    current.stop();
  }

  async startScreenShare() {
    if (this.screenSharing) return;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    this._screen = { stream, transceiver: this._publish(track, "screen", stream) };
    this.screenSharing = true;
    track.addEventListener("ended", () => this.stopScreenShare());
    await this._negotiate();
  }

  async stopScreenShare() {
    if (!this.screenSharing) return;
    const { stream, transceiver } = this._screen;
    this.screenSharing = false;
    this._screen = null;
    transceiver.direction = "inactive";
    await transceiver.sender.replaceTrack(null);
    stream.getTracks().forEach((t) => t.stop());
    await this._negotiate();
  }

  // -- leaving -----------------------------------------------------------------------

  async leave() {
    this._left = true;
    this._send({ type: "leave" });
    if (this.ws) this.ws.close(1000, "left");
    this._teardown();
  }

  _closed(code, reason) {
    this._teardown();
    const kind = this._left ? "left" : closeKind(code);
    this._emit("disconnected", {
      code,
      reason: reason || this._byeReason || "connection to the media server lost",
      kind,
    });
  }

  _teardown() {
    this._timers.forEach(clearInterval);
    this._timers = [];
    if (this.pc && this.pc.connectionState !== "closed") this.pc.close();
    if (this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
    if (this._screen) this._screen.stream.getTracks().forEach((t) => t.stop());
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

export async function joinConsultation({
  consultationId,
  token,
  audio = true,
  video = true,
  apiBase = API_BASE,
  localStream: given,
}) {
  const room = await findRoom(apiBase, consultationId, token);
  // `localStream`: a stream the page already opened (chosen devices, a processed camera);
  // null joins without own media. Otherwise camera and microphone are opened here.
  const localStream = given !== undefined
    ? given
    : audio || video
      ? await navigator.mediaDevices.getUserMedia({ audio, video })
      : null;
  const call = new MediaCall(room, token, localStream);
  await call._connect();
  return call;
}
