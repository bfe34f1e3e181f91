#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the hex below.

Run from anywhere: python3 tests/fuzz/make_seeds.py. The output (corpus/<target>/)
is committed, so the fuzz build does not need Python. Each decode seed starts with the
version byte the target reads first: 0 = MQTT 5.0, 1 = 3.1.1, 2 = 3.1.
"""
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def s(text):
    data = text.encode() if isinstance(text, str) else text
    return len(data).to_bytes(2, "big") + data


def props(body):
    return varint(len(body)) + body


def pkt(first, body):
    return bytes([first]) + varint(len(body)) + body


V5, V311, V31 = b"\x00", b"\x01", b"\x02"

connect_props = props(h("11 0000000a 21 0010 22 0005 27 00100000 17 01 19 01")
                      + b"\x15" + s("SCRAM") + b"\x16" + s(b"\x00\x01") + b"\x26" + s("k") + s("v"))
will_props = props(h("18 0000001e 01 01 02 0000003c") + b"\x03" + s("text") + b"\x08" + s("re/ply")
                   + b"\x09" + s(b"\x01\x02") + b"\x26" + s("w") + s("1"))
publish_props = props(h("01 01 02 00000078 0b 05 0b 8001 23 0003") + b"\x03" + s("json")
                      + b"\x08" + s("r/t") + b"\x09" + s(b"\xde\xad") + b"\x26" + s("a") + s("b"))
connack_props = props(h("11 00000000 13 001e 21 0014 22 000a 24 01 25 00 27 00010000 28 01 29 00 2a 01")
                      + b"\x12" + s("auto-1") + b"\x1a" + s("resp") + b"\x1c" + s("srv")
                      + b"\x1f" + s("hi") + b"\x26" + s("x") + s("y"))
reason_props = props(b"\x1f" + s("why") + b"\x26" + s("u") + s("p"))

decode_seeds = {
    "v5_connect_full": V5 + pkt(0x10, s("MQTT") + h("05 f4 003c") + connect_props + s("client-1")
                               + will_props + s("will/topic") + s("bye") + s("user") + s(b"pw")),
    "v5_connect_min": V5 + pkt(0x10, s("MQTT") + h("05 02 0000") + props(b"") + s("")),
    "v311_connect": V311 + pkt(0x10, s("MQTT") + h("04 ee 003c") + s("pub1") + s("w") + s("x") + s("u") + s("p")),
    "v31_connect": V31 + pkt(0x10, s("MQIsdp") + h("03 02 003c") + s("old-client")),
    "v5_connack": V5 + pkt(0x20, h("01 00") + connack_props),
    "v311_connack": V311 + pkt(0x20, h("00 05")),
    "v5_publish_qos0": V5 + pkt(0x30, s("sensors/1/temp") + publish_props + b"21.5"),
    "v5_publish_alias_only": V5 + pkt(0x30, s("") + props(h("23 0001")) + b"x"),
    "v5_publish_qos2_dup_retain": V5 + pkt(0x3D, s("a/b") + h("1234") + props(b"") + b"\x00\xff"),
    "v311_publish_qos1": V311 + pkt(0x32, s("a/b") + h("0001") + b"payload"),
    "v5_acks": V5 + pkt(0x40, h("0001")) + pkt(0x50, h("0002 10")) + pkt(0x62, h("0003 92") + reason_props)
               + pkt(0x70, h("0004 00 00")),
    "v311_acks": V311 + pkt(0x40, h("0001")) + pkt(0x50, h("0002")) + pkt(0x62, h("0003")) + pkt(0x70, h("0004")),
    "v5_subscribe": V5 + pkt(0x82, h("000a") + props(h("0b 07") + b"\x26" + s("k") + s("v"))
                             + s("a/+/c") + b"\x2d" + s("$share/g/x/#") + b"\x0a" + s("#") + b"\x00"),
    "v311_subscribe": V311 + pkt(0x82, h("000b") + s("a/#") + b"\x01" + s("+/b") + b"\x02"),
    "v5_suback": V5 + pkt(0x90, h("000a") + reason_props + h("00 01 02 8f 9e a1 a2")),
    "v311_suback": V311 + pkt(0x90, h("000b 00 01 02 80")),
    "v5_unsubscribe": V5 + pkt(0xA2, h("000c") + props(b"\x26" + s("k") + s("v")) + s("a/#") + s("$share/g/b")),
    "v311_unsubscribe": V311 + pkt(0xA2, h("000d") + s("a/#")),
    "v5_unsuback": V5 + pkt(0xB0, h("000c") + reason_props + h("00 11 8f")),
    "v311_unsuback": V311 + pkt(0xB0, h("000d")),
    "v5_ping_disconnect": V5 + pkt(0xC0, b"") + pkt(0xD0, b"") + pkt(0xE0, b"")
                          + pkt(0xE0, h("04")) + pkt(0xE0, h("9c") + props(b"\x1c" + s("srv") + h("11 00000005"))),
    "v311_ping_disconnect": V311 + pkt(0xC0, b"") + pkt(0xD0, b"") + pkt(0xE0, b""),
    "v5_auth": V5 + pkt(0xF0, b"") + pkt(0xF0, h("18") + props(b"\x15" + s("SCRAM") + b"\x16" + s(b"\x00")
                                                              + b"\x1f" + s("more"))),
    "v5_malformed_mix": V5 + pkt(0x36, s("a") + h("0001 00")) + pkt(0x30, s("a/+") + h("00"))
                        + pkt(0x30, s("a") + props(h("23 0000"))) + pkt(0x82, h("0001 00") + s("$share/g/t") + b"\x04"),
    "v311_malformed_mix": V311 + pkt(0x10, s("MQTT") + h("04 42 003c") + s("") + s("pw"))
                          + pkt(0x82, h("0001") + s("a") + b"\x04") + pkt(0xF0, b""),
    "multi_byte_length": V5 + pkt(0x30, s("big") + props(b"") + b"x" * 200),
}

validate_seeds = {
    "plain": b"sensors/kitchen/temperature",
    "plus": b"sport/+/player1",
    "hash": b"sport/tennis/#",
    "hash_bad": b"sport/#/ranking",
    "plus_bad": b"sport+",
    "shared": b"$share/consumers/sensors/+/temp",
    "shared_bad": b"$share//x",
    "sys": b"$SYS/broker/clients",
    "utf8": "caf\u00e9/\u20ac/\U0001F600".encode(),
    "bom": b"\xef\xbb\xbfa",
    "surrogate": b"a/\xed\xa0\x80",
    "overlong": b"\xc0\xaf",
    "nul": b"a\x00b",
    "above_max": b"\xf4\x90\x80\x80",
    "empty_levels": b"//",
}


# fuzz_session: byte 0 = state (low 3 bits, % 5) + config flags, then commands: a byte
# n <= 0xEF feeds the next n + 1 bytes; 0xF0..0xF7 advance the clock (x 250 ms); 0xF8
# 61 s; 0xF9 3601 s; 0xFA toggles the socket's output; 0xFB the subscriber acks; 0xFC
# it reconnects; 0xFD a new raw connection takes over the input.
def feed(*packets, chunk=240):
    """Each packet arrives in reads of at most `chunk` bytes, so routing (which runs
    after each read) happens between packets."""
    out = bytearray()
    for data in packets:
        for i in range(0, len(data), chunk):
            piece = data[i:i + chunk]
            out.append(len(piece) - 1)
            out += piece
    return bytes(out)


def first(state, flags=0):
    return bytes([state | flags])


TIGHT, SMALL_Q, DROP_NEWEST, NO_RETAIN, ONE_WORKER = 0x08, 0x10, 0x20, 0x40, 0x80
ADVANCE_1S, KEEP_ALIVE, HOUR, BLOCK, ACK, SUB_RECONNECT, NEW_CONN = b"\xf3", b"\xf8", b"\xf9", b"\xfa", b"\xfb", b"\xfc", b"\xfd"

v5_connect = pkt(0x10, s("MQTT") + h("05 06 000a") + props(h("11 0000003c 21 0004 22 0003 27 00000400"))
                 + s("fz") + props(h("18 00000002")) + s("will/fz") + s("bye"))
v5_connect_resume = pkt(0x10, s("MQTT") + h("05 00 000a") + props(h("11 0000003c")) + s("fz"))
v311_connect = pkt(0x10, s("MQTT") + h("04 0e 000a") + s("fz") + s("will/fz") + s("bye"))
v5_sub = pkt(0x82, h("0001") + props(h("0b 05")) + s("a/#") + b"\x02" + s("$share/g/b/+") + b"\x01")
v311_sub = pkt(0x82, h("0001") + s("a/#") + b"\x02" + s("b/+") + b"\x01")
v5_pub0 = pkt(0x30, s("a/b") + props(h("01 01") + b"\x03" + s("text") + b"\x26" + s("k") + s("v")) + b"hello")
v5_pub1_alias = pkt(0x32, s("a/c") + h("0002") + props(h("23 0001 02 00000005")) + b"one")
v5_pub1_alias_only = pkt(0x32, s("") + h("0003") + props(h("23 0001")) + b"again")
v5_pub2_retain = pkt(0x35, s("a/r") + h("0004") + props(b"") + b"kept")
v5_pubrel = pkt(0x62, h("0004"))
v311_pub0 = pkt(0x30, s("a/b") + b"hello")
v311_pub1 = pkt(0x32, s("b/c") + h("0002") + b"one")
v311_pub2_retain = pkt(0x35, s("a/r") + h("0004") + b"kept")
v311_pubrel = pkt(0x62, h("0004"))
v5_unsub = pkt(0xA2, h("0005") + props(b"") + s("a/#"))
v311_unsub = pkt(0xA2, h("0005") + s("a/#"))
ping = pkt(0xC0, b"")
v5_disconnect_will = pkt(0xE0, h("04 00"))
v5_disconnect = pkt(0xE0, b"")
v5_pub_to_sub = pkt(0x32, s("x/y") + h("0007") + props(b"") + b"to the subscriber")

session_seeds = {
    "raw_v5_session": first(0) + feed(v5_connect, v5_sub, v5_pub0, v5_pub1_alias, v5_pub1_alias_only,
                                      v5_pub2_retain, v5_pubrel, ping, v5_unsub, v5_disconnect),
    "raw_v311_session": first(0) + feed(v311_connect, v311_sub, v311_pub0, v311_pub1, v311_pub2_retain,
                                        v311_pubrel, ping, v311_unsub) + KEEP_ALIVE,
    "raw_v5_byte_by_byte": first(0) + feed(v5_connect, v5_pub0, ping, chunk=1),
    "raw_v5_resume_on_new_connection": first(0) + feed(v5_connect) + NEW_CONN + feed(v5_connect_resume, ping),
    "v311_connected": first(1) + feed(v311_sub, v311_pub1, v311_pub2_retain, v311_pubrel) + ADVANCE_1S
                      + feed(ping, v311_unsub),
    "v311_keep_alive_timeout": first(1) + feed(v311_pub0) + KEEP_ALIVE,
    "v5_connected": first(2) + feed(v5_sub, v5_pub1_alias, v5_pub1_alias_only, v5_pub2_retain, v5_pubrel,
                                    v5_disconnect_will) + HOUR,
    "v5_connected_tight": first(2, TIGHT) + feed(v5_sub, v5_pub1_alias, v5_pub2_retain, v5_pub2_retain)
                          + ADVANCE_1S * 8,
    "v5_routed_to_subscriber": first(3) + feed(v5_pub0, v5_pub_to_sub, v5_pub2_retain, v5_pubrel) + ACK
                               + feed(v5_pub_to_sub) + ACK + ACK,
    "v5_subscriber_reconnects": first(3, SMALL_Q) + feed(v5_pub_to_sub, v5_pub_to_sub, v5_pub_to_sub,
                                                         v5_pub_to_sub) + SUB_RECONNECT + ACK + ACK,
    "v5_subscriber_queue_drop_newest": first(3, SMALL_Q | DROP_NEWEST) + feed(*[v5_pub_to_sub] * 8) + ACK,
    "v5_blocked_socket": first(3, TIGHT) + BLOCK + feed(*[v5_pub0] * 20) + BLOCK + ACK,
    "v311_routed_one_worker": first(4, ONE_WORKER | NO_RETAIN) + feed(v311_pub0, v311_pub1) + ACK + HOUR,
    "v311_routed": first(4) + feed(v311_pub1, v311_pub2_retain, v311_pubrel) + ACK + SUB_RECONNECT + ACK,
}

# WebSocket client frames (masked), after a first byte that picks the chunk size.
def ws_frame(op, payload, fin=True, mask=b"\x12\x34\x56\x78"):
    head = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


mqtt_connect = pkt(0x10, s("MQTT") + bytes([4, 2, 0, 60]) + s("ws"))
ws_seeds = {
    "binary_connect": b"\x00" + ws_frame(2, mqtt_connect),
    "fragmented": b"\x03" + ws_frame(2, mqtt_connect[:3], fin=False) + ws_frame(9, b"hb")
                  + ws_frame(0, mqtt_connect[3:]),
    "ping_pong_close": b"\x01" + ws_frame(9, b"") + ws_frame(10, b"x") + ws_frame(8, b"\x03\xe8bye"),
    "text_frame": b"\x05" + ws_frame(1, b"hello"),
    "long_16": b"\x0b" + ws_frame(2, bytes(300)),
    "unmasked": b"\x02" + bytes([0x82, 0x01, 0x41]),
}


def write(target, seeds):
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (folder / name).write_bytes(data)


write("decode", decode_seeds)
write("validate", validate_seeds)
write("session", session_seeds)
write("ws", ws_seeds)
