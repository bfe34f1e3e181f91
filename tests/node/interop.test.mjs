// edgemq driven by MQTT.js (npm "mqtt"), a client written by others, used unchanged.
// Each test starts its own broker on a free loopback port (EDGEMQ_BIN) and stops it.
//
//   EDGEMQ_BIN=build/broker/edgemq node --test tests/node/interop.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

const binary = process.env.EDGEMQ_BIN;
if (!binary) throw new Error('EDGEMQ_BIN must name the edgemq binary');
const DEADLINE_MS = 10_000;

async function startBroker() {
  const dataDir = mkdtempSync(join(tmpdir(), 'edgemq-node-'));
  const proc = spawn(binary, ['-p', '0', '--bind', '127.0.0.1', '--data-dir', dataDir],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${log}`)), DEADLINE_MS);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening mqtt 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`edgemq exited with ${code}:\n${log}`)));
  });
  return {
    port,
    log: () => log,
    async stop() {
      const exited = new Promise((resolve) => proc.on('exit', resolve));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), DEADLINE_MS);
      const code = await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

function connect(port, options = {}) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS, ...options });
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', reject);
  });
}

// Resolves with the first `count` messages, or rejects at the deadline.
function collect(client, count) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} messages`)), DEADLINE_MS);
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), packet });
      if (got.length === count) { clearTimeout(timer); resolve(got); }
    });
  });
}

const end = (client) => new Promise((resolve) => client.end(false, {}, resolve));

for (const protocolVersion of [4, 5]) {
  test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: wildcard subscription receives QoS 0, 1 and 2 in order`, async () => {
    const broker = await startBroker();
    try {
      const { client: sub } = await connect(broker.port, { protocolVersion, clientId: 'js-sub' });
      await sub.subscribeAsync('js/+/data', { qos: 2 });
      const { client: pub } = await connect(broker.port, { protocolVersion, clientId: 'js-pub' });
      const received = collect(sub, 3);
      await pub.publishAsync('js/a/data', 'zero', { qos: 0 });
      await pub.publishAsync('js/b/data', 'one', { qos: 1 });
      await pub.publishAsync('js/c/data', 'two', { qos: 2 });
      const got = await received;
      assert.deepEqual(got.map((m) => [m.topic, m.payload, m.packet.qos]),
                       [['js/a/data', 'zero', 0], ['js/b/data', 'one', 1], ['js/c/data', 'two', 2]]);
      await end(pub);
      await end(sub);
    } finally {
      assert.equal(await broker.stop(), 0);
    }
  });
}

test('[MQTT-3.3.1-9] a retained message reaches a later subscriber with RETAIN set', async () => {
  const broker = await startBroker();
  try {
    const { client: pub } = await connect(broker.port, { protocolVersion: 5 });
    await pub.publishAsync('js/retained', 'kept', { qos: 1, retain: true });
    const { client: sub } = await connect(broker.port, { protocolVersion: 4 });
    const received = collect(sub, 1);
    await sub.subscribeAsync('js/#', { qos: 1 });
    const [m] = await received;
    assert.equal(m.payload, 'kept');
    assert.equal(m.packet.retain, true);
    await end(pub);
    await end(sub);
  } finally {
    await broker.stop();
  }
});

test('[MQTT-3.1.2-8] the Will is published when the connection drops', async () => {
  const broker = await startBroker();
  try {
    const { client: watcher } = await connect(broker.port, { protocolVersion: 5 });
    await watcher.subscribeAsync('js/wills/#', { qos: 1 });
    const { client: doomed } = await connect(broker.port, {
      protocolVersion: 5,
      will: { topic: 'js/wills/doomed', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    const received = collect(watcher, 1);
    doomed.stream.destroy();  // no DISCONNECT
    const [m] = await received;
    assert.equal(m.payload, 'gone');
    await end(watcher);
  } finally {
    await broker.stop();
  }
});

test('[MQTT-4.1.0-1] a persistent session keeps QoS 1 messages while the client is away', async () => {
  const broker = await startBroker();
  try {
    const options = { protocolVersion: 5, clientId: 'js-persistent', clean: false,
                      properties: { sessionExpiryInterval: 300 } };
    const first = await connect(broker.port, options);
    assert.equal(first.connack.sessionPresent, false);
    await first.client.subscribeAsync('js/queued', { qos: 1 });
    await end(first.client);
    const { client: pub } = await connect(broker.port, { protocolVersion: 4 });
    for (let i = 0; i < 5; ++i) await pub.publishAsync('js/queued', `m${i}`, { qos: 1 });
    // MQTT.js delivers queued messages as soon as the CONNACK is processed, so the
    // handler must be in place before connecting again.
    const again = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0, ...options });
    const received = collect(again, 5);
    const connack = await new Promise((resolve) => again.once('connect', resolve));
    assert.equal(connack.sessionPresent, true);
    assert.deepEqual((await received).map((m) => m.payload), ['m0', 'm1', 'm2', 'm3', 'm4']);
    await end(pub);
    await end(again);
  } finally {
    await broker.stop();
  }
});

test('[MQTT-3.3.2-18] v5 properties pass through; the subscription identifier comes back', async () => {
  const broker = await startBroker();
  try {
    const { client: sub } = await connect(broker.port, { protocolVersion: 5 });
    await sub.subscribeAsync('js/props', { qos: 1, properties: { subscriptionIdentifier: 42 } });
    const { client: pub } = await connect(broker.port, { protocolVersion: 5 });
    const received = collect(sub, 1);
    await pub.publishAsync('js/props', '{"t":21.5}', {
      qos: 1,
      properties: {
        contentType: 'application/json',
        responseTopic: 'js/reply',
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { site: 'plant-7', unit: 'C' },
        payloadFormatIndicator: true,
        messageExpiryInterval: 60,
      },
    });
    const [m] = await received;
    const p = m.packet.properties;
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, 'js/reply');
    assert.deepEqual([...p.correlationData], [1, 2, 3]);
    assert.deepEqual({ ...p.userProperties }, { site: 'plant-7', unit: 'C' });
    assert.equal(p.payloadFormatIndicator, true);
    assert.ok(p.messageExpiryInterval > 0 && p.messageExpiryInterval <= 60);
    assert.deepEqual([].concat(p.subscriptionIdentifier), [42]);
    await end(pub);
    await end(sub);
  } finally {
    await broker.stop();
  }
});

test('[MQTT-3.3.2-12] topic aliases both ways with MQTT.js', async () => {
  const broker = await startBroker();
  try {
    const { client: sub } = await connect(broker.port, { protocolVersion: 5, properties: { topicAliasMaximum: 10 } });
    await sub.subscribeAsync('js/alias/#', { qos: 0 });
    const { client: pub, connack } = await connect(broker.port, { protocolVersion: 5, autoUseTopicAlias: true });
    assert.ok(connack.properties.topicAliasMaximum > 0);
    const received = collect(sub, 3);
    for (let i = 0; i < 3; ++i) await pub.publishAsync('js/alias/long/topic/name', `v${i}`, { qos: 1 });
    const got = await received;
    // MQTT.js restores the topic from the alias the broker assigned.
    assert.deepEqual(got.map((m) => [m.topic, m.payload]),
                     [0, 1, 2].map((i) => ['js/alias/long/topic/name', `v${i}`]));
    assert.ok(got.some((m) => m.packet.properties && m.packet.properties.topicAlias > 0));
    await end(pub);
    await end(sub);
  } finally {
    await broker.stop();
  }
});

test('[MQTT-3.1.4-3] session takeover: the old MQTT.js connection gets DISCONNECT 0x8E', async () => {
  const broker = await startBroker();
  try {
    const { client: old } = await connect(broker.port, { protocolVersion: 5, clientId: 'js-twin' });
    const reason = new Promise((resolve) => old.on('disconnect', (packet) => resolve(packet.reasonCode)));
    const { client: twin } = await connect(broker.port, { protocolVersion: 5, clientId: 'js-twin' });
    assert.equal(await reason, 0x8e);
    await end(twin);
    old.end(true);
  } finally {
    await broker.stop();
  }
});
