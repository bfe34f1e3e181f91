#!/usr/bin/env python3
"""What a connection costs, per transport, on edgemq and on Mosquitto in the same run:
how fast one client can open them, and the memory each idle one holds.

For each broker and transport (mqtt, mqtts, mqtts-resumed, ws, wss) a fresh broker is
started with all four listeners on free loopback ports (the same test certificate on
both brokers). One client then opens N connections one after the other: TCP connect,
TLS handshake, WebSocket upgrade as the transport needs, MQTT 3.1.1 CONNECT (keep alive
600 s) and one SUBSCRIBE to its own topic `idle/<n>/cmd`, waiting for the SUBACK before
the next. `mqtts-resumed` resumes the first connection's TLS session (ticket or session
id) in every later one, as a device reconnecting does. Reported:

- connects/s: N / the time to open them all. One sequential Python client, so this is a
  round-trip and handshake figure, not the broker's ceiling; the client's own TLS work
  is in it on both sides alike. Mosquitto runs with set_tcp_nodelay true.
- bytes per idle subscribed connection: (broker RSS with all N open, after a second of
  quiet - RSS before) / N.

    bench/connections.py --edgemq build-bench/broker/edgemq --connections 2000

Brokers are stopped by the PID this script started; the temporary directory (certificates,
configs, logs) goes away at the end.
"""
import argparse
import base64
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

TRANSPORTS = ("mqtt", "mqtts", "mqtts-resumed", "ws", "wss")
LISTENER_OF = {"mqtt": "mqtt", "mqtts": "mqtts", "mqtts-resumed": "mqtts", "ws": "ws", "wss": "wss"}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- MQTT 3.1.1 packets ------------------------------------------------------------------

def encode_str(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def varint(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_and_subscribe(client_id, topic):
    connect = packet(0x10, encode_str("MQTT") + bytes([4, 0x02]) + (600).to_bytes(2, "big") + encode_str(client_id))
    subscribe = packet(0x82, (1).to_bytes(2, "big") + encode_str(topic) + bytes([1]))
    return connect + subscribe


CONNACK_AND_SUBACK = 4 + 5  # bytes of MQTT the broker answers with


# ---- one connection ------------------------------------------------------------------------

def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("connection closed by the broker")
        data += chunk
    return data


def ws_frame(payload):
    """A masked binary frame (clients must mask, RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read_payload(sock, n):
    """Reads server frames until n bytes of binary payload have come."""
    got = 0
    while got < n:
        b0, b1 = recv_exactly(sock, 2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(recv_exactly(sock, 2), "big")
        elif length == 127:
            length = int.from_bytes(recv_exactly(sock, 8), "big")
        if b1 & 0x80:
            raise RuntimeError("masked frame from the server")
        payload = recv_exactly(sock, length)
        if b0 & 0x0F == 0x8:
            raise RuntimeError("the broker closed the WebSocket")
        if b0 & 0x0F in (0x0, 0x2):
            got += len(payload)


def ws_upgrade(sock, port):
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
                 .encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            raise RuntimeError("connection closed during the WebSocket upgrade")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("WebSocket upgrade refused: " + response.split(b"\r\n")[0].decode(errors="replace"))


class opener:
    """Opens subscribed MQTT connections over one transport."""

    def __init__(self, transport, port, ca_file):
        self.transport = transport
        self.port = port
        self.tls = None
        self.session = None
        self.resumed = 0
        if transport in ("mqtts", "mqtts-resumed", "wss"):
            self.tls = ssl.create_default_context(cafile=ca_file)
            self.tls.minimum_version = ssl.TLSVersion.TLSv1_2

    def open(self, n):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            session = self.session if self.transport == "mqtts-resumed" else None
            sock = self.tls.wrap_socket(sock, server_hostname="localhost", session=session)
            if self.transport == "mqtts-resumed" and sock.session_reused:
                self.resumed += 1
        payload = connect_and_subscribe(f"idle-{n}", f"idle/{n}/cmd")
        if self.transport in ("ws", "wss"):
            ws_upgrade(sock, self.port)
            sock.sendall(ws_frame(payload))
            ws_read_payload(sock, CONNACK_AND_SUBACK)
        else:
            sock.sendall(payload)
            recv_exactly(sock, CONNACK_AND_SUBACK)
        if self.transport == "mqtts-resumed" and self.session is None:
            # Taken after an answer from the broker: TLS 1.3 tickets come after the handshake.
            self.session = sock.session
        return sock


# ---- brokers -------------------------------------------------------------------------------

def make_certificates(tmp):
    def run(*args):
        subprocess.run(args, cwd=tmp, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=edgemq bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(tmp, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
        str(int.from_bytes(os.urandom(6), "big")), "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
    return {k: os.path.join(tmp, f) for k, f in (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


def wait_ports(proc, ports, log):
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the broker exited: {open(log).read()[-500:]}")
        try:
            for p in ports:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the broker did not open its listeners within 10 s")


def start_edgemq(binary, tmp, certs):
    log = os.path.join(tmp, "edgemq.log")
    data = os.path.join(tmp, "data")
    os.makedirs(data, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([binary, "-p", "0", "--bind", "127.0.0.1", "--data-dir", data,
                                 "--listen", "mqtts://127.0.0.1:0", "--listen", "ws://127.0.0.1:0/mqtt",
                                 "--listen", "wss://127.0.0.1:0/mqtt", "--cert", certs["cert"], "--key", certs["key"]],
                                stdout=out, stderr=subprocess.STDOUT)
    ports = {}
    deadline = time.time() + 10
    while len(ports) < 4 and time.time() < deadline:
        if proc.poll() is not None:
            break
        for m in re.finditer(r"listening (mqtts|mqtt|wss|ws) 127\.0\.0\.1:(\d+)", open(log).read()):
            ports[m.group(1)] = int(m.group(2))
        time.sleep(0.05)
    if len(ports) < 4:
        proc.kill()
        raise RuntimeError(f"edgemq did not log its four listeners: {open(log).read()[-500:]}")
    wait_ports(proc, ports.values(), log)
    return proc, ports


def start_mosquitto(tmp, certs):
    ports = {t: free_port() for t in ("mqtt", "mqtts", "ws", "wss")}
    tls = f"cafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        # set_tcp_nodelay: as bench/compare.sh; Mosquitto's default (Nagle on) holds its
        # SUBACK behind the CONNACK for a delayed ACK, 40 ms per connection.
        f.write("allow_anonymous true\npersistence false\nuser root\nmax_connections -1\nset_tcp_nodelay true\n"
                f"listener {ports['mqtt']} 127.0.0.1\n"
                f"listener {ports['mqtts']} 127.0.0.1\n{tls}"
                f"listener {ports['ws']} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n"
                f"listener {ports['wss']} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n{tls}")
    log = os.path.join(tmp, "mosquitto.log")
    with open(log, "w") as out:
        proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdout=out, stderr=subprocess.STDOUT)
    wait_ports(proc, ports.values(), log)
    return proc, ports


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- measuring -----------------------------------------------------------------------------

def measure(broker, transport, args, certs, tmp):
    run_dir = tempfile.mkdtemp(dir=tmp, prefix=f"{broker}-{transport}-")
    proc, ports = (start_edgemq(args.edgemq, run_dir, certs) if broker == "edgemq"
                   else start_mosquitto(run_dir, certs))
    socks = []
    try:
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        o = opener(transport, ports[LISTENER_OF[transport]], certs["ca"])
        t0 = time.monotonic()
        for i in range(args.connections):
            socks.append(o.open(i))
        elapsed = time.monotonic() - t0
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        resumed = f"{o.resumed} of {args.connections - 1}" if transport == "mqtts-resumed" else "-"
        per = (after - before) * 1024 / args.connections
        print(f"| {transport} | {broker} | {args.connections} | {args.connections / elapsed:.0f} | {resumed} | "
              f"{before} | {after} | {per:.0f} |", flush=True)
    finally:
        for s in socks:
            s.close()
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edgemq", default="build/broker/edgemq")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--brokers", default="edgemq,mosquitto")
    args = ap.parse_args()
    transports = args.transports.split(",")
    for t in transports:
        if t not in TRANSPORTS:
            ap.error(f"unknown transport {t} (from {', '.join(TRANSPORTS)})")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="edgemq-connections-")
    try:
        certs = make_certificates(tmp)
        print("| transport | broker | connections | connects/s (one client) | TLS sessions resumed | "
              "RSS before (KiB) | RSS after (KiB) | bytes per idle subscribed connection |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for t in transports:
            for b in args.brokers.split(","):
                measure(b, t, args, certs, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
