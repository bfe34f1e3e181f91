// Shared by the WebSocket/TLS and browser tests: test certificates made with the openssl
// CLI, a broker started per test with every listener (mqtt, ws, wss, mqtts) on free
// loopback ports and stopped by its PID, and a few bounded waits.
//
// The broker is edgemq (EDGEMQ_BIN). EDGEMQ_TEST_BROKER=mosquitto runs the same tests
// against Debian's Mosquitto instead (MOSQUITTO_BIN, default /usr/sbin/mosquitto), to
// check the tests themselves against a reference broker.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

export const DEADLINE_MS = 10_000;
export const useMosquitto = process.env.EDGEMQ_TEST_BROKER === 'mosquitto';
const binary = process.env.EDGEMQ_BIN;
const mosquittoBinary = process.env.MOSQUITTO_BIN || '/usr/sbin/mosquitto';
if (!useMosquitto && !binary) throw new Error('EDGEMQ_BIN must name the edgemq binary (or EDGEMQ_TEST_BROKER=mosquitto)');

export const brokerName = useMosquitto ? 'mosquitto' : 'edgemq';

// Rejects with `what` after `ms` unless `promise` settles first.
// `what` may be a function, called at the deadline (to say how far it got).
export function within(promise, what, ms = DEADLINE_MS) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// ---- certificates -----------------------------------------------------------------

function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: DEADLINE_MS });
}

function makeCa(dir, name) {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=edgemq test ${name}`,
          '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function makeLeaf(dir, ca, name, cn, extensions) {
  writeFileSync(join(dir, `${name}.ext`), extensions.join('\n') + '\n');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`,
          '-set_serial', String(Date.now() + Math.floor(Math.random() * 1e6)), '-days', '2',
          '-out', `${name}.pem`, '-extfile', `${name}.ext`);
}

// A CA, a server certificate for localhost and 127.0.0.1 signed by it, a client
// certificate signed by it, and a second CA that signed nothing of the broker's.
// Returns the file names and their contents; remove() deletes them.
export function makeCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-certs-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'ca', 'server', 'localhost',
           ['basicConstraints=CA:FALSE', 'subjectAltName=DNS:localhost,IP:127.0.0.1', 'extendedKeyUsage=serverAuth']);
  makeLeaf(dir, 'ca', 'client', 'edgemq-test-client',
           ['basicConstraints=CA:FALSE', 'extendedKeyUsage=clientAuth']);
  const file = (n) => join(dir, n);
  const read = (n) => readFileSync(file(n));
  return {
    dir,
    caFile: file('ca.pem'), certFile: file('server.pem'), keyFile: file('server.key'),
    clientCertFile: file('client.pem'), clientKeyFile: file('client.key'),
    ca: read('ca.pem'), otherCa: read('other-ca.pem'), clientCert: read('client.pem'), clientKey: read('client.key'),
    remove() { rmSync(dir, { recursive: true, force: true }); },
  };
}

// ---- brokers ----------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// Starts a broker with a plain MQTT listener plus the ws, wss and mqtts listeners, the
// WebSocket ones serving MQTT at /mqtt. Options: requireCert (mqtts/wss ask for a
// client certificate signed by the CA). Returns { ports: {mqtt, ws, wss, mqtts},
// log(), stop() } where stop() resolves with the exit code.
export async function startBroker(certs, { requireCert = false } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), `${brokerName}-node-`));
  let proc;
  let fixedPorts = null;
  if (useMosquitto) {
    fixedPorts = { mqtt: await freePort(), ws: await freePort(), wss: await freePort(), mqtts: await freePort() };
    const tls = [`cafile ${certs.caFile}`, `certfile ${certs.certFile}`, `keyfile ${certs.keyFile}`,
                 ...(requireCert ? ['require_certificate true'] : [])];
    const conf = [
      'per_listener_settings false', 'allow_anonymous true', 'user root', 'persistence false',
      'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice',
      `listener ${fixedPorts.mqtt} 127.0.0.1`,
      `listener ${fixedPorts.ws} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4',
      `listener ${fixedPorts.wss} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4', ...tls,
      `listener ${fixedPorts.mqtts} 127.0.0.1`, ...tls,
    ];
    writeFileSync(join(dataDir, 'mosquitto.conf'), conf.join('\n') + '\n');
    proc = spawn(mosquittoBinary, ['-c', join(dataDir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    const args = ['-p', '0', '--bind', '127.0.0.1', '--data-dir', dataDir,
                  '--listen', 'ws://127.0.0.1:0/mqtt', '--listen', 'wss://127.0.0.1:0/mqtt',
                  '--listen', 'mqtts://127.0.0.1:0', '--cert', certs.certFile, '--key', certs.keyFile];
    if (requireCert) args.push('--cafile', certs.caFile, '--require-cert');
    proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${brokerName} did not report its listeners:\n${log}`)), DEADLINE_MS);
    const check = () => {
      const found = {};
      for (const m of log.matchAll(/listening (mqtts|mqtt|wss|ws) 127\.0\.0\.1:(\d+)/g)) found[m[1]] = Number(m[2]);
      if (found.mqtt && found.ws && found.wss && found.mqtts) { clearTimeout(timer); resolve(found); }
    };
    proc.stderr.on('data', (chunk) => { log += chunk; if (!fixedPorts) check(); });
    // Mosquitto does not log its ports: ready once every one of them accepts.
    if (fixedPorts) {
      const poll = async () => {
        const up = await Promise.all(Object.values(fixedPorts).map(accepts));
        if (up.every(Boolean)) { clearTimeout(timer); resolve(fixedPorts); }
        else if (proc.exitCode === null) setTimeout(poll, 50);
      };
      poll();
    }
    exited.then((code) => { clearTimeout(timer); reject(new Error(`${brokerName} exited with ${code}:\n${log}`)); });
  });
  let ports;
  try {
    ports = await ready;
  } catch (err) {
    // Leave nothing behind: no process, no data dir.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await within(exited, `${brokerName} to exit`).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    ports,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), DEADLINE_MS);
      const code = await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

// ---- MQTT.js helpers --------------------------------------------------------------

// Connects MQTT.js to `url`; resolves with { client, connack } or rejects with the
// first error (a TLS refusal, say) or at the deadline.
export function connect(url, options = {}) {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS, ...options });
  return within(new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', (err) => { client.end(true); reject(err); });
    client.once('close', () => reject(new Error(`connection to ${url} closed before CONNACK`)));
  }), `CONNACK from ${url}`).catch((err) => { client.end(true); throw err; });
}

// Resolves with the first `count` messages { topic, payload (Buffer), packet }.
export function collect(client, count, what = 'messages') {
  const got = [];
  return within(new Promise((resolve) => {
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, payload, packet });
      if (got.length === count) resolve(got);
    });
  }), () => `${what}: got ${got.length} of ${count}`);
}

export const end = (client) => within(new Promise((resolve) => client.end(false, {}, resolve)), 'client end');
