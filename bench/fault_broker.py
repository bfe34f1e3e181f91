#!/usr/bin/env python3
"""A deliberately faulty MQTT 3.1.1 QoS 0 'broker' to check edgemq-bench's counters.

It forwards every PUBLISH to every subscriber, except that per publisher it drops every
DROP-th message, sends every DUP-th twice, and swaps every SWAP-th with the next one.
Run it, point edgemq-bench at it, and compare the tool's lost/duplicates/out-of-order
with what this script prints on exit (SIGINT/SIGTERM or --seconds).

  bench/fault_broker.py --port 0 --seconds 20 &      # prints "listening PORT"
  edgemq-bench --port PORT --publishers 4 --subscribers 2 --rate 1000 --duration 3

Only for testing the tool: QoS 0, no sessions, no keep-alive, no topic matching.
"""
import argparse
import asyncio
import signal
import sys

subscribers = []
counts = {"dropped": 0, "duplicated": 0, "swapped": 0}


async def read_packet(reader):
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        b = (await reader.readexactly(1))[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    body = await reader.readexactly(length)
    return first, body


def frame(first, body):
    out = bytearray([first])
    n = len(body)
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + body


def send_all(packet):
    for w in subscribers:
        w.write(packet)


async def client(reader, writer, args):
    n = 0
    held = None
    try:
        while True:
            first, body = await read_packet(reader)
            kind = first >> 4
            if kind == 1:  # CONNECT
                writer.write(bytes([0x20, 2, 0, 0]))
            elif kind == 8:  # SUBSCRIBE: grant QoS 0
                writer.write(bytes([0x90, 3]) + body[:2] + bytes([0]))
                subscribers.append(writer)
            elif kind == 12:  # PINGREQ
                writer.write(bytes([0xD0, 0]))
            elif kind == 14:  # DISCONNECT
                break
            elif kind == 3:
                n += 1
                packet = frame(0x30, body)  # forwarded as QoS 0 (the bench runs QoS 0 here)
                if held is not None:
                    send_all(packet)
                    send_all(held)
                    held = None
                    continue
                if args.drop and n % args.drop == 0:
                    counts["dropped"] += len(subscribers)
                    continue
                if args.swap and n % args.swap == 0:
                    counts["swapped"] += len(subscribers)
                    held = packet
                    continue
                send_all(packet)
                if args.dup and n % args.dup == 0:
                    counts["duplicated"] += len(subscribers)
                    send_all(packet)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        if held is not None:
            counts["dropped"] += len(subscribers)
        if writer in subscribers:
            subscribers.remove(writer)
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--drop", type=int, default=97)
    p.add_argument("--dup", type=int, default=89)
    p.add_argument("--swap", type=int, default=83)
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    server = await asyncio.start_server(lambda r, w: client(r, w, args), "127.0.0.1", args.port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(s, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    print("injected (per subscriber, summed):", counts, flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
