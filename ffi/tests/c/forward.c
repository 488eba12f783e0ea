/*
 * Drives a running dataplane through libswitchyard: installs a publisher
 * and a subscriber endpoint with known SRTP keys, one VP8 source and a
 * subscription, after walking every error path. The Rust test that builds
 * it (ffi/tests/c_abi.rs) then sends SRTP through the dataplane.
 *
 *   forward <control-socket> <publisher addr> <subscriber addr>
 */
#include "switchyard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call, expected)                                                   \
    do {                                                                        \
        int32_t got_ = (call);                                                  \
        if (got_ != (expected)) {                                               \
            char detail_[256];                                                  \
            switchyard_last_error(detail_, sizeof detail_);                     \
            fprintf(stderr, "%s:%d: %s returned %d (%s: %s), expected %d\n",    \
                    __FILE__, __LINE__, #call, got_,                            \
                    switchyard_status_message(got_), detail_, (expected));      \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

/* A master key and salt whose bytes count up from `first`. */
static void test_key(SwitchyardSrtpKey *k, uint8_t first) {
    memset(k, 0, sizeof *k);
    for (int i = 0; i < 16; i++) k->key[i] = (uint8_t)(first + i);
    k->key_len = 16;
    for (int i = 0; i < 14; i++) k->salt[i] = (uint8_t)(first + 0x40 + i);
    k->salt_len = 14;
}

static SwitchyardEndpoint endpoint(uint64_t id, const char *remote, uint8_t rx, uint8_t tx) {
    SwitchyardEndpoint e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.remote = remote;
    e.profile = SWITCHYARD_PROFILE_AES128_CM_SHA1_80;
    test_key(&e.rx, rx);
    test_key(&e.tx, tx);
    e.ext.mid = 1;
    return e;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <control-socket> <publisher addr> <subscriber addr>\n", argv[0]);
        return 2;
    }
    printf("libswitchyard %s\n", switchyard_version());

    /* a closed socket, NULL arguments, a made-up handle */
    uint64_t h = 0;
    CHECK(switchyard_attach("/nonexistent/switchyard.sock", &h), SWITCHYARD_STATUS_CONNECT);
    CHECK(switchyard_attach(NULL, &h), SWITCHYARD_STATUS_NULL_ARGUMENT);
    CHECK(switchyard_attach(argv[1], NULL), SWITCHYARD_STATUS_NULL_ARGUMENT);
    CHECK(switchyard_remove_source(987654321, 1), SWITCHYARD_STATUS_BAD_HANDLE);

    CHECK(switchyard_attach(argv[1], &h), SWITCHYARD_STATUS_OK);
    uint32_t workers = 0;
    uint16_t port = 0;
    CHECK(switchyard_workers(h, &workers), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_worker_port(h, 0, &port), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_worker_port(h, workers, &port), SWITCHYARD_STATUS_NO_WORKER);
    uint16_t tcp_port = 0;
    CHECK(switchyard_ice_tcp_port(h, &tcp_port), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_ice_tcp_port(h, NULL), SWITCHYARD_STATUS_NULL_ARGUMENT);
    if (tcp_port == 0) {
        fprintf(stderr, "the dataplane announced no ICE-TCP port\n");
        return 1;
    }
    SwitchyardIceTcpCounters tcp;
    CHECK(switchyard_ice_tcp_counters(h, &tcp), SWITCHYARD_STATUS_OK);
    if (tcp.open != 0 || tcp.accepted != 0) {
        fprintf(stderr, "ICE-TCP counters before any connection: %llu open, %llu accepted\n",
                (unsigned long long)tcp.open, (unsigned long long)tcp.accepted);
        return 1;
    }
    printf("attached: %u worker(s), worker 0 on UDP %u\n", workers, port);
    printf("ICE-TCP on %u\n", tcp_port);

    SwitchyardEndpoint pub = endpoint(1, argv[2], 0x10, 0x30);
    SwitchyardEndpoint sub = endpoint(2, argv[3], 0x50, 0x70);

    /* bad keys and addresses are refused with their codes */
    SwitchyardEndpoint bad = pub;
    bad.rx.key_len = 15;
    CHECK(switchyard_add_endpoint(h, 0, &bad), SWITCHYARD_STATUS_BAD_KEY);
    bad = pub;
    bad.tx.salt_len = 12; /* a GCM salt for a CM profile */
    CHECK(switchyard_add_endpoint(h, 0, &bad), SWITCHYARD_STATUS_BAD_KEY);
    bad = pub;
    bad.profile = 99;
    CHECK(switchyard_add_endpoint(h, 0, &bad), SWITCHYARD_STATUS_BAD_KEY);
    bad = pub;
    bad.remote = "not an address";
    CHECK(switchyard_add_endpoint(h, 0, &bad), SWITCHYARD_STATUS_BAD_ARGUMENT);
    CHECK(switchyard_add_endpoint(h, workers, &pub), SWITCHYARD_STATUS_NO_WORKER);

    CHECK(switchyard_add_endpoint(h, 0, &pub), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_add_endpoint(h, 0, &sub), SWITCHYARD_STATUS_OK);

    SwitchyardSource src;
    memset(&src, 0, sizeof src);
    src.id = 9;
    src.endpoint = 1;
    src.kind = SWITCHYARD_KIND_VIDEO;
    src.codec = SWITCHYARD_CODEC_VP8;
    src.clock_rate = 90000;
    src.payload_type = 96;
    src.layer_count = 0;
    CHECK(switchyard_add_source(h, &src), SWITCHYARD_STATUS_BAD_ARGUMENT);
    src.layer_count = 1;
    src.layers[0].ssrc = 0x777;
    CHECK(switchyard_add_source(h, &src), SWITCHYARD_STATUS_OK);

    SwitchyardSubscription s;
    memset(&s, 0, sizeof s);
    s.endpoint = 2;
    s.source = 9;
    s.ssrc = 0x888;
    s.payload_type = 96;
    s.target_layer = 0;
    strcpy(s.mid, "1");
    CHECK(switchyard_subscribe(h, 0, 0, &s), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_set_target_layer(h, 0, 2, 9, 7), SWITCHYARD_STATUS_BAD_ARGUMENT);
    CHECK(switchyard_request_keyframe(h, 0, 9, 0), SWITCHYARD_STATUS_OK);

    /* nothing to read is EMPTY, not an error */
    SwitchyardEvent ev;
    int32_t st;
    while ((st = switchyard_poll_event(h, &ev)) == SWITCHYARD_STATUS_OK)
        printf("event kind %u\n", ev.kind);
    CHECK(st, SWITCHYARD_STATUS_EMPTY);

    /* a relay to another bridge (ABI 1.4): marked on every worker, then
       given every layer of the source; a participant as the relay target is
       refused by the worker (command error 7, relay loop) */
    SwitchyardEndpoint relay = endpoint(3, "127.0.0.1:9", 0x90, 0xb0);
    CHECK(switchyard_set_relay(h, 3, 1), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_add_endpoint(h, 0, &relay), SWITCHYARD_STATUS_OK);
    SwitchyardRelay r;
    memset(&r, 0, sizeof r);
    r.source = 9;
    r.ssrcs[0] = 0x999;
    CHECK(switchyard_relay_source(h, 0, 0, NULL), SWITCHYARD_STATUS_NULL_ARGUMENT);
    CHECK(switchyard_relay_source(h, 0, 0, &r), SWITCHYARD_STATUS_BAD_ARGUMENT);
    r.endpoint = 3;
    CHECK(switchyard_relay_source(h, 0, 0, &r), SWITCHYARD_STATUS_OK);
    r.endpoint = 2;
    CHECK(switchyard_relay_source(h, 0, 0, &r), SWITCHYARD_STATUS_OK);
    int refused = 0;
    for (int i = 0; i < 300 && !refused; i++) {
        while (switchyard_poll_event(h, &ev) == SWITCHYARD_STATUS_OK)
            if (ev.kind == SWITCHYARD_EVENT_COMMAND_FAILED && ev.id == 9 && ev.command_error == 7)
                refused = 1;
        /* sleeps until the worker's answer is there (ABI 1.10 wake-ups) */
        if (!refused) {
            int32_t w = switchyard_wait(h, 100);
            if (w != SWITCHYARD_STATUS_OK && w != SWITCHYARD_STATUS_EMPTY) {
                fprintf(stderr, "switchyard_wait: %d\n", w);
                return 1;
            }
        }
    }
    if (!refused) {
        fprintf(stderr, "the relay loop was not refused\n");
        return 1;
    }
    printf("relay loop refused\n");
    CHECK(switchyard_unrelay_source(h, 0, 3, 9), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_set_relay(h, 3, 0), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_remove_endpoint(h, 0, 3), SWITCHYARD_STATUS_OK);

    SwitchyardCounters c;
    CHECK(switchyard_counters(h, 0, &c), SWITCHYARD_STATUS_OK);
    printf("commands applied so far: %llu\n", (unsigned long long)c.commands);

    /* a second client supersedes the first; detached handles are gone */
    uint64_t h2 = 0;
    CHECK(switchyard_attach(argv[1], &h2), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_request_keyframe(h, 0, 9, 0), SWITCHYARD_STATUS_SUPERSEDED);
    CHECK(switchyard_detach(h), SWITCHYARD_STATUS_OK);
    CHECK(switchyard_detach(h), SWITCHYARD_STATUS_BAD_HANDLE);
    CHECK(switchyard_workers(h, &workers), SWITCHYARD_STATUS_BAD_HANDLE);
    CHECK(switchyard_detach(h2), SWITCHYARD_STATUS_OK);

    printf("installed\n");
    return 0;
}
