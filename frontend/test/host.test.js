import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { HostChannel, HostTimeoutError, MessageType, connectToHost } from "../../tensorboard_plugin_weightgates/static/host.js";

/** TensorBoard's end of the channel, speaking its JSON protocol (plugin_util/message.ts). */
class FakeTensorBoard {
  constructor(port, runs) {
    this.port = port;
    this.runs = runs;
    this.replies = [];
    this.nextId = 100;
    port.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    port.start();
  }

  receive(message) {
    if (message.isReply) {
      this.replies.push(message);
      return;
    }
    const reply = { type: message.type, id: message.id, payload: null, error: null, isReply: true };
    if (message.type === MessageType.GET_RUNS) reply.payload = this.runs;
    else if (message.type === "broken") reply.error = "no such thing";
    else return;
    this.port.postMessage(JSON.stringify(reply));
  }

  send(type, payload) {
    this.port.postMessage(JSON.stringify({ type, id: this.nextId++, payload, error: null, isReply: false }));
  }
}

const until = async (condition) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), "condition not met in time");
};

describe("HostChannel", () => {
  let channel;
  afterEach(() => {
    channel.port1.close();
    channel.port2.close();
  });

  it("asks TensorBoard for its runs", async () => {
    channel = new MessageChannel();
    new FakeTensorBoard(channel.port2, ["b/train", "a/train"]);
    const host = new HostChannel(channel.port1);
    assert.deepEqual(await host.request(MessageType.GET_RUNS), ["b/train", "a/train"]);
  });

  it("rejects on an error reply and on silence", async () => {
    channel = new MessageChannel();
    new FakeTensorBoard(channel.port2, []);
    const host = new HostChannel(channel.port1);
    await assert.rejects(host.request("broken"), /no such thing/);
    await assert.rejects(host.request("unanswered", null, 20), HostTimeoutError);
  });

  it("hands TensorBoard's messages to listeners and replies to each with its id", async () => {
    channel = new MessageChannel();
    const tensorboard = new FakeTensorBoard(channel.port2, []);
    const host = new HostChannel(channel.port1);
    const seen = [];
    host.listen(MessageType.RUNS_CHANGED, (runs) => seen.push(runs));
    host.listen(MessageType.DATA_RELOADED, () => {
      seen.push("reloaded");
      throw new Error("reload failed");
    });
    tensorboard.send(MessageType.RUNS_CHANGED, ["x/train"]);
    tensorboard.send(MessageType.DATA_RELOADED);
    tensorboard.send("experimental.Unknown", 1);
    await until(() => tensorboard.replies.length === 3);
    assert.deepEqual(seen, [["x/train"], "reloaded"]);
    assert.deepEqual(
      tensorboard.replies.map((r) => [r.type, r.id, r.isReply, r.error]),
      [
        [MessageType.RUNS_CHANGED, 100, true, null],
        [MessageType.DATA_RELOADED, 101, true, "reload failed"],
        ["experimental.Unknown", 102, true, null],
      ],
    );
  });

  it("ignores messages that are not the protocol's JSON", async () => {
    channel = new MessageChannel();
    const host = new HostChannel(channel.port1);
    const seen = [];
    host.listen("x", (payload) => seen.push(payload));
    channel.port2.postMessage("not json");
    channel.port2.postMessage(JSON.stringify({ type: "x", id: 1, payload: 7, isReply: false }));
    await until(() => seen.length === 1);
    assert.deepEqual(seen, [7]);
  });
});

describe("connectToHost", () => {
  it("posts the bootstrap message with a port to the parent frame, at its own origin", () => {
    const posted = [];
    const win = {
      location: { origin: "http://127.0.0.1:6006" },
      parent: { postMessage: (...args) => posted.push(args) },
    };
    const host = connectToHost(win);
    assert.equal(posted.length, 1);
    const [message, origin, transfer] = posted[0];
    assert.equal(message, "experimental.bootstrap");
    assert.equal(origin, "http://127.0.0.1:6006");
    assert.ok(transfer[0] instanceof MessagePort);
    host.close();
    transfer[0].close();
  });

  it("gives null outside a frame", () => {
    const win = {};
    win.parent = win;
    assert.equal(connectToHost(win), null);
  });
});
