"""A participant that floods its own server ufrag with forged checks, for
controlplane/tests/controlplane/abuse.rs.

    stun_flood.py <http-base> <offer.sdp> <packets-per-second> <seconds> <ports>

It joins a room over signalling with <offer.sdp>, reads the server's ICE
ufrag and media address from the answer, then sends STUN binding requests
that name that ufrag but carry a wrong MESSAGE-INTEGRITY (and a correct
FINGERPRINT, so they reach the integrity check), from <ports> source ports,
at the given rate. At the end it reads /stats. Prints one JSON object.
"""

import asyncio
import json
import os
import socket
import struct
import sys
import time
import urllib.request
import zlib

import websockets


def attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def forged_check(ufrag):
    txid = os.urandom(12)
    body = attr(0x0006, f"{ufrag}:flood".encode())  # USERNAME
    body += attr(0x0024, struct.pack("!I", 1))  # PRIORITY
    body += attr(0x802A, os.urandom(8))  # ICE-CONTROLLING
    body += attr(0x0008, os.urandom(20))  # MESSAGE-INTEGRITY, wrong
    header = struct.pack("!HHI", 0x0001, len(body) + 8, 0x2112A442) + txid
    crc = zlib.crc32(header + body) ^ 0x5354554E
    return header + body + attr(0x8028, struct.pack("!I", crc))  # FINGERPRINT


async def join(ws_url, sdp):
    ws = await websockets.connect(ws_url, max_size=None)
    await ws.send(json.dumps({"v": 1, "type": "join", "room": "flooders", "name": "mallory"}))
    await ws.send(json.dumps({"v": 1, "type": "offer", "sdp": sdp}))
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if m["type"] == "answer":
            break
        if m["type"] == "error":
            raise SystemExit(f"refused: {m}")
    ufrag = next(l.split(":", 1)[1] for l in m["sdp"].split("\r\n") if l.startswith("a=ice-ufrag:"))
    cand = next(l for l in m["sdp"].split("\r\n") if l.startswith("a=candidate:"))
    parts = cand.split()
    return ws, ufrag, (parts[4], int(parts[5]))


async def main():
    base, sdp_file, rate, seconds, nports = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    sdp = open(sdp_file).read().replace("\r\n", "\n").replace("\n", "\r\n")
    ws, ufrag, target = await join(base.replace("http", "ws") + "/ws", sdp)
    socks = []
    for _ in range(nports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        socks.append(s)
    packets = [forged_check(ufrag) for _ in range(64)]
    sent, start = 0, time.monotonic()
    loop = asyncio.get_running_loop()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            try:
                socks[sent % nports].sendto(packets[sent % 64], target)
            except (BlockingIOError, OSError):
                pass
            sent += 1
        await asyncio.sleep(0.001)  # keeps the signalling socket alive
    elapsed = time.monotonic() - start
    stats = json.loads(urllib.request.urlopen(base + "/stats", timeout=10).read())
    await ws.close()
    print(json.dumps({"sent": sent, "seconds": round(elapsed, 2), "pps": round(sent / elapsed), "target": list(target), "stats": stats}), flush=True)


asyncio.run(main())
