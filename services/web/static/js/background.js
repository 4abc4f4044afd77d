// The staff member's background: a blur or the administration's image behind the person,
// done in this browser with MediaPipe's selfie segmentation model, which the app ships in
// /static/vendor/selfie_segmentation/ (Apache-2.0; nothing is loaded from elsewhere).
// The picture is drawn into a canvas whose captureStream() is sent instead of the camera.
//
// It fits the machine: drawing (every camera frame) and segmenting (finding the person,
// which blocks the page for 150-250 ms on a PC without a graphics card, where WebGL runs
// in software) are apart. Each picture is drawn with the latest mask; segmentation runs
// only as often as a share of the page's time allows and, where one run blocks longer
// than a frame, only as often as the frames it costs leave TARGET_FPS; both shrink when
// the frames actually drawn and encoded fall below STEP_DOWN_FPS. Should even the rarest
// masks not keep that, the blur or image gives way to the administration's plain colour,
// and then the effect stops and the plain camera is sent (onLevel tells the page). When
// the machine has time again, the effect steps back up (backgroundladder.js decides).
// The first run (loading and compiling the model, ~2 s) is not counted as its cost.

import { createLadder } from "./backgroundladder.js";

const VENDOR = "/static/vendor/selfie_segmentation/";
const FPS = 20;
const FRAME_MS = 1000 / FPS;
const MIN_FPS = 15; // what the others must receive
// Aimed at, and stepped down below: above MIN_FPS, since the other side decodes at most
// what this page encoded, measured over windows that do not line up with these.
const TARGET_FPS = 18;
const STEP_DOWN_FPS = MIN_FPS + 1;
const STEP_UP_FPS = TARGET_FPS; // kept at the rung below for a while before stepping up
const WINDOW_MS = 2000; // frame rate measured over this long
const BUDGETS = [0.35, 0.2, 0.1]; // share of the page's time segmentation may take
const MAX_MASK_AGE_MS = 2500; // rarer masks than this lag too far behind the person
const FIRST_RESULT_MS = 20000;
const MASK_WIDTH = 256;
const MASK_HEIGHT = 144;
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

function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
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

/** The administration's plain colour: its background image's average colour. */
function averageColour(image) {
  const ctx = canvasOf(1, 1).getContext("2d", { willReadFrequently: true });
  drawCover(ctx, image, 1, 1);
  const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
  return `rgb(${r}, ${g}, ${b})`;
}

const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

/**
 * Start processing `cameraTrack`; resolves once the first picture is ready with
 * { track, canvas, level, setMode(mode), setSource(track), stop() }, or rejects when it
 * cannot run. mode: "blur" | "image". `encodedFrames()` (optional, async) gives the
 * frames the connection encoded so far; `onLevel(level)` is told "reduced" (rarer
 * masks), "colour" (plain colour instead) and "off" (stopped: send the camera).
 */
export async function startBackground(cameraTrack, { mode, imageUrl, encodedFrames, onLevel = () => {} }) {
  if (!backgroundSupported()) throw new Error("unsupported");
  const [Solution, image] = await Promise.all([loadSolution(), loadImage(imageUrl)]);
  const settings = cameraTrack.getSettings();
  const canvas = canvasOf(settings.width || 640, settings.height || 480);
  const ctx = canvas.getContext("2d");
  const mask = canvasOf(MASK_WIDTH, MASK_HEIGHT);
  const maskCtx = mask.getContext("2d");
  const person = canvasOf(canvas.width, canvas.height);
  const personCtx = person.getContext("2d");
  const blurred = canvasOf(canvas.width / 4, canvas.height / 4);
  const blurredCtx = blurred.getContext("2d");
  const colour = averageColour(image);
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([cameraTrack]);
  await video.play();

  const state = { mode, running: true, level: "full", budget: 0, hasMask: false, cost: 0, nextMaskAt: 0 };
  // How long after one mask the next may start, at `budget`: the page's share, and the
  // frames a run longer than one frame costs against the frames TARGET_FPS can spare.
  const maskPeriod = (budget) => {
    const share = BUDGETS[budget];
    const lostPerMask = Math.max(0, state.cost / FRAME_MS - 1);
    const lostPerSecond = ((FPS - TARGET_FPS) * share) / BUDGETS[0];
    return Math.max(state.cost / share, (lostPerMask * 1000) / lostPerSecond);
  };
  const segmenter = new Solution({ locateFile: (file) => `${VENDOR}${file}` });
  segmenter.setOptions({ modelSelection: 1, selfieMode: false });
  segmenter.onResults((results) => {
    maskCtx.globalCompositeOperation = "copy";
    maskCtx.drawImage(results.segmentationMask, 0, 0, MASK_WIDTH, MASK_HEIGHT);
    state.hasMask = true;
  });

  const draw = () => {
    const { width, height } = canvas;
    personCtx.globalCompositeOperation = "copy";
    personCtx.drawImage(mask, 0, 0, width, height);
    personCtx.globalCompositeOperation = "source-in";
    personCtx.drawImage(video, 0, 0, width, height);
    if (state.level === "colour") {
      ctx.fillStyle = colour;
      ctx.fillRect(0, 0, width, height);
    } else if (state.mode === "image") {
      drawCover(ctx, image, width, height);
    } else {
      // A quarter-size copy, softened and scaled up: a strong blur at a small price.
      blurredCtx.filter = "blur(3px)";
      blurredCtx.drawImage(video, 0, 0, blurred.width, blurred.height);
      ctx.drawImage(blurred, 0, 0, width, height);
    }
    ctx.drawImage(person, 0, 0);
  };

  const segment = async () => {
    const warmUp = !state.hasMask; // the model loading and compiling, not what a mask costs
    const started = performance.now();
    await segmenter.send({ image: video });
    const took = performance.now() - started;
    if (warmUp) return;
    state.cost = state.cost ? state.cost * 0.7 + took * 0.3 : took;
    state.nextMaskAt = started + maskPeriod(state.budget);
  };

  // Frames drawn and (where known) encoded per second, over WINDOW_MS. Not while the
  // page is hidden: the browser then slows its timers, which says nothing of the machine.
  const meter = { since: performance.now(), drawn: 0, encoded: null };
  const measure = async () => {
    const now = performance.now();
    if (document.hidden) {
      meter.since = now;
      meter.drawn = 0;
      meter.encoded = null;
      return null;
    }
    if (now - meter.since < WINDOW_MS) return null;
    const seconds = (now - meter.since) / 1000;
    let fps = meter.drawn / seconds;
    if (encodedFrames) {
      const encoded = await encodedFrames().catch(() => null);
      if (encoded !== null && meter.encoded !== null) fps = Math.min(fps, (encoded - meter.encoded) / seconds);
      meter.encoded = encoded;
    }
    meter.since = now;
    meter.drawn = 0;
    return fps;
  };

  const ladder = createLadder({
    stepDownFps: STEP_DOWN_FPS,
    stepUpFps: STEP_UP_FPS,
    usable: (rung) => rung.level !== "reduced" || maskPeriod(rung.budget) <= MAX_MASK_AGE_MS,
  });
  const judge = (fps) => {
    const rung = ladder.window(fps);
    if (!rung) return;
    if (rung.budget !== null) state.budget = rung.budget;
    state.level = rung.level;
    if (rung.level === "off") state.running = false;
    onLevel(rung.level);
  };

  let first;
  const ready = new Promise((resolve, reject) => {
    first = { resolve, reject };
  });
  const loop = async () => {
    let nextFrameAt = performance.now();
    while (state.running) {
      try {
        if (video.readyState >= 2 && video.videoWidth) {
          if (!state.hasMask || performance.now() >= state.nextMaskAt) {
            await segment();
            if (state.hasMask && !state.started) {
              state.started = true;
              meter.since = performance.now();
              meter.drawn = 0;
              first.resolve();
            }
          }
          if (state.hasMask) {
            draw();
            meter.drawn += 1;
          }
        }
        if (state.started) {
          const fps = await measure();
          if (fps !== null) judge(fps);
        }
      } catch (error) {
        state.running = false;
        first.reject(error);
        onLevel("off");
        break;
      }
      nextFrameAt = Math.max(nextFrameAt + 1000 / FPS, performance.now());
      await sleep(nextFrameAt - performance.now());
    }
  };
  loop();
  try {
    await Promise.race([ready, sleep(FIRST_RESULT_MS).then(() => Promise.reject(new Error("segmentation too slow to start")))]);
  } catch (error) {
    state.running = false;
    segmenter.close?.();
    throw error;
  }
  const track = canvas.captureStream(FPS).getVideoTracks()[0];
  return {
    track,
    canvas,
    get level() {
      return state.level;
    },
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
