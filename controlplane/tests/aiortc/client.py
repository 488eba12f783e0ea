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
import os
import ssl
import sys
import time
from pathlib import Path

import websockets
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients"))
from tally import Tally, logger, msids, ssrcs  # noqa: E402

log = logger("aiortc")


class MovingBars(VideoStreamTrack):
    """Frames at 30 fps with a moving bar, so the encoder has work."""

    def __init__(self, width=640, height=360):
        super().__init__()
        self.n = 0
        self.size = (width, height)

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        width, height = self.size
        frame = VideoFrame(width, height, "yuv420p")
        x = (self.n * 8) % (width - 40)
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


async def consume(track, owner, report):
    """Counts the frames of `track` for whoever `owner()` says sends on its
    line now (the server may give a line to another source later)."""
    try:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                report.frame(owner(), "video", frame.width, frame.height)
            else:
                report.frame(owner(), "audio")
    except Exception:  # the track ended
        return


async def run(args):
    report = Tally(args.min_frames, args.min_audio_frames)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    # no ICE servers: aiortc's default STUN server (a name to resolve) cost
    # five seconds of DNS timeout in the tests' namespaces, and the server
    # is reached over host candidates anyway. max-bundle, as
    # docs/signalling.md asks: with aiortc's default (balanced), a second
    # line of one kind in a server offer stays on a transport of its own
    # that never connects (a microphone-only client saw one video of two)
    pc = RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )
    tasks = []

    # who sends on each line (mid -> participant id), from the remote
    # description applied last: a line the client offered is named in the
    # server's answer or a later offer, one the server added in its offer
    owners = {}

    def learn_owners(sdp):
        owners.clear()
        owners.update(msids(sdp))

    def learn_ssrcs(sdp):
        # aiortc (1.x) tells its receivers' SSRCs to the packet router only
        # when a receiver starts; a line that started with none (a recvonly
        # line the server answered before it had a source) and gets one in
        # a later offer is then found by payload type alone — and dropped
        # once a second line of that kind shares the payload type (a
        # receive-only client that joined an empty room lost an audio
        # source this way). Tell the router every SSRC the server named.
        named = ssrcs(sdp)
        for t in pc.getTransceivers():
            router = getattr(t.receiver.transport, "_rtp_router", None)
            if router is None:
                continue
            for ssrc in named.get(t.mid, []):
                router.ssrc_table[ssrc] = t.receiver
        if os.environ.get("SWITCHYARD_AIORTC_DEBUG"):
            log("remote description\n" + sdp)

    @pc.on("track")
    def on_track(track):
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
        owner = lambda: owners.get(mid) or "unknown"  # noqa: E731
        tasks.append(asyncio.ensure_future(consume(track, owner, report)))

    @pc.on("iceconnectionstatechange")
    def on_ice():
        report.ice_state = pc.iceConnectionState
        log("ICE", pc.iceConnectionState)

    async with websockets.connect(args.url, ssl=ctx, max_size=1 << 20) as ws:

        async def send(msg):
            await ws.send(json.dumps({"v": 1, **msg}))

        log("connected; joining")
        await send({"type": "join", "room": args.room, "name": args.name})
        deadline = time.monotonic() + args.timeout

        def done():
            return report.done(args.remotes)

        while time.monotonic() < deadline and not done():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
            msg = json.loads(raw)
            kind = msg.get("type")
            report.heard(msg)
            if kind == "joined":
                # what it publishes; a client with nothing to publish offers
                # to receive each kind (docs/signalling.md)
                if "audio" in args.publish:
                    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
                if "video" in args.publish:
                    width, height = (int(x) for x in args.size.split("x"))
                    pc.addTransceiver(MovingBars(width, height), direction="sendonly")
                if not args.publish:
                    pc.addTransceiver("audio", direction="recvonly")
                    pc.addTransceiver("video", direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                await send({"type": "offer", "sdp": pc.localDescription.sdp})
            elif kind == "answer":
                learn_owners(msg["sdp"])
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
                learn_ssrcs(msg["sdp"])
            elif kind == "offer":
                learn_owners(msg["sdp"])
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
                learn_ssrcs(msg["sdp"])
                await pc.setLocalDescription(await pc.createAnswer())
                await send({"type": "answer", "sdp": pc.localDescription.sdp})
            elif kind == "error":
                log("server error", msg)
            log(kind, report.counts())
        if done() and report.first_frame is not None:
            report.done_s = round(time.monotonic() - report.first_frame, 2)
        if os.environ.get("SWITCHYARD_AIORTC_DEBUG"):
            for t in pc.getTransceivers():
                r = t.receiver
                log(
                    f"transceiver mid={t.mid} kind={t.kind} current={t.currentDirection}",
                    f"receiving={getattr(r, '_RTCRtpReceiver__started', '?')}",
                    f"dtls={r.transport.state} transport={id(r.transport):x}",
                )
        # stay a while, so that the others can finish counting what this sends
        hold_until = time.monotonic() + args.hold
        while time.monotonic() < hold_until:
            try:
                await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
        await send({"type": "leave"})
    await pc.close()
    for t in tasks:
        t.cancel()
    return report


def trace_keyframes():
    """Logs each keyframe request this client sends (as a receiver) and
    each one its senders act on (a PLI or FIR from the server)."""
    from aiortc import rtcrtpreceiver, rtcrtpsender

    asked = rtcrtpsender.RTCRtpSender._send_keyframe

    def send_keyframe(self):
        log(f"keyframe asked of my {self.kind} sender")
        asked(self)

    rtcrtpsender.RTCRtpSender._send_keyframe = send_keyframe
    pli = rtcrtpreceiver.RTCRtpReceiver._send_rtcp_pli

    async def send_pli(self, media_ssrc):
        log(f"PLI sent for ssrc {media_ssrc}")
        await pli(self, media_ssrc)

    rtcrtpreceiver.RTCRtpReceiver._send_rtcp_pli = send_pli


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--room", required=True)
    ap.add_argument("--name", default="aiortc")
    ap.add_argument("--remotes", type=int, default=1, help="publishing remotes to wait for")
    ap.add_argument("--min-frames", type=int, default=100, help="video frames from each remote camera")
    ap.add_argument("--min-audio-frames", type=int, default=1, help="audio frames from each remote mic")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--hold", type=float, default=0, help="seconds to stay after counting")
    ap.add_argument(
        "--publish",
        default="audio,video",
        help="what to publish: audio,video | audio | video | '' (receive only)",
    )
    ap.add_argument("--size", default="640x360", help="camera frame size")
    args = ap.parse_args()
    args.publish = [k for k in args.publish.split(",") if k]
    if os.environ.get("SWITCHYARD_AIORTC_DEBUG"):
        trace_keyframes()
    report = asyncio.run(run(args))
    print(
        json.dumps(
            {
                "me": report.me,
                "ice": report.ice_state,
                "errors": report.errors,
                "unavailable": report.unavailable,
                "done_s": report.done_s,
                "remotes": report.summary(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
