#!/usr/bin/env python3
"""Memory held per idle, subscribed MQTT connection, for edgemq and Mosquitto.

Starts each broker on a free loopback port, reads its RSS, opens N connections that
each CONNECT (MQTT 3.1.1, keep alive 600 s) and SUBSCRIBE to their own topic, waits
until every SUBACK is in, reads the RSS again and prints (RSS after - before) / N.

    bench/idle_memory.py --edgemq build/release/broker/edgemq --connections 2000
"""
import argparse
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


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


def connect_packet(client_id):
    body = encode_str("MQTT") + bytes([4, 0x02]) + (600).to_bytes(2, "big") + encode_str(client_id)
    return packet(0x10, body)


def subscribe_packet(topic):
    return packet(0x82, (1).to_bytes(2, "big") + encode_str(topic) + bytes([1]))


def start_edgemq(binary, tmp):
    proc = subprocess.Popen([binary, "-p", "0", "--bind", "127.0.0.1", "--data-dir", tmp, "--log-level", "warn"],
                            stderr=subprocess.PIPE, text=True)
    # warn level hides the listening line; find the port from /proc instead
    deadline = time.time() + 10
    while time.time() < deadline:
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if f"pid={proc.pid}," in line:
                return proc, int(line.split()[3].rsplit(":", 1)[1])
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("edgemq did not start")


def start_mosquitto(tmp):
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                f"max_connections -1\n")
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def measure(name, proc, port, n):
    time.sleep(0.5)
    before = rss_kib(proc.pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(connect_packet(f"idle-{i}") + subscribe_packet(f"idle/{i}/cmd"))
        socks.append(s)
    # Wait for CONNACK + SUBACK (4 + 5 bytes) on every socket.
    pending = {s: 9 for s in socks}
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
    deadline = time.time() + 60
    while pending and time.time() < deadline:
        for fd, _ in poller.poll(1):
            s = by_fd[fd]
            data = s.recv(64)
            if not data:
                raise RuntimeError(f"{name} closed a connection")
            pending[s] -= len(data)
            if pending[s] <= 0:
                del pending[s]
                poller.unregister(fd)
    if pending:
        raise RuntimeError(f"{name}: {len(pending)} connections got no SUBACK")
    time.sleep(1.0)
    after = rss_kib(proc.pid)
    for s in socks:
        s.close()
    per = (after - before) * 1024 / n
    print(f"| {name} | {n} | {before} | {after} | {per:.0f} |")
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgemq", default="build/release/broker/edgemq")
    ap.add_argument("--connections", type=int, default=2000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("| broker | connections | RSS before (KiB) | RSS after (KiB) | bytes per idle subscribed connection |")
    print("|---|---|---|---|---|")
    for name in ("edgemq", "mosquitto"):
        tmp = tempfile.mkdtemp(prefix="edgemq-idle-")
        try:
            proc, port = start_edgemq(args.edgemq, tmp) if name == "edgemq" else start_mosquitto(tmp)
            try:
                measure(name, proc, port, args.connections)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
