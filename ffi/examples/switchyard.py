"""Python bindings for libswitchyard (the C ABI in ffi/include/switchyard.h)
with nothing but the standard library's ctypes.

    from switchyard import Dataplane, SrtpKey, PROFILE_AES128_CM_SHA1_80
    with Dataplane("/run/switchyard/dataplane.sock") as dp:
        dp.add_endpoint(0, id=1, remote="192.0.2.7:5000", ...)

Errors raise SwitchyardError with the status code and the library's detail.
The library is found through $SWITCHYARD_LIB, else as "libswitchyard.so".
"""

import ctypes
import os

PROFILE_AES128_CM_SHA1_80 = 1
PROFILE_AES128_CM_SHA1_32 = 2
PROFILE_AEAD_AES_128_GCM = 3
PROFILE_AEAD_AES_256_GCM = 4
KIND_AUDIO, KIND_VIDEO = 1, 2
CODEC_OTHER, CODEC_OPUS, CODEC_VP8, CODEC_H264, CODEC_VP9 = 0, 1, 2, 3, 4

OK, EMPTY = 0, 1
STATUS = {
    0: "OK", 1: "EMPTY", -1: "NULL_ARGUMENT", -2: "BAD_HANDLE", -3: "CONNECT", -4: "VERSION",
    -5: "FULL", -6: "NO_WORKER", -7: "SUPERSEDED", -8: "TOO_LARGE", -9: "BAD_KEY",
    -10: "BAD_ARGUMENT", -11: "BAD_REGION", -12: "INTERNAL",
}


class SrtpKey(ctypes.Structure):
    _fields_ = [
        ("key", ctypes.c_uint8 * 32),
        ("key_len", ctypes.c_size_t),
        ("salt", ctypes.c_uint8 * 14),
        ("salt_len", ctypes.c_size_t),
    ]

    @classmethod
    def of(cls, key: bytes, salt: bytes):
        k = cls()
        k.key[: len(key)] = key[:32]
        k.key_len = len(key)
        k.salt[: len(salt)] = salt[:14]
        k.salt_len = len(salt)
        return k


class ExtensionIds(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint8)
        for name in ("mid", "rid", "repaired_rid", "abs_send_time", "transport_cc", "audio_level", "dependency_descriptor")
    ]


class Endpoint(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("remote", ctypes.c_char_p),
        ("profile", ctypes.c_uint32),
        ("rx", SrtpKey),
        ("tx", SrtpKey),
        ("ext", ExtensionIds),
        ("user_data", ctypes.c_uint8 * 32),
    ]


class Layer(ctypes.Structure):
    _fields_ = [("ssrc", ctypes.c_uint32), ("rtx_ssrc", ctypes.c_uint32), ("rid", ctypes.c_char * 16)]


class Source(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("endpoint", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("codec", ctypes.c_uint32),
        ("clock_rate", ctypes.c_uint32),
        ("payload_type", ctypes.c_uint8),
        ("rtx_payload_type", ctypes.c_uint8),
        ("layer_count", ctypes.c_uint8),
        ("layers", Layer * 3),
    ]


class Subscription(ctypes.Structure):
    _fields_ = [
        ("endpoint", ctypes.c_uint64),
        ("source", ctypes.c_uint64),
        ("ssrc", ctypes.c_uint32),
        ("rtx_ssrc", ctypes.c_uint32),
        ("payload_type", ctypes.c_uint8),
        ("rtx_payload_type", ctypes.c_uint8),
        ("target_layer", ctypes.c_uint8),
        ("mid", ctypes.c_char * 17),
    ]


class PacketInfo(ctypes.Structure):
    _fields_ = [
        ("worker", ctypes.c_uint32),
        ("local_port", ctypes.c_uint16),
        ("endpoint", ctypes.c_uint64),
        ("remote", ctypes.c_char * 64),
    ]


class Event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint32),
        ("worker", ctypes.c_uint32),
        ("endpoint", ctypes.c_uint64),
        ("source", ctypes.c_uint64),
        ("id", ctypes.c_uint64),
        ("command_kind", ctypes.c_uint32),
        ("command_error", ctypes.c_uint32),
        ("layer", ctypes.c_uint8),
        ("level", ctypes.c_uint8),
        ("voice", ctypes.c_uint8),
        ("fraction_lost", ctypes.c_uint8),
        ("nacks", ctypes.c_uint32),
        ("retransmitted", ctypes.c_uint32),
        ("keyframe_requests", ctypes.c_uint32),
        ("twcc_reported", ctypes.c_uint32),
        ("twcc_lost", ctypes.c_uint32),
        ("remb_bps", ctypes.c_uint64),
        ("idle_ms", ctypes.c_uint64),
        ("estimate_bps", ctypes.c_uint64),
        ("acked_bps", ctypes.c_uint64),
        ("loss", ctypes.c_uint8),
        ("probing", ctypes.c_uint8),
        ("layer_bps", ctypes.c_uint32 * 3),
    ]


class Counters(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "commands", "exceptions_in",
            "exceptions_out", "events_lost", "retransmissions", "keyframe_requests", "forwarded",
        )
    ] + [("drops", ctypes.c_uint64 * 17)]


class SwitchyardError(Exception):
    def __init__(self, status, detail):
        super().__init__(f"{STATUS.get(status, status)}: {detail}")
        self.status = status
        self.name = STATUS.get(status, str(status))
        self.detail = detail


def load(path=None):
    """Loads the library and declares every function's types."""
    lib = ctypes.CDLL(path or os.environ.get("SWITCHYARD_LIB", "libswitchyard.so"))
    u64, u32, u16, u8, st = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint16, ctypes.c_uint8, ctypes.c_int32
    P = ctypes.POINTER
    signatures = {
        "switchyard_version": (ctypes.c_char_p, []),
        "switchyard_status_message": (ctypes.c_char_p, [ctypes.c_int32]),
        "switchyard_last_error": (ctypes.c_size_t, [ctypes.c_char_p, ctypes.c_size_t]),
        "switchyard_drop_reason_name": (ctypes.c_char_p, [u32]),
        "switchyard_attach": (st, [ctypes.c_char_p, P(u64)]),
        "switchyard_detach": (st, [u64]),
        "switchyard_workers": (st, [u64, P(u32)]),
        "switchyard_worker_port": (st, [u64, u32, P(u16)]),
        "switchyard_add_endpoint": (st, [u64, u32, P(Endpoint)]),
        "switchyard_remove_endpoint": (st, [u64, u32, u64]),
        "switchyard_update_remote": (st, [u64, u32, u64, ctypes.c_char_p]),
        "switchyard_add_source": (st, [u64, P(Source)]),
        "switchyard_remove_source": (st, [u64, u64]),
        "switchyard_subscribe": (st, [u64, u32, u32, P(Subscription)]),
        "switchyard_unsubscribe": (st, [u64, u32, u32, u64, u64, u8]),
        "switchyard_set_target_layer": (st, [u64, u32, u64, u64, u8]),
        "switchyard_request_keyframe": (st, [u64, u32, u64, u8]),
        "switchyard_probe": (st, [u64, u32, u64, u64, u32]),
        "switchyard_send_packet": (st, [u64, u32, u64, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
        "switchyard_recv_packet": (st, [u64, P(PacketInfo), ctypes.c_char_p, ctypes.c_size_t, P(ctypes.c_size_t)]),
        "switchyard_poll_event": (st, [u64, P(Event)]),
        "switchyard_counters": (st, [u64, u32, P(Counters)]),
    }
    for name, (restype, argtypes) in signatures.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    return lib


class Dataplane:
    """One attached handle. Methods raise SwitchyardError on failure."""

    def __init__(self, socket_path, lib=None):
        self.lib = lib or load()
        self.handle = None
        h = ctypes.c_uint64()
        self._check(self.lib.switchyard_attach(socket_path.encode(), ctypes.byref(h)))
        self.handle = h.value

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()

    def _check(self, status, allow=(OK,)):
        if status in allow:
            return status
        buf = ctypes.create_string_buffer(512)
        self.lib.switchyard_last_error(buf, len(buf))
        raise SwitchyardError(status, buf.value.decode(errors="replace"))

    def detach(self):
        if self.handle is not None:
            h, self.handle = self.handle, None
            self._check(self.lib.switchyard_detach(h))

    def workers(self):
        n = ctypes.c_uint32()
        self._check(self.lib.switchyard_workers(self.handle, ctypes.byref(n)))
        return n.value

    def worker_port(self, worker):
        p = ctypes.c_uint16()
        self._check(self.lib.switchyard_worker_port(self.handle, worker, ctypes.byref(p)))
        return p.value

    def add_endpoint(self, worker, id, remote, profile, rx: SrtpKey, tx: SrtpKey, mid_ext=0):
        e = Endpoint(id=id, remote=remote.encode(), profile=profile, rx=rx, tx=tx)
        e.ext.mid = mid_ext
        self._check(self.lib.switchyard_add_endpoint(self.handle, worker, ctypes.byref(e)))

    def remove_endpoint(self, worker, id):
        self._check(self.lib.switchyard_remove_endpoint(self.handle, worker, id))

    def add_source(self, id, endpoint, kind, codec, clock_rate, payload_type, ssrcs, rtx_payload_type=0):
        s = Source(
            id=id, endpoint=endpoint, kind=kind, codec=codec, clock_rate=clock_rate,
            payload_type=payload_type, rtx_payload_type=rtx_payload_type, layer_count=len(ssrcs),
        )
        for layer, ssrc in zip(s.layers, ssrcs):
            layer.ssrc = ssrc
        self._check(self.lib.switchyard_add_source(self.handle, ctypes.byref(s)))

    def remove_source(self, id):
        self._check(self.lib.switchyard_remove_source(self.handle, id))

    def subscribe(self, worker, endpoint, source, ssrc, payload_type, target_layer=0, mid=b"", source_worker=None):
        s = Subscription(
            endpoint=endpoint, source=source, ssrc=ssrc, payload_type=payload_type,
            target_layer=target_layer, mid=mid,
        )
        sw = worker if source_worker is None else source_worker
        self._check(self.lib.switchyard_subscribe(self.handle, worker, sw, ctypes.byref(s)))

    def set_target_layer(self, worker, endpoint, source, layer):
        self._check(self.lib.switchyard_set_target_layer(self.handle, worker, endpoint, source, layer))

    def request_keyframe(self, worker, source, layer=0):
        self._check(self.lib.switchyard_request_keyframe(self.handle, worker, source, layer))

    def probe(self, worker, endpoint, target_bps, duration_ms=300):
        self._check(self.lib.switchyard_probe(self.handle, worker, endpoint, target_bps, duration_ms))

    def send_packet(self, worker, remote, data: bytes, endpoint=0):
        self._check(self.lib.switchyard_send_packet(self.handle, worker, endpoint, remote.encode(), data, len(data)))

    def recv_packet(self):
        """(info, datagram) or None."""
        info, buf, n = PacketInfo(), ctypes.create_string_buffer(2048), ctypes.c_size_t()
        st = self._check(
            self.lib.switchyard_recv_packet(self.handle, ctypes.byref(info), buf, len(buf), ctypes.byref(n)),
            allow=(OK, EMPTY),
        )
        return (info, buf.raw[: n.value]) if st == OK else None

    def poll_event(self):
        """An Event or None."""
        e = Event()
        st = self._check(self.lib.switchyard_poll_event(self.handle, ctypes.byref(e)), allow=(OK, EMPTY))
        return e if st == OK else None

    def counters(self, worker):
        c = Counters()
        self._check(self.lib.switchyard_counters(self.handle, worker, ctypes.byref(c)))
        return c
