// The consultation's video area: own camera, remote tiles labelled by role and source,
// mute / camera / screen share / switch camera, the connection-quality hint, the
// staff member's background, and what to say when the connection ends or breaks.
// The transport is media.js (the media service's browser client).
import { announce, el, slot, t } from "./common.js";
import { chosenDevices } from "./devicecheck.js";
import { connect } from "./media.js";
import { backgroundSupported, startBackground } from "./background.js";
import { connectionView } from "./connection.js";
import { startChat } from "./chat.js";
import { createPeople } from "./people.js";

const ROLE_KEY = { staff: "tile_staff", citizen: "tile_citizen", interpreter: "tile_interpreter" };
const BACKGROUND_KEY = "bb.background";

async function openLocal() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return null;
  const choice = chosenDevices();
  const wanted = {
    video: choice.camera ? { deviceId: { ideal: choice.camera } } : true,
    audio: choice.microphone ? { deviceId: { ideal: choice.microphone } } : true,
  };
  try {
    return await navigator.mediaDevices.getUserMedia(wanted);
  } catch {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return null;
    }
  }
}

function roleLabel(role) {
  return t(ROLE_KEY[role] || "tile_guest");
}

/**
 * Start the stage for a participant pass. `hooks.onEnded()` is called when the
 * consultation ends for everyone (the page shows its end section); `hooks.onRefused()`,
 * where given, when the room refuses or drops this participant's pass (e.g. a withdrawn
 * invitation) instead of the generic message.
 * Returns { close() } (hang up and stop the camera).
 */
export async function startStage(root, pass, hooks = {}) {
  const status = slot(root, "media-status");
  const tiles = slot(root, "tiles");
  const selfVideo = slot(root, "self-video");
  const selfState = slot(root, "self-state");
  const problem = slot(root, "media-problem");
  const problemText = slot(root, "problem-text");
  const reconnectButton = root.querySelector('[data-action="reconnect"]');
  // The quality line, the reconnect banner and the participants' states (connection.js).
  const connection = connectionView(root, { roleLabel, onRejoin: () => join() });
  const soundButton = root.querySelector('[data-action="sound"]');
  const audioBox = slot(root, "audio");
  const muteButton = root.querySelector('[data-action="mute"]');
  const cameraButton = root.querySelector('[data-action="camera"]');
  const screenButton = root.querySelector('[data-action="screen"]');
  const switchButton = root.querySelector('[data-action="switch-camera"]');
  const backgroundBox = slot(root, "background");
  const backgroundStatus = slot(root, "background-status");

  let session = null;
  let localStream = null;
  let rawCamera = null; // the camera track while a processed one is sent instead
  let processor = null;
  let closed = false;
  let lostBefore = false; // the socket dropped once: a closed room then means a lost server
  const videoTiles = new Map(); // trackId -> tile
  const audioNodes = new Map(); // trackId -> <audio>

  const setStatus = (text) => {
    status.textContent = text;
  };
  const showProblem = (text, canRetry) => {
    problemText.textContent = text;
    reconnectButton.hidden = !canRetry;
    problem.hidden = false;
  };
  const hideProblem = () => {
    problem.hidden = true;
  };
  const setControlsEnabled = (enabled) => {
    for (const button of [muteButton, cameraButton, screenButton, switchButton]) {
      if (button) button.disabled = !enabled;
    }
  };

  // -- remote tiles -----------------------------------------------------------------

  const updatePlaceholder = () => {
    const placeholder = slot(root, "remote-placeholder");
    if (placeholder) placeholder.hidden = videoTiles.size > 0;
  };

  const addVideoTile = (detail) => {
    const label = labelOf(detail);
    const video = el("video", { autoplay: true, playsinline: true, muted: true, "aria-label": label });
    video.muted = true;
    video.srcObject = new MediaStream([detail.track]);
    const tile = el(
      "div",
      {
        className: `tile${detail.source === "screen" ? " tile-screen" : ""}`,
        "data-role": detail.role,
        "data-source": detail.source,
        "data-participant": detail.participantId,
      },
      video,
      el("span", { className: "tile-label", text: label }),
    );
    if (detail.source === "screen") tiles.prepend(tile);
    else tiles.append(tile);
    videoTiles.set(detail.trackId, tile);
    updatePlaceholder();
    video.play().catch(() => {});
    announce(t(detail.source === "screen" ? "screen_arrived" : "video_arrived", { role: people.label(detail.participantId, detail.role) }));
  };

  const addAudio = (detail) => {
    const audio = el("audio", { autoplay: true });
    audio.srcObject = new MediaStream([detail.track]);
    audioBox.append(audio);
    audioNodes.set(detail.trackId, audio);
    audio.play().catch(() => {
      soundButton.hidden = false; // the browser wants a click before it plays sound
    });
  };

  soundButton.addEventListener("click", () => {
    for (const audio of audioNodes.values()) audio.play().catch(() => {});
    soundButton.hidden = true;
  });

  const onTrack = (detail) => {
    if (detail.kind === "audio") addAudio(detail);
    else addVideoTile(detail);
  };
  const onTrackEnded = (detail) => {
    const tile = videoTiles.get(detail.trackId);
    if (tile) {
      tile.remove();
      videoTiles.delete(detail.trackId);
      if (detail.source === "screen") announce(t("screen_gone", { role: roleLabel(detail.role) }));
    }
    const audio = audioNodes.get(detail.trackId);
    if (audio) {
      audio.srcObject = null;
      audio.remove();
      audioNodes.delete(detail.trackId);
    }
    updatePlaceholder();
  };
  const clearRemote = () => {
    for (const tile of videoTiles.values()) tile.remove();
    for (const audio of audioNodes.values()) audio.remove();
    videoTiles.clear();
    audioNodes.clear();
    updatePlaceholder();
  };

  const onParticipants = (participants) => {
    const me = session?.call.participantId || pass.participant_id;
    const others = participants.filter((p) => p.participantId !== me);
    if (others.length === 0) setStatus(t("alone"));
    else setStatus(t("connected_with", { names: others.map((p) => people.label(p.participantId, p.role)).join(", ") }));
    connection.participants(participants, me);
    lastParticipants = participants;
    if (hooks.onParticipants) hooks.onParticipants(participants.map((p) => ({ ...p, label: people.label(p.participantId, p.role) })));
  };

  // -- names and chat (people.js, chat.js: over the room's signalling socket) --------

  let lastParticipants = null;
  const labelOf = (detail) =>
    t(detail.source === "screen" ? "tile_screen" : "tile_camera", { role: people.label(detail.participantId, detail.role) });
  const namesChanged = () => {
    for (const tile of tiles.querySelectorAll(".tile[data-participant]")) {
      const label = labelOf({ participantId: tile.dataset.participant, role: tile.dataset.role, source: tile.dataset.source });
      tile.querySelector(".tile-label").textContent = label;
      tile.querySelector("video")?.setAttribute("aria-label", label);
    }
    if (lastParticipants) onParticipants(lastParticipants);
  };
  const people = createPeople(namesChanged);
  const sendToRoom = (message) => (session ? session.send(message) : false);
  const chat = startChat(root, { send: sendToRoom, people, me: () => session?.call.participantId || pass.participant_id });
  const onRoomMessage = (message) => {
    if (message.type === "chat-members") people.update(message.members);
    else chat.onMessage(message);
  };

  // -- the preview of the own shared screen -------------------------------------------

  let screenPreview = null;
  const showScreenPreview = () => {
    const track = session?.call.screenTrack;
    if (!track) return;
    const video = el("video", { autoplay: true, playsinline: true, muted: true, "aria-label": t("screen_preview") });
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    screenPreview = el(
      "div",
      { className: "tile tile-screen tile-own-screen", "data-slot": "screen-preview" },
      video,
      el("span", { className: "tile-label", text: t("screen_preview") }),
    );
    tiles.prepend(screenPreview);
    video.play().catch(() => {});
    track.addEventListener("ended", hideScreenPreview);
  };
  const hideScreenPreview = () => {
    if (!screenPreview) return;
    screenPreview.querySelector("video").srcObject = null;
    screenPreview.remove();
    screenPreview = null;
  };

  const stopLocal = () => {
    if (processor) processor.stop();
    processor = null;
    rawCamera?.stop();
    rawCamera = null;
    localStream?.getTracks().forEach((track) => track.stop());
    localStream = null;
    selfVideo.srcObject = null;
  };

  const onDisconnected = ({ kind, reconnectFailed }) => {
    if (closed) return;
    session = null;
    clearRemote();
    stopLocal();
    setControlsEnabled(false);
    connection.reset();
    delete window.bbMediaStats;
    if (reconnectFailed) {
      setStatus("");
      connection.gaveUp();
      return;
    }
    hideScreenPreview();
    if (kind === "ended") {
      chat.clear();
      setStatus(t("ended"));
      if (hooks.onEnded) hooks.onEnded();
    } else if (kind === "replaced") {
      setStatus("");
      showProblem(t("replaced"), true);
    } else if (kind === "refused" && hooks.onRefused) {
      setStatus("");
      hooks.onRefused();
    } else if (kind === "refused") {
      setStatus("");
      showProblem(t("refused"), false);
    } else if (kind === "lost") {
      lostBefore = true;
      setStatus("");
      showProblem(t("lost"), true);
      reconnectButton.focus();
    }
  };

  // -- background (staff) -----------------------------------------------------------

  const backgroundUrl = root.dataset.backgroundUrl;
  const chosenBackground = () => {
    const checked = backgroundBox?.querySelector("input:checked");
    return checked ? checked.value : "none";
  };

  const applyBackground = async (mode) => {
    if (!backgroundBox || !localStream) return;
    window.localStorage.setItem(BACKGROUND_KEY, mode);
    if (mode === "none") {
      if (processor && rawCamera) {
        const camera = rawCamera;
        if (session) await session.replaceCameraTrack(camera);
        else swapLocal(camera);
        processor.stop();
        processor = null;
        rawCamera = null;
        selfVideo.srcObject = localStream;
      }
      backgroundStatus.textContent = t("background_off");
      return;
    }
    if (processor) {
      processor.setMode(mode);
      backgroundStatus.textContent = backgroundText(mode, processor.level);
      return;
    }
    const camera = localStream.getVideoTracks()[0];
    if (!camera) return;
    if (!backgroundSupported()) {
      backgroundStatus.textContent = t("background_unsupported");
      return;
    }
    backgroundStatus.textContent = t("background_starting");
    try {
      const started = await startBackground(camera, {
        mode,
        imageUrl: backgroundUrl,
        encodedFrames: encodedCameraFrames,
        onLevel: backgroundLevel,
      });
      if (!localStream || chosenBackground() === "none") {
        started.stop();
        return;
      }
      processor = started;
      rawCamera = camera;
      if (session) await session.replaceCameraTrack(processor.track);
      else swapLocal(processor.track);
      selfVideo.srcObject = new MediaStream([processor.track]);
      backgroundStatus.textContent = backgroundText(mode, processor.level);
    } catch (error) {
      backgroundStatus.textContent = t(error.message === "unsupported" ? "background_unsupported" : "background_too_slow");
      backgroundBox.querySelector('input[value="none"]').checked = true;
    }
  };

  // -- the background fitting the machine (background.js measures, the page says) ----

  const backgroundText = (mode, level) => {
    if (level === "colour") return t("background_colour");
    if (level === "reduced") return t(mode === "blur" ? "background_blur_reduced" : "background_image_reduced");
    return t(mode === "blur" ? "background_blur_on" : "background_image_on");
  };
  /** Frames the connection encoded of the one video it sends (null: not known now). */
  const encodedCameraFrames = async () => {
    if (!session) return null;
    const outbound = (await session.stats()).filter((s) => s.direction === "outbound");
    return outbound.length === 1 ? outbound[0].framesEncoded : null;
  };
  /** The effect could not keep the frame rate: a plainer one, or the camera as it is. */
  const backgroundLevel = async (level) => {
    if (level !== "off") {
      backgroundStatus.textContent = backgroundText(chosenBackground(), level);
      announce(backgroundStatus.textContent);
      return;
    }
    if (processor && rawCamera && localStream) {
      const camera = rawCamera;
      if (session) await session.replaceCameraTrack(camera);
      else swapLocal(camera);
      processor.stop();
      processor = null;
      rawCamera = null;
      selfVideo.srcObject = localStream;
    }
    backgroundBox.querySelector('input[value="none"]').checked = true; // the saved choice stays
    backgroundStatus.textContent = t("background_too_slow");
    announce(backgroundStatus.textContent);
  };

  const swapLocal = (track) => {
    const current = localStream.getVideoTracks()[0];
    if (current) localStream.removeTrack(current);
    localStream.addTrack(track);
  };

  if (backgroundBox) {
    const saved = window.localStorage.getItem(BACKGROUND_KEY) || "none";
    const input = backgroundBox.querySelector(`input[value="${saved}"]`) || backgroundBox.querySelector('input[value="none"]');
    input.checked = true;
    backgroundBox.addEventListener("change", () => applyBackground(chosenBackground()));
  }

  // -- controls ---------------------------------------------------------------------

  const pressed = (button) => button.getAttribute("aria-pressed") === "true";
  muteButton.addEventListener("click", () => {
    const muted = !pressed(muteButton);
    if (session) session.setMicrophoneMuted(muted);
    else localStream?.getAudioTracks().forEach((track) => (track.enabled = !muted));
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.textContent = muted ? t("unmute") : t("mute");
    announce(muted ? t("muted") : t("unmuted"));
  });
  cameraButton.addEventListener("click", () => {
    const off = !pressed(cameraButton);
    if (session) session.setCameraOff(off);
    else localStream?.getVideoTracks().forEach((track) => (track.enabled = !off));
    if (rawCamera) rawCamera.enabled = !off;
    cameraButton.setAttribute("aria-pressed", String(off));
    cameraButton.textContent = off ? t("camera_on") : t("camera_off");
    selfState.textContent = off ? t("camera_is_off") : "";
    selfState.hidden = !off;
    announce(off ? t("camera_is_off") : t("camera_is_on"));
  });

  const screenStopped = () => {
    hideScreenPreview();
    screenButton.setAttribute("aria-pressed", "false");
    screenButton.textContent = t("share_screen");
    announce(t("screen_stopped"));
  };
  screenButton.addEventListener("click", async () => {
    if (!session) return;
    if (session.screenSharing) {
      await session.stopScreenShare();
      screenStopped();
      return;
    }
    try {
      await session.startScreenShare(() => screenStopped());
      showScreenPreview();
      screenButton.setAttribute("aria-pressed", "true");
      screenButton.textContent = t("stop_share");
      announce(t("screen_started"));
    } catch {
      setStatus(t("screen_failed"));
    }
  });
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) screenButton.hidden = true;

  switchButton.addEventListener("click", async () => {
    const current = rawCamera || localStream?.getVideoTracks()[0];
    if (!current) return;
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    const index = cameras.findIndex((d) => d.deviceId === current.getSettings().deviceId);
    const next = cameras[(index + 1) % Math.max(cameras.length, 1)];
    if (cameras.length < 2 || !next) {
      setStatus(t("one_camera"));
      return;
    }
    try {
      if (processor) {
        const fresh = (await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: next.deviceId } } })).getVideoTracks()[0];
        fresh.enabled = current.enabled;
        processor.setSource(fresh);
        rawCamera = fresh;
        current.stop();
      } else if (session) {
        await session.switchCamera(next.deviceId);
        selfVideo.srcObject = localStream;
      }
      announce(t("camera_switched", { name: next.label || String((index + 2) % cameras.length || cameras.length) }));
    } catch {
      setStatus(t("switch_failed"));
    }
  });

  // -- joining ----------------------------------------------------------------------

  const join = async () => {
    hideProblem();
    connection.reset();
    setControlsEnabled(false);
    setStatus(t("joining"));
    localStream = await openLocal();
    selfVideo.srcObject = localStream;
    const hasCamera = Boolean(localStream && localStream.getVideoTracks().length);
    selfState.textContent = hasCamera ? "" : t("no_camera");
    selfState.hidden = hasCamera;
    if (hasCamera && backgroundBox && chosenBackground() !== "none") await applyBackground(chosenBackground());
    if (pressed(muteButton)) localStream?.getAudioTracks().forEach((track) => (track.enabled = false));
    if (pressed(cameraButton)) localStream?.getVideoTracks().forEach((track) => (track.enabled = false));
    try {
      session = await connect({
        consultationId: pass.consultation_id,
        participantToken: pass.participant_token,
        mediaPath: pass.media_path,
        localStream,
        onTrack,
        onTrackEnded,
        onParticipants,
        onQuality: (figures) => connection.quality(figures),
        onReconnecting: () => connection.reconnecting(),
        onReconnected: () => connection.reconnected(),
        onMessage: onRoomMessage,
        onDisconnected,
      });
    } catch (error) {
      stopLocal();
      if (error.code === "ended" && lostBefore) {
        // The room was closed with its media server: the conversation cannot go on here.
        setStatus("");
        showProblem(t("room_lost"), false);
      } else if (error.code === "ended") {
        setStatus(t("ended"));
        if (hooks.onEnded) hooks.onEnded();
      } else if (error.code === "refused" && hooks.onRefused) {
        setStatus("");
        hooks.onRefused();
      } else if (error.code === "refused") {
        setStatus("");
        showProblem(t("refused"), false);
      } else {
        setStatus("");
        showProblem(t("media_unavailable"), true);
      }
      return;
    }
    if (closed) {
      await session.close();
      return;
    }
    setControlsEnabled(true);
    try {
      const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
      switchButton.hidden = cameras.length < 2; // nothing to switch to
    } catch {
      switchButton.hidden = true;
    }
    if (!hasCamera) {
      cameraButton.disabled = true;
      switchButton.disabled = true;
    }
    if (status.textContent === t("joining")) setStatus(t("alone"));
  };

  reconnectButton.addEventListener("click", () => join());
  await join();

  return {
    get session() {
      return session;
    },
    async close() {
      closed = true;
      const current = session;
      session = null;
      if (current) await current.close();
      clearRemote();
      hideScreenPreview();
      chat.clear();
      stopLocal();
      delete window.bbMediaStats;
    },
  };
}
