// Client of TensorBoard's plugin message channel (TensorBoard 2.21, "experimental" API).
//
// TensorBoard loads this tab in an iframe and listens on its window for the string message
// "experimental.bootstrap" carrying a MessagePort; the iframe keeps the other end of the
// MessageChannel. Both ends then exchange JSON strings
//     {"type": ..., "id": n, "payload": ..., "error": null | "...", "isReply": bool}
// where every message that is not a reply is answered with a reply of the same type and id.
// TensorBoard answers `experimental.GetRuns` with its run names, and sends
// `experimental.RunsChanged` (payload: run names) when its run list changes and
// `experimental.DataReloaded` (no payload) after its reload button or auto-reload.
// (TensorBoard's own guest library: tensorboard/components/experimental/plugin_util.)

export const MessageType = Object.freeze({
  BOOTSTRAP: "experimental.bootstrap",
  GET_RUNS: "experimental.GetRuns",
  RUNS_CHANGED: "experimental.RunsChanged",
  DATA_RELOADED: "experimental.DataReloaded",
  GET_URL_DATA: "experimental.GetURLPluginData",
});

export class HostTimeoutError extends Error {
  constructor(type, timeoutMs) {
    super(`TensorBoard did not answer ${type} within ${timeoutMs} ms`);
    this.name = "HostTimeoutError";
  }
}

/** One end of the message channel: send requests, listen to TensorBoard's messages. */
export class HostChannel {
  constructor(port) {
    this.port = port;
    this.nextId = 0;
    this.pending = new Map();
    this.listeners = new Map();
    this.onPortMessage = (event) => this.receive(event.data);
    port.addEventListener("message", this.onPortMessage);
    port.start();
  }

  /** Calls `callback(payload)` for each `type` message; its (awaited) result is the reply. */
  listen(type, callback) {
    this.listeners.set(type, callback);
  }

  /** Sends `type` and resolves with the reply's payload; rejects on an error reply or timeout. */
  request(type, payload = null, timeoutMs = 5000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HostTimeoutError(type, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.post({ type, id, payload, error: null, isReply: false });
    });
  }

  close() {
    this.port.removeEventListener("message", this.onPortMessage);
    this.port.close();
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error("the channel to TensorBoard was closed"));
    }
    this.pending.clear();
  }

  post(message) {
    this.port.postMessage(JSON.stringify(message));
  }

  async receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message.type !== "string") return;
    const { type, id, payload, error, isReply } = message;
    if (isReply) {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      clearTimeout(waiting.timer);
      if (error) waiting.reject(new Error(String(error)));
      else waiting.resolve(payload);
      return;
    }
    let replyPayload = null;
    let replyError = null;
    const listener = this.listeners.get(type);
    if (listener) {
      try {
        replyPayload = (await listener(payload)) ?? null;
      } catch (failure) {
        replyError = String(failure?.message ?? failure);
      }
    }
    this.post({ type, id, payload: replyPayload, error: replyError, isReply: true });
  }
}

/**
 * Opens the channel to the TensorBoard page embedding `win`; null when `win` is not in a frame
 * (the tab opened on its own), where the tab works without TensorBoard's run list.
 */
export function connectToHost(win = window) {
  if (!win.parent || win.parent === win) return null;
  const channel = new MessageChannel();
  const host = new HostChannel(channel.port1);
  win.parent.postMessage(MessageType.BOOTSTRAP, win.location.origin, [channel.port2]);
  return host;
}
