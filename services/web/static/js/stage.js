// The consultation's video area: own camera, remote tiles, mute and camera buttons.
// The transport itself comes from media.js (the media service's module plugs in there).
import { el, slot, t } from "./common.js";
import { chosenDevices } from "./devicecheck.js";
import { connect } from "./media.js";

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

const ROLE_LABEL = { staff: "role_staff", citizen: "role_citizen", interpreter: "role_interpreter" };

/** Start the stage for a participant pass; returns { close() }. */
export async function startStage(root, pass) {
  const status = slot(root, "media-status");
  const tiles = slot(root, "tiles");
  const selfVideo = slot(root, "self-video");
  const muteButton = root.querySelector('[data-action="mute"]');
  const cameraButton = root.querySelector('[data-action="camera"]');
  const setStatus = (text) => {
    status.textContent = text;
  };
  setStatus(t("joining"));
  const localStream = await openLocal();
  if (localStream) selfVideo.srcObject = localStream;
  if (!localStream || localStream.getVideoTracks().length === 0) {
    slot(root, "self-video").after(el("p", { className: "tile-state", text: t("no_camera") }));
  }

  muteButton.addEventListener("click", () => {
    const muted = muteButton.getAttribute("aria-pressed") !== "true";
    localStream?.getAudioTracks().forEach((track) => {
      track.enabled = !muted;
    });
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.textContent = muted ? t("unmute") : t("mute");
  });
  cameraButton.addEventListener("click", () => {
    const off = cameraButton.getAttribute("aria-pressed") !== "true";
    localStream?.getVideoTracks().forEach((track) => {
      track.enabled = !off;
    });
    cameraButton.setAttribute("aria-pressed", String(off));
    cameraButton.textContent = off ? t("camera_on") : t("camera_off");
  });

  const addRemote = (stream, role, label) => {
    const placeholder = tiles.querySelector('[data-role="remote"]');
    if (placeholder) placeholder.remove();
    const video = el("video", { autoplay: true, playsinline: true, "aria-label": label || t(ROLE_LABEL[role] || "role_staff") });
    video.srcObject = stream;
    const tile = el("div", { className: "tile", "data-role": role }, video, el("span", {
      className: "tile-label",
      text: label || t(ROLE_LABEL[role] || "role_staff"),
    }));
    tiles.append(tile);
    return tile;
  };

  const session = await connect({
    consultationId: pass.consultation_id,
    participantId: pass.participant_id,
    role: pass.role,
    participantToken: pass.participant_token,
    mediaPath: pass.media_path,
    localStream,
    addRemote,
    setStatus,
    strings: {
      joined_pending: t("joined_pending"),
      media_unavailable: t("media_unavailable"),
    },
  });
  return {
    async close() {
      await session.close();
      localStream?.getTracks().forEach((track) => track.stop());
      selfVideo.srcObject = null;
    },
  };
}
