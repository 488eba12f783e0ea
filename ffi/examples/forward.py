"""The C example's scenario through Python ctypes: attach to a running
dataplane, install a publisher and a subscriber endpoint with known SRTP
keys, one VP8 source and a subscription, after checking that bad input is
refused with its status. ffi/tests/c_abi.rs runs it, then sends SRTP
through the dataplane.

    SWITCHYARD_LIB=target/debug/libswitchyard.so \
        python3 ffi/examples/forward.py <control-socket> <publisher addr> <subscriber addr>
"""

import ctypes
import sys

from switchyard import (
    CODEC_VP8,
    KIND_VIDEO,
    PROFILE_AES128_CM_SHA1_80,
    Dataplane,
    SrtpKey,
    SwitchyardError,
    load,
)


def test_key(first):
    """A master key and salt whose bytes count up from `first`."""
    return SrtpKey.of(bytes(range(first, first + 16)), bytes(range(first + 0x40, first + 0x40 + 14)))


def expect_error(name, f, *args, **kwargs):
    try:
        f(*args, **kwargs)
    except SwitchyardError as e:
        if e.name != name:
            raise SystemExit(f"expected {name}, got {e}")
        print(f"refused as expected: {e}")
        return
    raise SystemExit(f"expected {name}, got success")


def detach_raw(lib, handle):
    """switchyard_detach on a bare handle, raising like the wrapper does."""
    status = lib.switchyard_detach(handle)
    if status != 0:
        buf = ctypes.create_string_buffer(256)
        lib.switchyard_last_error(buf, len(buf))
        raise SwitchyardError(status, buf.value.decode())


def main():
    socket_path, publisher, subscriber = sys.argv[1:4]
    lib = load()
    print("libswitchyard", lib.switchyard_version().decode())
    expect_error("CONNECT", Dataplane, "/nonexistent/switchyard.sock", lib)

    with Dataplane(socket_path, lib) as dp:
        print(f"attached: {dp.workers()} worker(s), worker 0 on UDP {dp.worker_port(0)}")
        expect_error("NO_WORKER", dp.worker_port, dp.workers())
        short = SrtpKey.of(bytes(15), bytes(14))
        expect_error("BAD_KEY", dp.add_endpoint, 0, 1, publisher, PROFILE_AES128_CM_SHA1_80, short, test_key(0x30))
        expect_error("BAD_ARGUMENT", dp.add_endpoint, 0, 1, "nowhere", PROFILE_AES128_CM_SHA1_80, test_key(0x10), test_key(0x30))
        dp.add_endpoint(0, 1, publisher, PROFILE_AES128_CM_SHA1_80, test_key(0x10), test_key(0x30), mid_ext=1)
        dp.add_endpoint(0, 2, subscriber, PROFILE_AES128_CM_SHA1_80, test_key(0x50), test_key(0x70), mid_ext=1)
        expect_error("BAD_ARGUMENT", dp.add_source, 9, 1, KIND_VIDEO, CODEC_VP8, 90000, 96, ssrcs=[])
        dp.add_source(9, 1, KIND_VIDEO, CODEC_VP8, 90000, 96, ssrcs=[0x777])
        dp.subscribe(0, endpoint=2, source=9, ssrc=0x888, payload_type=96, mid=b"1")
        while (e := dp.poll_event()) is not None:
            print("event kind", e.kind)
        print("commands applied so far:", dp.counters(0).commands)
        handle = dp.handle
    # detached: the handle is gone
    expect_error("BAD_HANDLE", detach_raw, lib, handle)
    print("installed")


if __name__ == "__main__":
    main()
