// The staff member's background: a blur or the administration's image behind the person,
// done in this browser with MediaPipe's selfie segmentation model, which the app ships in
// /static/vendor/selfie_segmentation/ (Apache-2.0; nothing is loaded from elsewhere).
// The processed picture is drawn into a canvas whose captureStream() is sent instead of
// the camera. Without WebGL or WebAssembly the caller keeps sending the plain camera.

const VENDOR = "/static/vendor/selfie_segmentation/";
const FPS = 20;
const FIRST_RESULT_MS = 15000;
let loading = null;

export function backgroundSupported() {
  if (typeof WebAssembly !== "object") return false;
  if (!HTMLCanvasElement.prototype.captureStream) return false;
  try {
    const canvas = document.createElement("canvas");
    return Boolean(canvas.getContext("webgl2") || canvas.getContext("webgl"));
  } catch {
    return false;
  }
}

function loadSolution() {
  if (window.SelfieSegmentation) return Promise.resolve(window.SelfieSegmentation);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${VENDOR}selfie_segmentation.js`;
      script.onload = () =>
        window.SelfieSegmentation ? resolve(window.SelfieSegmentation) : reject(new Error("no solution"));
      script.onerror = () => reject(new Error("segmentation script not loaded"));
      document.head.append(script);
    });
  }
  return loading;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("background image not loaded"));
    image.src = url;
  });
}

/** Draw `image` to cover the whole canvas (cropped, never stretched). */
function drawCover(ctx, image, width, height) {
  const iw = image.naturalWidth || image.width;
  const ih = image.naturalHeight || image.height;
  const scale = Math.max(width / iw, height / ih);
  const w = iw * scale;
  const h = ih * scale;
  ctx.drawImage(image, (width - w) / 2, (height - h) / 2, w, h);
}

/**
 * Start processing `cameraTrack`; resolves once the first picture is ready with
 * { track, setMode(mode), setSource(track), stop() }, or rejects when it cannot run.
 * mode: "blur" | "image".
 */
export async function startBackground(cameraTrack, { mode, imageUrl }) {
  if (!backgroundSupported()) throw new Error("unsupported");
  const [Solution, image] = await Promise.all([loadSolution(), loadImage(imageUrl)]);
  const settings = cameraTrack.getSettings();
  const canvas = document.createElement("canvas");
  canvas.width = settings.width || 640;
  canvas.height = settings.height || 480;
  const ctx = canvas.getContext("2d");
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([cameraTrack]);
  await video.play();

  const state = { mode, running: true, source: cameraTrack };
  const segmenter = new Solution({ locateFile: (file) => `${VENDOR}${file}` });
  segmenter.setOptions({ modelSelection: 1, selfieMode: false });
  let firstResult;
  const ready = new Promise((resolve) => {
    firstResult = resolve;
  });
  segmenter.onResults((results) => {
    const { width, height } = canvas;
    ctx.save();
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(results.segmentationMask, 0, 0, width, height);
    ctx.globalCompositeOperation = "source-in";
    ctx.drawImage(results.image, 0, 0, width, height);
    ctx.globalCompositeOperation = "destination-over";
    if (state.mode === "image") {
      drawCover(ctx, image, width, height);
    } else {
      ctx.filter = "blur(14px)";
      ctx.drawImage(results.image, 0, 0, width, height);
      ctx.filter = "none";
    }
    ctx.restore();
    firstResult();
  });

  const loop = async () => {
    while (state.running) {
      const started = performance.now();
      if (video.readyState >= 2 && video.videoWidth) {
        try {
          await segmenter.send({ image: video });
        } catch (error) {
          state.running = false;
          state.error = error;
          break;
        }
      }
      const pause = Math.max(0, 1000 / FPS - (performance.now() - started));
      await new Promise((resolve) => window.setTimeout(resolve, pause));
    }
  };
  loop();
  const timeout = new Promise((resolve, reject) =>
    window.setTimeout(() => reject(new Error("segmentation too slow to start")), FIRST_RESULT_MS),
  );
  try {
    await Promise.race([ready, timeout]);
  } catch (error) {
    state.running = false;
    segmenter.close?.();
    throw error;
  }
  const track = canvas.captureStream(FPS).getVideoTracks()[0];
  return {
    track,
    canvas,
    setMode(next) {
      state.mode = next;
    },
    setSource(next) {
      state.source = next;
      video.srcObject = new MediaStream([next]);
      video.play().catch(() => {});
    },
    stop() {
      state.running = false;
      track.stop();
      video.srcObject = null;
      try {
        segmenter.close();
      } catch {
        // Already closed.
      }
    },
  };
}
