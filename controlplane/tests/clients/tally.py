"""What a test client decoded from whom, and the log and SDP helpers the
test clients share (tests/aiortc/client.py, tests/webrtcbin/client.py).
Standard library only: each client runs on its own Python."""

import sys
import threading
import time


def logger(tag):
    """A log function writing `[tag HH:MM:SS.mmm] ...` to stderr."""

    def log(*parts):
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        print(f"[{tag} {stamp}]", *parts, file=sys.stderr, flush=True)

    return log


def msids(sdp):
    """mid -> the stream id (publishing participant) of the a=msid line, for
    each m-section with both."""
    out, mid, msid = {}, None, None
    for line in sdp.splitlines() + ["m="]:
        if line.startswith("m="):
            if mid is not None and msid is not None:
                out[mid] = msid
            mid, msid = None, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
        elif line.startswith("a=msid:"):
            msid = line[len("a=msid:") :].split()[0]
    return out


def ssrcs(sdp):
    """mid -> the SSRCs its a=ssrc lines name, for each m-section with a mid."""
    out, mid = {}, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
            out.setdefault(mid, [])
        elif line.startswith("a=ssrc:") and mid is not None:
            ssrc = int(line[len("a=ssrc:") :].split()[0])
            if ssrc not in out[mid]:
                out[mid].append(ssrc)
    return out


class Tally:
    """Frames decoded from each remote participant. Guarded by a lock:
    webrtcbin counts from GStreamer's streaming threads."""

    def __init__(self, min_frames, min_audio_frames):
        self.lock = threading.RLock()
        self.me = None
        # participant id -> {"name", "kinds" (what it publishes), "video_frames",
        # "audio_frames", "width", "height"}
        self.remotes = {}
        self.errors = []
        self.unavailable = []
        self.ice_state = "new"
        self.first_frame = None  # time.monotonic() of the first decoded frame
        self.done_s = None  # seconds from the first frame until every count was reached
        self.joined_at = None  # time.monotonic() of `joined`
        self.min_frames = min_frames
        self.min_audio_frames = min_audio_frames

    def remote(self, pid):
        with self.lock:
            return self.remotes.setdefault(
                pid,
                {"name": None, "kinds": [], "video_frames": 0, "audio_frames": 0, "width": 0, "height": 0},
            )

    def named(self, pid, name):
        """`pid` is called `name`; from now on it counts as known."""
        with self.lock:
            entry = self.remote(pid)
            entry["name"] = name
            entry.setdefault("known_at", time.monotonic())

    def publishes(self, pid, kind):
        with self.lock:
            kinds = self.remote(pid)["kinds"]
            if kind not in kinds:
                kinds.append(kind)

    def heard(self, msg):
        """What a server message says of the room (docs/signalling.md):
        who is in it, what each publishes, sources this client cannot
        decode, errors. Negotiating is the client's own business."""
        kind = msg.get("type")
        if kind == "joined":
            with self.lock:
                self.me = msg["id"]
                self.joined_at = time.monotonic()
            for p in msg["participants"]:
                self.named(p["id"], p["name"])
                for source in p["sources"]:
                    self.publishes(p["id"], source["kind"])
        elif kind == "participant_joined":
            self.named(msg["participant"]["id"], msg["participant"]["name"])
        elif kind == "source_added":
            self.publishes(msg["participant"], msg["source"]["kind"])
        elif kind == "source_unavailable":
            with self.lock:
                self.unavailable.append(msg["source"])
        elif kind == "error":
            self.error(f'{msg["code"]}: {msg["message"]}')

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def frame(self, pid, kind, width=0, height=0):
        """A frame of `kind` from `pid` decoded now."""
        with self.lock:
            now = time.monotonic()
            entry = self.remote(pid)
            if self.first_frame is None:
                self.first_frame = now
            if kind == "video":
                entry["video_frames"] += 1
                if entry["video_frames"] == self.min_frames:
                    entry["ready_at"] = now
                entry["width"], entry["height"] = width, height
            else:
                entry["audio_frames"] += 1
            entry["last_frame_at"] = now

    def done(self, remotes):
        """`remotes` publishing remotes, each with enough of each kind it
        publishes (one that publishes nothing is not waited for)."""
        with self.lock:
            want = [r for r in self.remotes.values() if r["name"] is not None and r["kinds"]]
            return len(want) >= remotes and all(
                ("video" not in r["kinds"] or r["video_frames"] >= self.min_frames)
                and ("audio" not in r["kinds"] or r["audio_frames"] >= self.min_audio_frames)
                for r in want
            )

    def counts(self):
        with self.lock:
            return {k: (v["video_frames"], v["audio_frames"]) for k, v in self.remotes.items()}

    def summary(self):
        """The remotes as reported: `video_ready_s` is how long after both
        sides were in the room the `min_frames`th video frame came;
        `idle_s` how long before the report the last frame of either kind
        came (media still flowing shows as about 0)."""
        now = time.monotonic()
        with self.lock:
            out = {}
            for pid, r in self.remotes.items():
                r = dict(r)
                known, ready = r.pop("known_at", None), r.pop("ready_at", None)
                last = r.pop("last_frame_at", None)
                r["idle_s"] = None if last is None else round(now - last, 2)
                if known is not None and ready is not None and self.joined_at is not None:
                    r["video_ready_s"] = round(ready - max(known, self.joined_at), 2)
                out[pid] = r
            return out
