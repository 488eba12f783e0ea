"""A Switchyard participant built on aiortc, a second WebRTC stack
independent of Chromium's: it joins a room over the documented signalling
protocol (docs/signalling.md), publishes a synthetic camera and microphone,
answers the server's offers and counts the frames it decodes from each
remote participant. It prints one JSON report on stdout; the Rust test
(controlplane/tests/controlplane/aiortc.rs) judges it.

    python client.py --url wss://10.1.2.1:8443/ws --room r --name py \
        --min-frames 100 --timeout 90
"""

import argparse
import asyncio
import json
import ssl
import sys
import time

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame


def log(*parts):
    print(f"[aiortc {time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


class MovingBars(VideoStreamTrack):
    """640x360 frames at 30 fps with a moving bar, so the encoder has work."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(640, 360, "yuv420p")
        x = (self.n * 8) % 600
        for i, plane in enumerate(frame.planes):
            stride = plane.line_size
            if i == 0:
                row = bytearray(b"\x30" * stride)
                row[x : x + 40] = b"\xd0" * 40
            else:
                row = bytearray(bytes([128 + (self.n % 64) if i == 1 else 128]) * stride)
            plane.update(bytes(row) * plane.height)
        self.n += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Report:
    def __init__(self):
        self.me = None
        self.remotes = {}  # participant id -> {"name", "video_frames", "audio_frames", "width", "height"}
        self.errors = []
        self.ice_state = "new"

    def remote(self, pid):
        return self.remotes.setdefault(
            pid, {"name": None, "video_frames": 0, "audio_frames": 0, "width": 0, "height": 0}
        )


async def consume(track, pid, report):
    entry = report.remote(pid)
    try:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                entry["video_frames"] += 1
                entry["width"], entry["height"] = frame.width, frame.height
            else:
                entry["audio_frames"] += 1
    except Exception:  # the track ended
        return


async def run(args):
    report = Report()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    pc = RTCPeerConnection()
    tasks = []

    latest_offer = {"sdp": ""}

    @pc.on("track")
    def on_track(track):
        # the server puts each remote participant's tracks in a stream named
        # after it (a=msid:<participant> <source>)
        pid = None
        for t in pc.getTransceivers():
            if t.receiver.track is track:
                pid = _msid_of(latest_offer["sdp"], t.mid)
        tasks.append(asyncio.ensure_future(consume(track, pid or "unknown", report)))

    @pc.on("iceconnectionstatechange")
    def on_ice():
        report.ice_state = pc.iceConnectionState
        log("ICE", pc.iceConnectionState)

    async with websockets.connect(args.url, ssl=ctx, max_size=1 << 20) as ws:

        async def send(msg):
            await ws.send(json.dumps({"v": 1, **msg}))

        await send({"type": "join", "room": args.room, "name": args.name})
        deadline = time.monotonic() + args.timeout

        def done():
            want = [r for r in report.remotes.values() if r["name"] is not None]
            return len(want) >= args.remotes and all(
                r["video_frames"] >= args.min_frames and r["audio_frames"] > 0 for r in want
            )

        while time.monotonic() < deadline and not done():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "joined":
                report.me = msg["id"]
                for p in msg["participants"]:
                    report.remote(p["id"])["name"] = p["name"]
                pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
                pc.addTransceiver(MovingBars(), direction="sendonly")
                await pc.setLocalDescription(await pc.createOffer())
                await send({"type": "offer", "sdp": pc.localDescription.sdp})
            elif kind == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
            elif kind == "offer":
                latest_offer["sdp"] = msg["sdp"]
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await send({"type": "answer", "sdp": pc.localDescription.sdp})
            elif kind == "participant_joined":
                report.remote(msg["participant"]["id"])["name"] = msg["participant"]["name"]
            elif kind == "error":
                report.errors.append(f'{msg["code"]}: {msg["message"]}')
                log("server error", msg)
            summary = {k: (v["video_frames"], v["audio_frames"]) for k, v in report.remotes.items()}
            log(kind, summary)
        await send({"type": "leave"})
    await pc.close()
    for t in tasks:
        t.cancel()
    return report


def _msid_of(sdp, mid):
    """The stream id in the a=msid line of the m-section with `mid`."""
    section = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            section = None
        elif line == f"a=mid:{mid}":
            section = mid
        elif section is not None and line.startswith("a=msid:"):
            return line[len("a=msid:") :].split()[0]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--room", required=True)
    ap.add_argument("--name", default="aiortc")
    ap.add_argument("--remotes", type=int, default=1)
    ap.add_argument("--min-frames", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=90)
    args = ap.parse_args()
    report = asyncio.run(run(args))
    print(
        json.dumps(
            {"me": report.me, "ice": report.ice_state, "errors": report.errors, "remotes": report.remotes}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
