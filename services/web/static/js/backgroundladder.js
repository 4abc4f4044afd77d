// How much of the background effect this machine can afford, decided window by window
// from the frame rate the others actually get. Kept apart from background.js (which
// draws and segments) so that the decisions can be tested alone.
//
// The rungs, from the whole effect to none: masks as often as the page's biggest share
// allows, rarer masks (twice), the administration's plain colour instead of the blur or
// image, and off (the camera is sent as it is; final: the page says so and the staff
// member may choose the effect again).
//
// One window below `stepDownFps` steps down at once: the others' picture comes first.
// Stepping back up (the machine has time again: another program ended, a window closed)
// waits for `calmWindows` windows in a row at `stepUpFps` or more. A step up that is
// followed within `probationWindows` by a step down was a mistake: the wait before the
// next one doubles (up to `maxCalmWindows`), so a machine at the edge does not swing.
// Off, being final, needs `offWindows` bad windows in a row at the colour rung: one
// stutter (a garbage collection, a burst of other work) must not end the effect.

export const RUNGS = Object.freeze([
  Object.freeze({ level: "full", budget: 0 }),
  Object.freeze({ level: "reduced", budget: 1 }),
  Object.freeze({ level: "reduced", budget: 2 }),
  Object.freeze({ level: "colour", budget: null }), // the rarest masks still in use
  Object.freeze({ level: "off", budget: null }),
]);
const COLOUR = 3;
const OFF = 4;

/**
 * `usable(rung)` says whether a rung may be used now (background.js: whether its masks
 * would lag too far behind the person); rungs that are not are passed over both ways.
 * `window(fps)` takes one window's frame rate and returns the new rung when it changed,
 * otherwise null.
 */
export function createLadder({
  stepDownFps,
  stepUpFps,
  calmWindows = 5,
  maxCalmWindows = 80,
  probationWindows = 5,
  offWindows = 2,
  usable = () => true,
}) {
  let rung = 0;
  let calm = 0; // good windows in a row
  let bad = 0; // bad windows in a row
  let wait = calmWindows;
  let sinceStepUp = Infinity;

  const move = (direction) => {
    let next = rung + direction;
    while (next > 0 && next < COLOUR && !usable(RUNGS[next])) next += direction;
    if (next < 0 || !usable(RUNGS[next])) return null;
    rung = next;
    return RUNGS[rung];
  };

  return {
    get rung() {
      return RUNGS[rung];
    },
    get calmWindowsNeeded() {
      return wait;
    },
    window(fps) {
      if (rung === OFF) return null;
      sinceStepUp += 1;
      if (fps < stepDownFps) {
        calm = 0;
        bad += 1;
        if (sinceStepUp <= probationWindows) {
          wait = Math.min(wait * 2, maxCalmWindows);
          sinceStepUp = Infinity;
        }
        if (rung === COLOUR && bad < offWindows) return null;
        bad = 0;
        return move(+1);
      }
      bad = 0;
      calm = fps >= stepUpFps ? calm + 1 : 0;
      if (rung === 0 || calm < wait) return null;
      calm = 0;
      const next = move(-1);
      if (next) sinceStepUp = 0;
      return next;
    },
  };
}
