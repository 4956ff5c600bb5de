// The signaling WebSocket: one connection to `/ws` carrying JSON messages both ways, with a
// bounded connect time, and the retry delays (exponential backoff with jitter) the call uses
// to reconnect. It knows nothing of rooms or media; call.js decides what the messages mean.

/**
 * The WebSocket address of this server's `/ws`. An access token goes in `join`, not here: a
 * refused URL token fails the upgrade with HTTP 401, which a page cannot tell from an outage.
 */
export function signalingUrl() {
  const url = new URL('ws', window.location.href);
  url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.toString();
}

const CONNECT_TIMEOUT_MS = 10000;

export class Signaling {
  /**
   * `handlers`: `onOpen()`, `onMessage(object)`, `onClose({code, reason, wasOpen})` — onClose
   * runs once, for a failed attempt as for a lost connection, never after `close()`.
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.closedByUs = false;
  }

  open() {
    this.closedByUs = false;
    let wasOpen = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      queueMicrotask(() => this.handlers.onClose({ code: 0, reason: String(error), wasOpen }));
      return;
    }
    this.ws = ws;
    const timer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timer);
      wasOpen = true;
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message.type === 'string') this.handlers.onMessage(message);
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.closedByUs) {
        this.handlers.onClose({ code: event.code, reason: event.reason, wasOpen });
      }
    };
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  /** Sends one message; false if the socket is not open (the message is dropped). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Closes without reporting it through onClose. */
  close(code = 1000, reason = '') {
    this.closedByUs = true;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
  }
}

/** Retry delays: 1 s, 2 s, 4 s … up to `maxMs`, each ±20 % so crowds do not retry in step. */
export class Backoff {
  constructor(baseMs = 1000, maxMs = 15000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.attempt = 0;
  }

  next() {
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  reset() {
    this.attempt = 0;
  }
}
