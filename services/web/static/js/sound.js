// Tones made with WebAudio: nothing is downloaded. Browsers only play sound after the
// person has interacted with the page, so every click or key press unlocks the context.

let context = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!context) context = new Context();
  return context;
}

export function unlockAudioOnInteraction() {
  const unlock = () => {
    const ctx = audioContext();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  };
  for (const name of ["pointerdown", "keydown", "touchstart"]) {
    window.addEventListener(name, unlock, { passive: true });
  }
}

/** A friendly two- or three-note chime. Returns true if it could be played. */
export function chime(notes = [660, 880, 1320]) {
  const ctx = audioContext();
  if (!ctx) return false;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  const start = ctx.currentTime + 0.05;
  notes.forEach((frequency, index) => {
    const oscillator = ctx.createOscillator();
    const gain = ctx.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    const at = start + index * 0.22;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.5);
    oscillator.connect(gain).connect(ctx.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.55);
  });
  return ctx.state === "running";
}
