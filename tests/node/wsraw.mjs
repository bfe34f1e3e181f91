// A hand-made WebSocket client (RFC 6455) over a raw TCP or TLS socket, and hand-encoded
// MQTT 3.1.1 packets, so tests choose exactly which frames reach the broker: several
// MQTT packets in one frame, one packet split over frames or over a fragmented message,
// control frames, text frames, unmasked frames. Every wait is bounded.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { DEADLINE_MS, within } from './support.mjs';

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

// ---- MQTT 3.1.1 packets -----------------------------------------------------------

function remainingLength(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
const str = (s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]); };
const u16 = (n) => Buffer.from([n >> 8, n & 0xff]);
const packet = (first, body) => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);

export const mqttPacket = {
  connect: (clientId, keepAlive = 30) =>
    packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02]), u16(keepAlive), str(clientId)])),
  subscribe: (id, filter, qos) => packet(0x82, Buffer.concat([u16(id), str(filter), Buffer.from([qos])])),
  publish: (topic, payload, qos = 0, id = 0) =>
    packet(0x30 | (qos << 1), Buffer.concat([str(topic), qos > 0 ? u16(id) : Buffer.alloc(0), Buffer.from(payload)])),
  pingreq: () => Buffer.from([0xc0, 0x00]),
  disconnect: () => Buffer.from([0xe0, 0x00]),
};
export const PACKET = { connack: 2, publish: 3, puback: 4, suback: 9, pingresp: 13 };

// Splits a byte stream into MQTT packets: { type, flags, body, bytes }.
class MqttReader {
  constructor() { this.buf = Buffer.alloc(0); }
  push(data) {
    this.buf = Buffer.concat([this.buf, data]);
    const out = [];
    for (;;) {
      if (this.buf.length < 2) break;
      let len = 0, mul = 1, i = 1;
      for (;; ++i) {
        if (i >= this.buf.length) return out;
        len += (this.buf[i] & 0x7f) * mul;
        mul *= 128;
        if (!(this.buf[i] & 0x80)) break;
      }
      const total = i + 1 + len;
      if (this.buf.length < total) break;
      const bytes = this.buf.subarray(0, total);
      out.push({ type: bytes[0] >> 4, flags: bytes[0] & 0x0f, body: bytes.subarray(i + 1), bytes });
      this.buf = this.buf.subarray(total);
    }
    return out;
  }
}

// The topic and payload of a PUBLISH body (3.1.1).
export function parsePublish(p) {
  const tlen = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + tlen).toString();
  const qos = (p.flags >> 1) & 3;
  const start = 2 + tlen + (qos > 0 ? 2 : 0);
  return { topic, qos, retain: (p.flags & 1) === 1, id: qos > 0 ? p.body.readUInt16BE(2 + tlen) : 0, payload: p.body.subarray(start) };
}

// ---- WebSocket frames ---------------------------------------------------------------

export function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true } = {}) {
  payload = Buffer.from(payload);
  const head = [((fin ? 0x80 : 0) | opcode)];
  const m = mask ? 0x80 : 0;
  if (payload.length < 126) head.push(m | payload.length);
  else if (payload.length < 65536) head.push(m | 126, payload.length >> 8, payload.length & 0xff);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((payload.length >>> 24) & 0xff, (payload.length >>> 16) & 0xff, (payload.length >>> 8) & 0xff, payload.length & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; ++i) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// Opens a WebSocket to 127.0.0.1:port (over TLS when `tls` holds tls.connect options),
// requesting `protocols` as Sec-WebSocket-Protocol. Resolves once the 101 answer came,
// with an object to send frames and to await frames, MQTT packets and the close.
export async function openWebSocket(port, { path = '/mqtt', protocols = ['mqtt'], tls = null } = {}) {
  const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }) : netConnect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const key = randomBytes(16).toString('base64');
  const ws = {
    socket,
    frames: [],          // server frames not yet taken by nextFrame()
    packets: [],         // MQTT packets from binary data not yet taken by nextPacket()
    closeFrames: [],     // every close frame the server sent
    ended: false,
    response: null,      // { status, headers } of the handshake
    waiters: [],
  };
  const wake = () => { const w = ws.waiters; ws.waiters = []; for (const f of w) f(); };
  const closed = new Promise((resolve) => socket.once('close', () => { ws.ended = true; wake(); resolve(); }));
  socket.on('error', () => {});  // a reset shows as 'close'

  const reader = new MqttReader();
  let buf = Buffer.alloc(0);
  let handshake = null;
  const handshook = new Promise((resolve, reject) => { handshake = { resolve, reject }; });
  socket.on('data', (data) => {
    buf = Buffer.concat([buf, data]);
    if (!ws.response) {
      const endOfHead = buf.indexOf('\r\n\r\n');
      if (endOfHead < 0) return;
      const lines = buf.subarray(0, endOfHead).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 0);
      const headers = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      ws.response = { status, headers };
      buf = buf.subarray(endOfHead + 4);
      if (status !== 101) { handshake.reject(new Error(`handshake answered ${lines[0]}`)); return; }
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (headers['sec-websocket-accept'] !== accept) { handshake.reject(new Error('wrong Sec-WebSocket-Accept')); return; }
      handshake.resolve();
    }
    // Server frames are never masked [RFC 6455 5.1]; a masked one is recorded as such.
    for (;;) {
      if (buf.length < 2) break;
      const fin = (buf[0] & 0x80) !== 0, opcode = buf[0] & 0x0f, masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (masked) off += 4;
      if (buf.length < off + len) break;
      let payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) { const k = buf.subarray(off - 4, off); payload = payload.map((b, i) => b ^ k[i & 3]); }
      buf = buf.subarray(off + len);
      const frame = { fin, opcode, masked, payload };
      ws.frames.push(frame);
      if (opcode === OP.close) ws.closeFrames.push(frame);
      if (opcode === OP.binary || opcode === OP.continuation) ws.packets.push(...reader.push(payload));
    }
    wake();
  });
  const waitFor = (take, what, ms) => within(new Promise((resolve, reject) => {
    const attempt = () => {
      const v = take();
      if (v !== undefined) resolve(v);
      else if (ws.ended) reject(new Error(`connection closed while waiting for ${what}`));
      else ws.waiters.push(attempt);
    };
    attempt();
  }), what, ms);

  Object.assign(ws, {
    closed,
    send(opcode, payload, opts) { socket.write(encodeFrame(opcode, payload, opts)); },
    sendRaw(bytes) { socket.write(bytes); },
    // Each MQTT packet sent as its own binary frame.
    sendPackets(...pkts) { for (const p of pkts) socket.write(encodeFrame(OP.binary, p)); },
    nextFrame(what = 'a frame', ms = DEADLINE_MS) { return waitFor(() => ws.frames.shift(), what, ms); },
    nextPacket(what = 'an MQTT packet', ms = DEADLINE_MS) { return waitFor(() => ws.packets.shift(), what, ms); },
    // Resolves with the first `count` MQTT packets.
    async packetsN(count, what = `${count} MQTT packets`) {
      const got = [];
      while (got.length < count) got.push(await ws.nextPacket(`${what} (have ${got.length})`));
      return got;
    },
    // Resolves with the first frame of the given opcode, skipping others.
    nextFrameOf(opcode, what, ms = DEADLINE_MS) {
      return waitFor(() => { const i = ws.frames.findIndex((f) => f.opcode === opcode); return i < 0 ? undefined : ws.frames.splice(i, 1)[0]; }, what, ms);
    },
    // Resolves when the TCP connection is gone, or rejects at the deadline.
    waitClosed(what = 'the broker to close the connection', ms = DEADLINE_MS) { return within(closed, what, ms); },
    destroy() { socket.destroy(); },
  });

  const request = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
                   `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'];
  if (protocols.length) request.push(`Sec-WebSocket-Protocol: ${protocols.join(', ')}`);
  socket.write(request.join('\r\n') + '\r\n\r\n');
  try {
    await within(Promise.race([handshook, closed.then(() => { throw new Error('closed during the handshake'); })]),
                 'the WebSocket handshake');
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return ws;
}

// Sends an HTTP/1.1 GET (plus `headers`, "Name: value" lines) and resolves with { status, head, body } once the answer is
// complete (Content-Length, or the connection closed), or rejects at the deadline.
export function httpGet(port, path, { tls = null, ms = DEADLINE_MS, headers = [] } = {}) {
  const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }) : netConnect(port, '127.0.0.1');
  let data = Buffer.alloc(0);
  const answer = new Promise((resolve, reject) => {
    const finish = () => {
      const endOfHead = data.indexOf('\r\n\r\n');
      if (endOfHead < 0) return false;
      const head = data.subarray(0, endOfHead).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (!m) { reject(new Error(`not an HTTP answer: ${JSON.stringify(head.slice(0, 80))}`)); return true; }
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const body = data.subarray(endOfHead + 4);
      if (cl && body.length < Number(cl[1])) return false;
      resolve({ status: Number(m[1]), head, body: body.toString() });
      return true;
    };
    socket.on('data', (d) => { data = Buffer.concat([data, d]); if (finish()) socket.destroy(); });
    socket.on('close', () => { if (!finish()) reject(new Error(`closed without a complete HTTP answer (${data.length} bytes)`)); });
    socket.on('error', () => {});
  });
  socket.write([`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Accept: */*', ...headers].join('\r\n') + '\r\n\r\n');
  return within(answer, `an HTTP answer to GET ${path}`, ms).finally(() => socket.destroy());
}
