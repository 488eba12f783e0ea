"""An abusive signalling client, for controlplane/tests/controlplane/abuse.rs.

    flood.py idle  <ws-url> <count> <seconds>   hold <count> WebSockets that never join
    flood.py joins <ws-url> <count>             <count> joins at once, each on its own socket
    flood.py bad   <ws-url> <seconds>           bad frames as fast as possible, never reading
    flood.py offers <ws-url> <seconds> <sdp>    join, then <sdp> padded to 64 KiB as offers in a loop

Prints one JSON object with what happened; the Rust test judges.
"""

import asyncio
import json
import resource
import sys
import time

import websockets

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def refused_status(e):
    resp = getattr(e, "response", None)
    return getattr(resp, "status_code", None) or getattr(e, "status_code", None)


async def idle(url, count, seconds):
    out = {"accepted": 0, "refused": {}, "closed_by_server": 0, "close_codes": {}}
    socks = []

    async def one():
        try:
            ws = await websockets.connect(url, open_timeout=20, max_queue=1)
        except Exception as e:  # refused before the upgrade
            key = str(refused_status(e) or type(e).__name__)
            out["refused"][key] = out["refused"].get(key, 0) + 1
            return
        out["accepted"] += 1
        socks.append(ws)

    await asyncio.gather(*(one() for _ in range(count)))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    for ws in socks:
        if ws.close_code is not None:
            out["closed_by_server"] += 1
            key = str(ws.close_code)
            out["close_codes"][key] = out["close_codes"].get(key, 0) + 1
        else:
            await ws.close()
    return out


async def joins(url, count):
    out = {"joined": 0, "errors": {}, "refused": {}, "ids": []}

    async def one(i):
        try:
            ws = await websockets.connect(url, open_timeout=20)
        except Exception as e:
            key = str(refused_status(e) or type(e).__name__)
            out["refused"][key] = out["refused"].get(key, 0) + 1
            return
        try:
            await ws.send(json.dumps({"v": 1, "type": "join", "room": f"flood{i % 7}", "name": f"f{i}"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if reply["type"] == "joined":
                out["joined"] += 1
                out["ids"].append(reply["id"])
            else:
                out["errors"][reply.get("code", "?")] = out["errors"].get(reply.get("code", "?"), 0) + 1
        except Exception as e:
            out["errors"][type(e).__name__] = out["errors"].get(type(e).__name__, 0) + 1
        finally:
            await ws.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return out


async def bad(url, seconds):
    out = {"sent": 0, "closed": False, "close_code": None, "seconds": 0.0}
    ws = await websockets.connect(url, max_queue=1, write_limit=1 << 20)
    start = time.monotonic()
    frame = "{" * 1000  # not JSON: each one earns an error reply we never read
    try:
        while time.monotonic() - start < seconds:
            await asyncio.wait_for(ws.send(frame), 5)
            out["sent"] += 1
            if out["sent"] % 200 == 0:
                await asyncio.sleep(0)
    except Exception:
        out["closed"] = True
    out["seconds"] = round(time.monotonic() - start, 2)
    out["close_code"] = ws.close_code
    if ws.close_code is not None:
        out["closed"] = True
    return out


async def offers(url, seconds, sdp_file):
    out = {"sent": 0, "answers": 0, "errors": {}}
    ws = await websockets.connect(url, max_size=None)
    await ws.send(json.dumps({"v": 1, "type": "join", "room": "offers", "name": "o"}))
    sdp = open(sdp_file).read().replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    # session-level attributes nobody knows, up to the 64 KiB frame limit
    head, rest = sdp.split("m=", 1)
    line = "a=x-pad:" + "p" * 1000 + "\r\n"
    room = 64 * 1024 - 200 - len(json.dumps(sdp))
    padded = head + line * max(0, room // (len(line) + 2)) + "m=" + rest
    msg = json.dumps({"v": 1, "type": "offer", "sdp": padded})
    start = time.monotonic()

    async def drain():
        try:
            async for m in ws:
                r = json.loads(m)
                if r.get("type") == "answer":
                    out["answers"] += 1
                elif r.get("type") == "error":
                    out["errors"][r["code"]] = out["errors"].get(r["code"], 0) + 1
        except Exception:
            pass

    reader = asyncio.ensure_future(drain())
    # as fast as the server answers: at most four offers in flight
    while time.monotonic() - start < seconds:
        replies = out["answers"] + sum(out["errors"].values())
        if out["sent"] - replies < 4:
            await ws.send(msg)
            out["sent"] += 1
        else:
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.5)
    reader.cancel()
    await ws.close()
    out["frame_bytes"] = len(msg)
    return out


async def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "idle":
        r = await idle(url, int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "joins":
        r = await joins(url, int(sys.argv[3]))
    elif mode == "bad":
        r = await bad(url, float(sys.argv[3]))
    elif mode == "offers":
        r = await offers(url, float(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(r), flush=True)


asyncio.run(main())
