// Shared helpers for every page: strings, the JSON API, formatting, announcements.
// No framework and no build step; every module is served by the app itself.

const TIME_ZONE = "Europe/Berlin";

function readJson(id) {
  const node = document.getElementById(id);
  if (!node) return {};
  try {
    return JSON.parse(node.textContent || "{}");
  } catch {
    return {};
  }
}

export const locale = document.documentElement.lang || "de";
const intlLocale = locale === "en" ? "en-GB" : "de-DE";
const STRINGS = {
  ...readJson("bb-common-strings"),
  ...readJson("bb-device-strings"),
  ...readJson("bb-media-strings"),
  ...readJson("bb-strings"),
};

/** A translated string with {placeholders} filled in. */
export function t(key, vars = {}) {
  const text = STRINGS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export class ApiError extends Error {
  constructor(status, detail, data) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.data = data || {};
  }
}

/** Call the same-origin JSON API. `token` becomes a bearer token, `csrf` the staff header. */
export async function api(path, { method = "GET", body, token, csrf } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, t("error_network"));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && typeof data.detail === "string" ? data.detail : "", data);
  }
  return data;
}

/** Build an element without innerHTML: text from the API can never become markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function slot(root, name) {
  return root.querySelector(`[data-slot="${name}"]`);
}

export function show(node, visible = true) {
  if (node) node.hidden = !visible;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Move focus to a heading of a new state so keyboard and screen reader users follow. */
export function focusHeading(node) {
  if (!node) return;
  if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
  node.focus();
}

export function formatTime(date) {
  return new Intl.DateTimeFormat(intlLocale, { hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE }).format(date);
}

function dayKey(date) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE }).format(date);
}

/** "today at 08:30", "tomorrow at …", "Tuesday, 2 December at …" in the office's time zone. */
export function formatWhen(iso) {
  if (!iso) return t("no_opening_known");
  const date = new Date(iso);
  const time = formatTime(date);
  const now = new Date();
  if (dayKey(date) === dayKey(now)) return t("today_at", { time });
  if (dayKey(date) === dayKey(new Date(now.getTime() + 86400000))) return t("tomorrow_at", { time });
  const day = new Intl.DateTimeFormat(intlLocale, {
    weekday: "long",
    day: "numeric",
    month: "long",
    timeZone: TIME_ZONE,
  }).format(date);
  return t("on_day_at", { day, time });
}

export function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const minutes = Math.round(seconds / 60);
  if (minutes < 1) return t("wait_under_minute");
  if (minutes === 1) return t("wait_one_minute");
  return t("wait_minutes", { n: minutes });
}

/**
 * The expected wait as a range with its basis in words ("3–9 minutes, going by recent
 * conversations", "6–18 minutes, estimated"), or "right away" when a staff member is free.
 * `estimate` is the API's expected_wait.
 */
export function formatExpectedWait(estimate) {
  if (!estimate) return "–";
  if (estimate.staff_free) return t("wait_right_away");
  if (estimate.high_seconds < 60) return t("wait_under_minute");
  const low = Math.floor(estimate.low_seconds / 60);
  const high = Math.ceil(estimate.high_seconds / 60);
  const recent = estimate.basis === "recent_consultations";
  if (low === high) return t(recent ? "wait_about_recent" : "wait_about_estimated", { n: high });
  return t(recent ? "wait_range_recent" : "wait_range_estimated", { low, high });
}

/** What the expected wait rests on, in words: the durations, and who is free now. */
export function waitBasis(estimate) {
  if (!estimate || estimate.staff_free) return "";
  const durations =
    estimate.basis === "recent_consultations"
      ? t("wait_basis_recent", { n: estimate.consultations_sampled })
      : t("wait_basis_default");
  const staff = estimate.staff_on_duty;
  const desks = staff === 0 ? t("wait_staff_none") : staff === 1 ? t("wait_staff_one") : t("wait_staff_many", { n: staff });
  return `${durations} ${desks}`;
}

/** Monday (0) to Sunday (6) in the page's language. */
export function weekdayName(weekday) {
  const monday = Date.UTC(2024, 0, 1); // a Monday
  return new Intl.DateTimeFormat(intlLocale, { weekday: "long", timeZone: "UTC" }).format(
    new Date(monday + weekday * 86400000),
  );
}

export function languageName(code) {
  try {
    const names = new Intl.DisplayNames([intlLocale], { type: "language" });
    const name = names.of(code);
    return name ? name.charAt(0).toUpperCase() + name.slice(1) : code;
  } catch {
    return code;
  }
}

/** Topic label of a department's topic id in the page language. */
export function topicLabel(department, topicId) {
  if (!topicId || !department) return topicId || "";
  const topic = (department.topics || []).find((item) => item.id === topicId);
  return topic ? topic[locale] || topic.de : topicId;
}

export function departmentName(department) {
  if (!department) return "";
  return department[`name_${locale}`] || department.name || department.name_de;
}

export const store = {
  get(key) {
    try {
      return JSON.parse(window.sessionStorage.getItem(key) || "null");
    } catch {
      return null;
    }
  },
  set(key, value) {
    window.sessionStorage.setItem(key, JSON.stringify(value));
  },
  remove(key) {
    window.sessionStorage.removeItem(key);
  },
};

/**
 * An EventSource that never gives up: the browser retries dropped connections by
 * itself; when it stops (e.g. the server answered with an error while restarting),
 * a new one is opened with a growing pause. `onState` hears "open" and "lost".
 */
export class LiveStream {
  constructor(url, handlers, onState) {
    this.url = url;
    this.handlers = handlers;
    this.onState = onState || (() => {});
    this.delay = 1000;
    this.closed = false;
    this.lost = false;
    this.source = null;
    this.timer = null;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const source = new EventSource(this.url);
    this.source = source;
    for (const [name, handler] of Object.entries(this.handlers)) {
      source.addEventListener(name, (event) => {
        let data = {};
        try {
          data = JSON.parse(event.data);
        } catch {
          data = {};
        }
        this.markOpen();
        handler(data);
      });
    }
    source.addEventListener("open", () => this.markOpen());
    source.addEventListener("error", () => {
      if (this.closed) return;
      if (!this.lost) {
        this.lost = true;
        this.onState("lost");
      }
      if (source.readyState === EventSource.CLOSED) {
        window.clearTimeout(this.timer);
        this.timer = window.setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 15000);
      }
    });
  }

  markOpen() {
    this.delay = 1000;
    if (this.lost) {
      this.lost = false;
      this.onState("open");
    }
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.timer);
    if (this.source) this.source.close();
  }
}
