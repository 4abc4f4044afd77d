// Camera and microphone check: preview, device choice and a level meter (getUserMedia +
// WebAudio). Nothing leaves the device. The chosen devices are kept in this tab for the call.
import { slot, show, store, t } from "./common.js";

const CHOICE_KEY = "bb.devices";

export function chosenDevices() {
  return store.get(CHOICE_KEY) || {};
}

export function setupDeviceCheck(root) {
  if (!root) return null;
  const startButton = root.querySelector('[data-action="start-check"]');
  const stopButton = root.querySelector('[data-action="stop-check"]');
  const status = slot(root, "check-status");
  const preview = slot(root, "check-preview");
  const video = preview.querySelector("video");
  const cameraSelect = slot(root, "camera");
  const micSelect = slot(root, "microphone");
  const meter = slot(root, "level");
  const levelText = slot(root, "level-text");
  let stream = null;
  let audio = null;
  let frame = 0;
  let heard = null;

  function stop(message = true) {
    window.cancelAnimationFrame(frame);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    if (audio) audio.close().catch(() => {});
    audio = null;
    video.srcObject = null;
    meter.value = 0;
    show(preview, false);
    show(stopButton, false);
    show(startButton, true);
    if (message) status.textContent = t("check_stopped");
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, current) => {
      select.replaceChildren();
      devices
        .filter((device) => device.kind === kind)
        .forEach((device, index) => {
          const option = document.createElement("option");
          option.value = device.deviceId;
          option.textContent = device.label || t("device_default", { n: index + 1 });
          if (device.deviceId === current) option.selected = true;
          select.append(option);
        });
      select.disabled = select.options.length === 0;
    };
    const videoTrack = stream.getVideoTracks()[0];
    const audioTrack = stream.getAudioTracks()[0];
    fill(cameraSelect, "videoinput", videoTrack?.getSettings().deviceId);
    fill(micSelect, "audioinput", audioTrack?.getSettings().deviceId);
  }

  function meterLoop(track) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context || !track) return;
    audio = new Context();
    const source = audio.createMediaStreamSource(new MediaStream([track]));
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      const rms = Math.sqrt(sum / samples.length);
      const level = Math.min(100, Math.round(rms * 300));
      meter.value = level;
      const nowHeard = level > 3;
      if (nowHeard !== heard) {
        heard = nowHeard;
        levelText.textContent = nowHeard ? t("level_ok") : t("level_silent");
      }
      frame = window.requestAnimationFrame(tick);
    };
    tick();
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = t("check_unsupported");
      return;
    }
    stop(false);
    const choice = chosenDevices();
    const constraints = {
      video: choice.camera ? { deviceId: { exact: choice.camera } } : true,
      audio: choice.microphone ? { deviceId: { exact: choice.microphone } } : true,
    };
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      if (error && error.name === "OverconstrainedError") {
        store.remove(CHOICE_KEY);
        return start();
      }
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch {
        stream = null;
      }
      if (!stream) {
        status.textContent =
          error && error.name === "NotFoundError" ? t("check_no_devices") : t("check_denied");
        return;
      }
    }
    video.srcObject = stream;
    show(preview, true);
    show(startButton, false);
    show(stopButton, true);
    status.textContent = t("check_running");
    await listDevices();
    meterLoop(stream.getAudioTracks()[0]);
  }

  function choose() {
    store.set(CHOICE_KEY, { camera: cameraSelect.value || null, microphone: micSelect.value || null });
    start();
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => {
    stop();
    startButton.focus();
  });
  cameraSelect.addEventListener("change", choose);
  micSelect.addEventListener("change", choose);
  window.addEventListener("pagehide", () => stop(false));
  return { start, stop };
}
