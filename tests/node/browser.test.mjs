// MQTT over WebSocket from a real browser: Debian's headless Chromium, driven by
// playwright-core (which downloads no browser), runs MQTT.js's browser bundle
// (dist/mqtt.min.js, a classic script) in a page loaded without a web server
// (setContent + addScriptTag). Each test starts its own broker with ws and wss
// listeners on free loopback ports and stops it by its PID; Chromium is shared.
//
//   EDGEMQ_BIN=build/broker/edgemq node --test tests/node/browser.test.mjs
//   EDGEMQ_TEST_BROKER=mosquitto node --test tests/node/browser.test.mjs   (the reference)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { DEADLINE_MS, brokerName, collect, connect, end, makeCertificates, startBroker, within } from './support.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const mqttBundle = createRequire(import.meta.url).resolve('mqtt/dist/mqtt.min')  // exports map: ./dist/* -> ./dist/*.js;

let certs;
let browser;
before(async () => {
  certs = makeCertificates();
  browser = await within(chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  }), 'Chromium to start', 30_000);
});
after(async () => {
  if (browser) await within(browser.close(), 'Chromium to close', 15_000).catch(() => {});
  certs?.remove();
});

// Helpers that live in the page: MQTT.js clients by name, what each received, and
// bounded waits. Everything crossing to Node is plain JSON.
const pageHelpers = `
window.t = {
  clients: {}, got: {},
  deadline(promise, ms, what) {
    return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('page: timed out: ' + what)), ms))]);
  },
  connect(name, url, options) {
    const client = mqtt.connect(url, Object.assign({ reconnectPeriod: 0, connectTimeout: ${DEADLINE_MS} }, options));
    t.clients[name] = client;
    t.got[name] = [];
    client.on('message', (topic, payload, packet) =>
      t.got[name].push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }));
    return t.deadline(new Promise((resolve, reject) => {
      client.once('connect', () => resolve({ protocol: client.stream && client.stream.socket ? client.stream.socket.protocol : null }));
      client.once('error', (e) => reject(new Error('page: ' + e.message)));
      client.once('close', () => reject(new Error('page: closed before CONNACK')));
    }), ${DEADLINE_MS}, 'CONNACK for ' + name);
  },
  subscribe(name, filter, qos) {
    return t.deadline(t.clients[name].subscribeAsync(filter, { qos }).then((granted) => granted.map((g) => g.qos)),
                      ${DEADLINE_MS}, 'SUBACK for ' + name);
  },
  publish(name, topic, payload, options) {
    return t.deadline(t.clients[name].publishAsync(topic, payload, options).then(() => true), ${DEADLINE_MS}, 'publish by ' + name);
  },
  waitFor(name, count) {
    return t.deadline(new Promise((resolve) => {
      const check = () => t.got[name].length >= count ? resolve(t.got[name].slice()) : setTimeout(check, 20);
      check();
    }), ${DEADLINE_MS}, name + ' to receive ' + count + ' messages');
  },
  end(name) {
    return t.deadline(new Promise((resolve) => t.clients[name].end(false, {}, () => resolve(true))), ${DEADLINE_MS}, 'end ' + name);
  },
  // A bare WebSocket with the subprotocol "mqtt": a hand-made CONNECT (3.1.1, clean,
  // client id "raw") must be answered by CONNACK 20 02 00 00 in a binary message.
  rawConnect(url) {
    return t.deadline(new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'mqtt');
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => ws.send(new Uint8Array([0x10, 15, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 3, 0x72, 0x61, 0x77]));
      ws.onmessage = (e) => {
        const binary = e.data instanceof ArrayBuffer;
        const bytes = binary ? Array.from(new Uint8Array(e.data)) : [];
        ws.close(1000);
        resolve({ protocol: ws.protocol, binary, bytes });
      };
      ws.onerror = () => reject(new Error('page: WebSocket error on ' + url));
    }), ${DEADLINE_MS}, 'raw CONNACK');
  },
};`;

async function newPage(context) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.setContent('<!doctype html><html><head><link rel=icon href=data:,><title>edgemq browser test</title></head><body></body></html>');
  await page.addScriptTag({ path: mqttBundle });
  await page.addScriptTag({ content: pageHelpers });
  assert.equal(await page.evaluate(() => typeof mqtt.connect), 'function');
  // Every call into the page is bounded here too.
  return {
    page,
    errors,
    call: (what, fn, arg) => within(page.evaluate(fn, arg), `page: ${what}`, DEADLINE_MS + 2_000),
  };
}

async function withBroker(body) {
  const broker = await startBroker(certs);
  // A wss page must accept the test CA's certificate, which Chromium does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    await body(broker, context);
  } catch (err) {
    err.message += `\n--- ${brokerName} log ---\n${broker.log().slice(-3000)}`;
    throw err;
  } finally {
    await within(context.close(), 'browser context to close').catch(() => {});
    const code = await broker.stop();
    if (brokerName === 'edgemq') assert.equal(code, 0, `edgemq exit code\n${broker.log().slice(-2000)}`);
  }
}

// A 64 KB text payload with a pattern, so a reordered or truncated chunk shows.
const bigPayload = (tag) => {
  let s = `${tag}:`;
  for (let i = 0; s.length < 64 * 1024; ++i) s += `${i.toString(36)},`;
  return s.slice(0, 64 * 1024);
};

for (const scheme of ['ws', 'wss']) {
  test(`a page over ${scheme} and a Node client over TCP: QoS 0 and 1 both ways, a retained message, 64 KB payloads, subprotocol mqtt`, async () => {
    await withBroker(async ({ ports }, context) => {
      const url = `${scheme}://127.0.0.1:${ports[scheme]}/mqtt`;
      const { client: node } = await connect(`mqtt://127.0.0.1:${ports.mqtt}`, { protocolVersion: 5, clientId: 'node-side' });
      await node.publishAsync('web/retained', 'kept for the browser', { qos: 1, retain: true });
      await node.subscribeAsync('web/to-node/#', { qos: 1 });
      const nodeGot = collect(node, 3, 'messages from the browser');

      const { call, errors } = await newPage(context);
      const raw = await call('raw WebSocket CONNECT', (u) => t.rawConnect(u), url);
      assert.equal(raw.protocol, 'mqtt', 'subprotocol of a bare WebSocket');
      assert.equal(raw.binary, true, 'CONNACK in a binary message');
      assert.deepEqual(raw.bytes, [0x20, 2, 0, 0]);

      const connected = await call('connect', (u) => t.connect('b', u, { protocolVersion: 4, clientId: 'browser-side' }), url);
      assert.equal(connected.protocol, 'mqtt', 'subprotocol of MQTT.js\'s WebSocket');
      assert.deepEqual(await call('subscribe', () => t.subscribe('b', 'web/to-browser/#', 1)), [1]);
      assert.deepEqual(await call('subscribe retained', () => t.subscribe('b', 'web/retained', 1)), [1]);
      const [retained] = await call('retained message', () => t.waitFor('b', 1));
      assert.deepEqual(retained, { topic: 'web/retained', payload: 'kept for the browser', qos: 1, retain: true });

      // Node -> browser.
      const big = bigPayload('to-browser');
      await node.publishAsync('web/to-browser/q0', 'zero from node', { qos: 0 });
      await node.publishAsync('web/to-browser/q1', 'one from node', { qos: 1 });
      await node.publishAsync('web/to-browser/big', big, { qos: 1 });
      const got = await call('messages from Node', () => t.waitFor('b', 4));
      const byTopic = Object.fromEntries(got.slice(1).map((m) => [m.topic, m]));
      assert.deepEqual(byTopic['web/to-browser/q0'], { topic: 'web/to-browser/q0', payload: 'zero from node', qos: 0, retain: false });
      assert.deepEqual(byTopic['web/to-browser/q1'], { topic: 'web/to-browser/q1', payload: 'one from node', qos: 1, retain: false });
      assert.equal(byTopic['web/to-browser/big']?.payload.length, big.length);
      assert.ok(byTopic['web/to-browser/big'].payload === big, '64 KB payload intact in the browser');

      // Browser -> Node.
      const bigBack = bigPayload('to-node');
      await call('publish q0', () => t.publish('b', 'web/to-node/q0', 'zero from the browser', { qos: 0 }));
      await call('publish q1', () => t.publish('b', 'web/to-node/q1', 'one from the browser', { qos: 1 }));
      await call('publish big', (p) => t.publish('b', 'web/to-node/big', p, { qos: 1 }), bigBack);
      const fromBrowser = Object.fromEntries((await nodeGot).map((m) => [m.topic, m]));
      assert.equal(fromBrowser['web/to-node/q0']?.payload.toString(), 'zero from the browser');
      assert.equal(fromBrowser['web/to-node/q0'].packet.qos, 0);
      assert.equal(fromBrowser['web/to-node/q1']?.payload.toString(), 'one from the browser');
      assert.equal(fromBrowser['web/to-node/q1'].packet.qos, 1);
      assert.ok(fromBrowser['web/to-node/big']?.payload.toString() === bigBack, '64 KB payload intact in Node');

      await call('end', () => t.end('b'));
      await end(node);
      assert.deepEqual(errors, [], 'no errors in the page');
    });
  });
}

test('two pages, one over ws (MQTT 3.1.1) and one over wss (MQTT 5), talk to each other', async () => {
  await withBroker(async ({ ports }, context) => {
    const a = await newPage(context);
    const b = await newPage(context);
    await a.call('connect a', (u) => t.connect('a', u, { protocolVersion: 4, clientId: 'page-a' }), `ws://127.0.0.1:${ports.ws}/mqtt`);
    await b.call('connect b', (u) => t.connect('b', u, { protocolVersion: 5, clientId: 'page-b' }), `wss://127.0.0.1:${ports.wss}/mqtt`);
    await a.call('subscribe a', () => t.subscribe('a', 'pages/to-a', 1));
    await b.call('subscribe b', () => t.subscribe('b', 'pages/to-b', 1));
    for (let i = 0; i < 10; ++i) {
      await a.call('a publishes', (n) => t.publish('a', 'pages/to-b', `a${n}`, { qos: n % 2 }), i);
      await b.call('b publishes', (n) => t.publish('b', 'pages/to-a', `b${n}`, { qos: 1 }), i);
    }
    const atA = await a.call('a receives', () => t.waitFor('a', 10));
    const atB = await b.call('b receives', () => t.waitFor('b', 10));
    assert.deepEqual(atA.map((m) => m.payload), Array.from({ length: 10 }, (_, i) => `b${i}`));
    // QoS 0 and 1 alternate: order is promised per QoS only [MQTT-4.6.0-6].
    assert.deepEqual(atB.map((m) => m.payload).sort(), Array.from({ length: 10 }, (_, i) => `a${i}`).sort());
    assert.deepEqual(atB.filter((m) => m.qos === 1).map((m) => m.payload), ['a1', 'a3', 'a5', 'a7', 'a9']);
    await a.call('end a', () => t.end('a'));
    await b.call('end b', () => t.end('b'));
    assert.deepEqual([...a.errors, ...b.errors], [], 'no errors in the pages');
  });
});
