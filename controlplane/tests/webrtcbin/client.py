"""A Switchyard participant built on GStreamer's webrtcbin (a third WebRTC
stack, with libnice for ICE), written from docs/signalling.md alone. It
joins a room, publishes a test pattern (VP8) and a tone (Opus) with
webrtcbin's defaults apart from max-bundle, answers the server's offers,
and counts the frames it decodes from each remote participant. It prints
one JSON report on stdout, shaped as tests/aiortc/client.py's; the Rust
test (controlplane/tests/controlplane/webrtcbin.rs) judges it.

    /usr/bin/python3 client.py --url wss://10.1.2.1:8443/ws --room r \
        --name gst --min-frames 200 --min-audio-frames 500 --hold 120

GStreamer runs its own threads and a GLib main loop in a thread of its own;
the WebSocket is asyncio's. What crosses between them goes through
`loop.call_soon_threadsafe`.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

import websockets  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients"))
from tally import Tally, logger, msids  # noqa: E402

SOURCES = """
webrtcbin name=pc bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1
  ! videoconvert ! queue ! vp8enc deadline=1 target-bitrate=500000
  ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,rtcp-fb-nack-pli=true
  ! pc.
audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample
  ! queue ! opusenc ! rtpopuspay pt=111
  ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! pc.
"""


DEBUG = bool(os.environ.get("SWITCHYARD_WEBRTCBIN_DEBUG"))
log = logger("webrtcbin")


class Peer:
    """The webrtcbin pipeline and its negotiation, driven from asyncio."""

    def __init__(self, args, report, loop, send):
        self.report = report
        self.loop = loop
        self.send = send  # coroutine function taking a message dict
        self.owners = {}  # mid -> participant id, from the latest remote description
        self.pipe = Gst.parse_launch(SOURCES.format(width=args.width, height=args.height))
        self.pc = self.pipe.get_by_name("pc")
        self.pc.connect("on-negotiation-needed", self.on_negotiation_needed)
        # the sending transceivers exist already (one per linked sink pad);
        # any made from now on come from the server's offers, for a remote
        # source. webrtcbin 1.22 gives those the offer's direction without
        # reversing it (sendonly; mended upstream in 2024), and later
        # refuses its own re-offer's answer with "transceiver direction
        # changes are not implemented": say what they are for
        self.pc.connect("on-new-transceiver", self.on_new_transceiver)
        self.pc.connect("pad-added", self.on_pad_added)
        self.pc.connect("notify::ice-connection-state", self.on_ice_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def start(self):
        self.pipe.set_state(Gst.State.PLAYING)

    def stop(self):
        self.pipe.set_state(Gst.State.NULL)

    # --- from GStreamer's threads -------------------------------------------

    def post(self, msg):
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.send(msg)))

    def on_error(self, _bus, message):
        err, debug = message.parse_error()
        log("pipeline error", err.message, debug)
        self.report.error(f"pipeline: {err.message}")

    def on_ice_state(self, pc, _spec):
        state = pc.get_property("ice-connection-state").value_nick
        log("ICE", state)
        with self.report.lock:
            self.report.ice_state = state
            self.report.connection_log.append([round(time.time() * 1000), state])

    def on_new_transceiver(self, _pc, transceiver):
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY)

    def on_negotiation_needed(self, pc):
        log("negotiation needed: making an offer")
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        pc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        self.describe_locally(promise, "offer")

    def on_answer_created(self, promise, _data):
        self.describe_locally(promise, "answer")

    def describe_locally(self, promise, kind):
        """Sets the offer or answer webrtcbin made as the local description
        and sends it. The reply must stay referenced while its description
        is used: PyGObject frees what a dropped temporary pointed to."""
        promise.wait()
        reply = promise.get_reply()
        desc = reply.get_value(kind) if reply is not None else None
        if desc is None or desc.sdp is None:
            log(f"no {kind}:", reply.to_string() if reply is not None else None)
            self.report.error(f"webrtcbin made no {kind}")
            return
        text = desc.sdp.as_text()
        if DEBUG:
            log(f"local {kind}\n{text}")
        self.pc.emit("set-local-description", desc, Gst.Promise.new())
        self.post({"type": kind, "sdp": text})

    def on_pad_added(self, _pc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        transceiver = pad.get_property("transceiver")
        mid = transceiver.get_property("mid") if transceiver is not None else None
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", lambda _d, p: self.on_decoded(p, mid))
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))
        log("receiving on mid", mid)

    def on_decoded(self, pad, mid):
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        kind = "video" if s.get_name().startswith("video") else "audio"
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)

        def handoff(_sink, _buf, pad_):
            if kind == "video":
                st = pad_.get_current_caps().get_structure(0)
                w, h = st.get_int("width")[1], st.get_int("height")[1]
                self.report.frame(self.owners.get(mid, "unknown"), kind, w, h)
            else:
                self.report.frame(self.owners.get(mid, "unknown"), kind)

        sink.connect("handoff", handoff)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    # --- from asyncio -------------------------------------------------------

    def remote(self, kind, sdp):
        """Applies the server's `answer` or `offer`; an offer is answered."""
        self.owners = msids(sdp)
        if DEBUG:
            log(f"remote {kind}\n{sdp}")
        ok, msg = GstSdp.SDPMessage.new_from_text(sdp)
        if ok != GstSdp.SDPResult.OK:
            self.report.error(f"unparsable {kind} from the server")
            return
        t = GstWebRTC.WebRTCSDPType.OFFER if kind == "offer" else GstWebRTC.WebRTCSDPType.ANSWER
        desc = GstWebRTC.WebRTCSessionDescription.new(t, msg)

        def applied(promise, _data):
            promise.wait()
            reply = promise.get_reply()
            err = reply.get_value("error") if reply is not None and reply.has_field("error") else None
            if err is not None:
                log(f"{kind} refused:", err.message)
                self.report.error(f"set-remote-description({kind}): {err.message}")
                return
            if kind == "offer":
                promise2 = Gst.Promise.new_with_change_func(self.on_answer_created, None)
                self.pc.emit("create-answer", None, promise2)

        self.pc.emit("set-remote-description", desc, Gst.Promise.new_with_change_func(applied, None))


async def run(args):
    report = Tally(args.min_frames, args.min_audio_frames)
    report.connection_log = []
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    async with websockets.connect(args.url, ssl=ctx, max_size=1 << 20) as ws:

        async def send(msg):
            await ws.send(json.dumps({"v": 1, **msg}))

        peer = Peer(args, report, loop, send)
        log("connected; joining")
        await send({"type": "join", "room": args.room, "name": args.name})
        deadline = time.monotonic() + args.timeout
        hold_until = None
        while True:
            now = time.monotonic()
            if hold_until is None and (report.done(args.remotes) or now >= deadline):
                if report.done(args.remotes) and report.first_frame is not None:
                    report.done_s = round(now - report.first_frame, 2)
                hold_until = now + args.hold
            if hold_until is not None and now >= hold_until:
                break
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
            except websockets.ConnectionClosed as e:
                report.error(f"the server closed the connection: {e}")
                break
            msg = json.loads(raw)
            kind = msg.get("type")
            report.heard(msg)
            if kind == "joined":
                peer.start()  # webrtcbin asks for negotiation; the offer follows
            elif kind in ("answer", "offer"):
                peer.remote(kind, msg["sdp"])
            elif kind == "error":
                log("server error", msg)
            if kind != "pong":
                log(kind, report.counts())
        summary = report.summary()
        try:
            await send({"type": "leave"})
        except websockets.ConnectionClosed:
            pass
    peer.stop()
    return report, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--room", required=True)
    ap.add_argument("--name", default="webrtcbin")
    ap.add_argument("--remotes", type=int, default=1, help="publishing remotes to wait for")
    ap.add_argument("--min-frames", type=int, default=100, help="video frames from each remote camera")
    ap.add_argument("--min-audio-frames", type=int, default=1, help="audio frames from each remote mic")
    ap.add_argument("--timeout", type=float, default=90, help="seconds to wait for the counts")
    ap.add_argument("--hold", type=float, default=0, help="seconds to stay after counting")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    args = ap.parse_args()
    Gst.init(None)
    main_loop = GLib.MainLoop()
    threading.Thread(target=main_loop.run, daemon=True).start()
    report, summary = asyncio.run(run(args))
    main_loop.quit()
    print(
        json.dumps(
            {
                "me": report.me,
                "ice": report.ice_state,
                "connection_log": report.connection_log,
                "errors": report.errors,
                "unavailable": report.unavailable,
                "done_s": report.done_s,
                "remotes": summary,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
