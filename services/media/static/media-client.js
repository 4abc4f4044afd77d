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
 *   call.addEventListener("quality", (e) => ...)  // every 2 s, from getStats(); e.detail:
 *       {packetLoss (0..1, inbound), rttMs, fps (lowest decoded fps of the remote videos),
 *        receivedBytes (all bytes from the room in the interval), others: [participantId],
 *        sending: {framesEncoded, bytesSent, lossReported (0..1, the room's receiver
 *                  reports), qualityLimitationReason},
 *        tracks: {mid: {participantId, role, source, kind, framesDecoded (in the interval),
 *                       fps, bytes, packetLoss, ageMs (since the track arrived)}}}
 *   call.addEventListener("connectionstate", (e) => ...)  // e.detail.state
 *   call.addEventListener("reconnecting", (e) => ...)     // e.detail.reason: the media path
 *                        // broke (peer connection failed/closed, or nothing arrives while
 *                        // the socket lives): the call rejoins by itself, same object
 *   call.addEventListener("reconnected", (e) => ...)      // e.detail.attempt
 *   call.addEventListener("disconnected", (e) => ...)     // e.detail: {code, reason, kind,
 *                        // reconnectFailed}; kind: "left" | "ended" | "replaced" |
 *                        // "refused" | "lost" (reconnectFailed: rejoining gave up)
 *   call.setMicrophoneMuted(true | false)
 *   call.setCameraOff(true | false)
 *   await call.switchCamera(deviceId?)     // next camera when no id is given
 *   await call.startScreenShare()          // getDisplayMedia; stops when the user ends it
 *   await call.stopScreenShare()
 *   call.screenSharing                     // boolean
 *   call.screenTrack                       // the shared screen's video track, or null
 *   call.remoteTrack(mid)                  // {participantId, role, source, kind} or null
 *   call.send(message)                     // a room message beside the media (chat);
 *                                          // false while the socket is not open
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
// The media path is dead when no byte arrives from the room for this long while the
// peer connection says "connected" (a NAT or firewall timed out, a TURN allocation lost).
const STALL_MS = 6000;
const DISCONNECTED_GRACE_MS = 3000; // "disconnected" often heals by itself (ICE)
const REJOIN_ATTEMPTS = 3;
const CONNECT_WAIT_MS = 10000; // a rejoin not "connected" within this failed
const LEAVE_WAIT_MS = 3000;

class MediaError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function findRoom(apiBase, consultationId, token, waitMs = READY_WAIT_MS) {
  const deadline = Date.now() + waitMs;
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
    await sleep(1000);
  }
}

// "left" is only ever the page's own doing (leave()): the server closes with 1000 only for
// whoever asked to leave, so a 1000 the page did not ask for is a lost connection, shown
// with a way back in rather than nothing.
function closeKind(code) {
  if (code === 4000) return "ended";
  if (code === 4001) return "replaced";
  if (code >= 4400 && code < 4500) return "refused";
  return "lost";
}

export class MediaCall extends EventTarget {
  constructor(room, token, localStream, apiBase = API_BASE) {
    super();
    this.room = room;
    this.localStream = localStream;
    this.screenSharing = false;
    this._token = token;
    this._apiBase = apiBase;
    this._consultationId = room.consultation_id;
    this._sources = {};
    this._remote = new Map(); // mid -> track detail
    this._announced = {}; // mid -> track info from the room's last offer/answer
    this._others = []; // participant ids of the others in the room
    this._peerStates = new Map(); // participant id -> the room's word on its connection
    this._needsOffer = false;
    this._left = false;
    this._reconnecting = false;
    this._generation = 0; // one per socket + peer connection: stale work is dropped
    this._signalling = Promise.resolve();
    this._lastStats = new Map();
    this._lastArrival = Date.now();
    this._timers = [];
  }

  // -- joining ---------------------------------------------------------------------

  _connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.room.signal_url);
      this.ws = ws;
      ws.onopen = () => this._send({ type: "auth", token: this._token });
      ws.onclose = (event) => {
        if (ws !== this.ws) return;
        reject(new MediaError(closeKind(event.code), event.reason || "connection closed"));
        this._socketClosed(event.code, event.reason);
      };
      ws.onmessage = (event) => {
        if (ws !== this.ws) return;
        const message = JSON.parse(event.data);
        if (message.type === "welcome") {
          this.participantId = message.participant_id;
          this.role = message.role;
          this._ice = message.ice;
          this._enqueue(() => this._start(message.ice, "join")).then(resolve, reject);
        } else {
          this._enqueue(() => this._handle(message));
        }
      };
    });
  }

  // Signalling steps run strictly one after another: an offer that arrives while an
  // answer is still being applied must see the state that answer leaves behind.
  _enqueue(step) {
    const generation = this._generation;
    const run = this._signalling.then(() => (generation === this._generation ? step() : undefined));
    this._signalling = run.catch((error) => console.warn("media signalling", error));
    return run;
  }

  /** A peer connection with the own tracks, offered by `join` or, replacing a dead one on
   * the same socket, by `rejoin`. */
  async _start(ice, kind) {
    const pc = new RTCPeerConnection(ice);
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && pc === this.pc) this._send({ type: "candidate", ...candidate.toJSON() });
    };
    pc.ontrack = (event) => pc === this.pc && this._onTrack(event);
    pc.onconnectionstatechange = () => pc === this.pc && this._onConnectionState(pc.connectionState);
    for (const track of this.localStream ? this.localStream.getTracks() : []) {
      this._publish(track, track.kind === "audio" ? "audio" : "camera", this.localStream);
    }
    if (this._screen) {
      const track = this._screen.stream.getVideoTracks()[0];
      this._screen.transceiver = this._publish(track, "screen", this._screen.stream);
    }
    // The browser numbers payload types and header extensions its own way; the room's
    // offers keep that numbering (docs/media.md, "Payload types and extension ids").
    await pc.setLocalDescription(await pc.createOffer());
    this._awaitingRejoin = kind === "rejoin";
    this._send({ type: kind, sdp: pc.localDescription.sdp, sources: this._sourceHints() });
    this._lastArrival = Date.now();
    if (!this._timers.length) {
      this._timers.push(setInterval(() => this._sampleQuality(), QUALITY_INTERVAL_MS));
      this._timers.push(setInterval(() => this._send({ type: "ping" }), PING_INTERVAL_MS));
    }
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

  // -- signalling (perfect negotiation; the room is impolite, this side polite) ------

  async _handle(message) {
    const pc = this.pc;
    switch (message.type) {
      case "answer":
        if (pc.signalingState !== "have-local-offer") return; // an offer rolled back meanwhile
        this._awaitingRejoin = false;
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        this._announce(message.tracks);
        if (this._needsOffer) await this._negotiate();
        break;
      case "offer":
        if (this._awaitingRejoin) return; // for the peer connection just replaced
        if (pc.signalingState !== "stable") {
          // Our offer crossed the room's: the room refuses ours ("collision"), we yield.
          this._needsOffer = true;
          await pc.setLocalDescription({ type: "rollback" });
        }
        await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
        this._announce(message.tracks);
        await pc.setLocalDescription(await pc.createAnswer());
        this._send({ type: "answer", sdp: pc.localDescription.sdp });
        if (this._needsOffer) await this._negotiate();
        break;
      case "collision":
        this._needsOffer = true; // the room's offer is on its way; offer again after it
        break;
      case "participants":
        for (const p of message.participants) if (p.state) this._peerStates.set(p.participant_id, p.state);
        this._others = message.participants
          .map((p) => p.participant_id)
          .filter((id) => id !== this.participantId);
        this._emit("participants", {
          participants: message.participants.map((p) => ({
            participantId: p.participant_id,
            role: p.role,
            state: p.state || null,
          })),
        });
        break;
      case "peer-state":
        this._peerStates.set(message.participant_id, message.state);
        this._emit("peerstate", {
          participantId: message.participant_id,
          role: message.role,
          state: message.state,
          reason: message.reason || null,
        });
        break;
      case "media-stalled":
        this._recover("the room hears nothing from this side");
        break;
      case "send-limits":
        await this._applySendLimits(message);
        break;
      case "bye":
        this._byeReason = message.reason;
        break;
      case "error":
        if (this._awaitingRejoin) this._rejoinRefused = true;
        console.warn("media room:", message.detail);
        break;
      default:
        this._emit("message", message); // newer messages of the room, for the page
        break;
    }
  }

  /** Offer own changes (screen share); called from the signalling queue only. */
  async _negotiate() {
    if (this.pc.signalingState !== "stable") {
      this._needsOffer = true;
      return;
    }
    this._needsOffer = false;
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this._send({ type: "offer", sdp: this.pc.localDescription.sdp, sources: this._sourceHints() });
  }

  /** Everyone receiving one of the own tracks is constrained: send less (null lifts it). */
  async _applySendLimits({ mid, max_bitrate: bitrate, max_framerate: framerate, scale_resolution_down_by: scale }) {
    const transceiver = this.pc.getTransceivers().find((t) => t.mid === mid && t.sender.track);
    if (!transceiver) return;
    const parameters = transceiver.sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
    const encoding = parameters.encodings[0];
    const set = (field, value) => {
      if (value === null || value === undefined) delete encoding[field];
      else encoding[field] = value;
    };
    set("maxBitrate", bitrate);
    set("maxFramerate", framerate);
    set("scaleResolutionDownBy", scale);
    await transceiver.sender.setParameters(parameters);
    this._emit("sendlimits", { mid, maxBitrate: bitrate, maxFramerate: framerate, scaleResolutionDownBy: scale });
  }

  _send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** A message for the room beside the media (chat); false while the socket is not open. */
  send(message) {
    return this._send(message);
  }

  /** Whose track arrives on a transceiver (mid): {participantId, role, source, kind}, or null. */
  remoteTrack(mid) {
    return this._remote.get(mid) || null;
  }

  /** The own shared screen's video track while sharing, else null. */
  get screenTrack() {
    return (this._screen && this._screen.stream.getVideoTracks()[0]) || null;
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
      since: Date.now(),
    };
    this._remote.set(mid, detail);
    this._emit("track", detail);
  }

  // -- keeping the media path alive ------------------------------------------------

  _onConnectionState(state) {
    this._emit("connectionstate", { state });
    clearTimeout(this._graceTimer);
    if (state === "failed" || state === "closed") {
      this._recover(`peer connection ${state}`);
    } else if (state === "disconnected") {
      const pc = this.pc;
      this._graceTimer = setTimeout(() => {
        if (pc === this.pc && pc.connectionState === "disconnected") this._recover("peer connection disconnected");
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** Rejoin with a fresh socket and peer connection (same call, same own media). */
  _recover(reason) {
    if (this._left || this._reconnecting) return;
    this._reconnecting = true;
    this._rejoin(reason).finally(() => {
      this._reconnecting = false;
    });
  }

  // First a new peer connection on the same socket (the room's "rejoin"; aiortc cannot
  // restart ICE), then, if that does not connect, a new socket as well.
  async _rejoin(reason) {
    this._emit("reconnecting", { reason });
    for (let attempt = 1; attempt <= REJOIN_ATTEMPTS && !this._left; attempt += 1) {
      try {
        if (attempt === 1 && this._ice && this.ws && this.ws.readyState === WebSocket.OPEN) {
          this._dropPeer();
          this._rejoinRefused = false;
          await this._enqueue(() => this._start(this._ice, "rejoin"));
        } else {
          await this._dropTransport();
          if (attempt > 2) await sleep(1000 * 2 ** (attempt - 3));
          if (this._left) return;
          this.room = await findRoom(this._apiBase, this._consultationId, this._token, CONNECT_WAIT_MS);
          await this._connect();
        }
        await this._connectedWithin(CONNECT_WAIT_MS);
        this._emit("reconnected", { attempt });
        return;
      } catch (error) {
        if (["ended", "refused", "replaced"].includes(error.code)) {
          await this._dropTransport();
          this._finish(this._closeCode || 4000, error.message, error.code, false);
          return;
        }
      }
    }
    if (this._left) return;
    await this._dropTransport();
    this._finish(1006, "the connection could not be restored", "lost", true);
  }

  _connectedWithin(timeoutMs) {
    const pc = this.pc;
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pc !== this.pc || !this.ws || this.ws.readyState > WebSocket.OPEN) {
          reject(new MediaError(closeKind(this._closeCode), "the socket closed while connecting"));
        } else if (pc.connectionState === "connected") {
          resolve();
        } else if (Date.now() > deadline || pc.connectionState === "failed" || this._rejoinRefused) {
          reject(new MediaError("unavailable", "no media connection"));
        } else {
          setTimeout(check, 200);
        }
      };
      check();
    });
  }

  /** Close the peer connection and forget what came through it; keep the own media. */
  _dropPeer() {
    const { pc } = this;
    this._generation += 1;
    this._signalling = Promise.resolve();
    this.pc = null;
    this._needsOffer = false;
    this._awaitingRejoin = false;
    clearTimeout(this._graceTimer);
    for (const detail of this._remote.values()) this._emit("trackended", detail);
    this._remote.clear();
    this._announced = {};
    this._lastStats.clear();
    if (pc && pc.signalingState !== "closed") pc.close();
  }

  /** Let the room go of this socket and peer connection; keep the own media. */
  async _dropTransport() {
    const { ws } = this;
    this._dropPeer();
    this.ws = null;
    if (!ws || ws.readyState > WebSocket.OPEN) return;
    // Leave, and wait until the room closes the socket: by then it has let this
    // participant go, so the next join is not taken for the old one.
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, LEAVE_WAIT_MS);
      ws.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "leave" }));
      else ws.close();
    });
    if (ws.readyState <= WebSocket.OPEN) ws.close(1000, "rejoining");
  }

  // -- quality -----------------------------------------------------------------------

  async _sampleQuality() {
    const pc = this.pc;
    if (!pc || this._reconnecting || this._left) return;
    if (pc.connectionState === "closed") {
      this._recover("peer connection closed"); // closed under us: no event says so
      return;
    }
    const report = await pc.getStats();
    if (pc !== this.pc) return;
    const now = Date.now();
    const delta = (id, field, value) => {
      const last = this._lastStats.get(id) || {};
      const change = Math.max(0, (value || 0) - (last[field] ?? value ?? 0));
      this._lastStats.set(id, { ...last, [field]: value || 0 });
      return change;
    };
    let lost = 0;
    let received = 0;
    let receivedBytes = 0;
    let rttMs = null;
    const sending = { framesEncoded: 0, bytesSent: 0, lossReported: null, qualityLimitationReason: null };
    const tracks = {};
    report.forEach((stat) => {
      if (stat.type === "transport") {
        receivedBytes += delta(stat.id, "bytes", stat.bytesReceived);
      } else if (stat.type === "inbound-rtp") {
        const dLost = delta(stat.id, "lost", stat.packetsLost);
        const dReceived = delta(stat.id, "received", stat.packetsReceived);
        lost += dLost;
        received += dReceived;
        const remote = this._remote.get(stat.mid);
        if (!remote) return;
        const frames = delta(stat.id, "frames", stat.framesDecoded);
        tracks[stat.mid] = {
          participantId: remote.participantId,
          role: remote.role,
          source: remote.source,
          kind: remote.kind,
          framesDecoded: frames,
          fps: remote.kind === "video" ? frames / (QUALITY_INTERVAL_MS / 1000) : null,
          bytes: delta(stat.id, "bytes", stat.bytesReceived),
          packetLoss: dLost + dReceived ? dLost / (dLost + dReceived) : 0,
          ageMs: now - remote.since,
        };
      } else if (stat.type === "outbound-rtp" && stat.kind === "video") {
        sending.framesEncoded += delta(stat.id, "frames", stat.framesEncoded);
        sending.bytesSent += delta(stat.id, "bytes", stat.bytesSent);
        if (stat.qualityLimitationReason && stat.qualityLimitationReason !== "none") {
          sending.qualityLimitationReason = stat.qualityLimitationReason;
        }
      } else if (stat.type === "remote-inbound-rtp" && stat.fractionLost !== undefined) {
        sending.lossReported = Math.max(sending.lossReported || 0, stat.fractionLost);
      } else if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") {
        if (stat.currentRoundTripTime !== undefined) rttMs = stat.currentRoundTripTime * 1000;
      }
    });
    this._checkArrival(pc, now, receivedBytes);
    const videoFps = Object.values(tracks).filter((t) => t.kind === "video").map((t) => t.fps);
    this._emit("quality", {
      packetLoss: lost + received ? lost / (lost + received) : 0,
      rttMs,
      fps: videoFps.length ? Math.min(...videoFps) : null,
      receivedBytes,
      others: [...this._others],
      states: Object.fromEntries(this._peerStates),
      sending,
      tracks,
    });
  }

  /** Bytes from the room (RTP, RTCP) stopped while the socket lives: rejoin. */
  _checkArrival(pc, now, receivedBytes) {
    const expecting = this._remote.size > 0 || pc.getSenders().some((s) => s.track);
    if (receivedBytes > 0 || pc.connectionState !== "connected" || !expecting) {
      this._lastArrival = now;
    } else if (now - this._lastArrival > STALL_MS && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this._recover("no media arrives");
    }
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
    const screen = { stream, transceiver: null };
    this._screen = screen;
    this.screenSharing = true;
    track.addEventListener("ended", () => this.stopScreenShare());
    await this._enqueue(async () => {
      // A rejoin in between publishes it with the new peer connection.
      if (!screen.transceiver) screen.transceiver = this._publish(track, "screen", stream);
      await this._negotiate();
    });
  }

  async stopScreenShare() {
    if (!this.screenSharing) return;
    const screen = this._screen;
    this.screenSharing = false;
    this._screen = null;
    screen.stream.getTracks().forEach((t) => t.stop());
    await this._enqueue(async () => {
      const { transceiver } = screen;
      if (!transceiver || !this.pc.getTransceivers().includes(transceiver)) return;
      transceiver.direction = "inactive";
      await transceiver.sender.replaceTrack(null);
      await this._negotiate();
    });
  }

  // -- leaving -----------------------------------------------------------------------

  async leave() {
    this._left = true;
    this._send({ type: "leave" });
    if (this.ws) this.ws.close(1000, "left");
    this._teardown();
  }

  _socketClosed(code, reason) {
    this._closeCode = code;
    if (this._reconnecting) return; // the rejoin in progress sees it
    if (code === 4002 && !this._left) {
      this._recover("the room lost the media connection"); // the socket went with it
      return;
    }
    this._finish(code, reason, this._left ? "left" : closeKind(code), false);
  }

  _finish(code, reason, kind, reconnectFailed) {
    this._teardown();
    this._emit("disconnected", {
      code,
      reason: reason || this._byeReason || "connection to the media server lost",
      kind,
      reconnectFailed,
    });
  }

  _teardown() {
    this._timers.forEach(clearInterval);
    this._timers = [];
    clearTimeout(this._graceTimer);
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
  const call = new MediaCall({ consultation_id: consultationId, ...room }, token, localStream, apiBase);
  await call._connect();
  return call;
}
