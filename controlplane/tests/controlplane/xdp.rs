//! Issue #20 show 1: a browser call over the AF_XDP backend. The server's
//! dataplane runs with `--io xdp` on the server's end of the clients' veth
//! (native mode), over IPv4 and over IPv6; two Chromium browsers decode
//! each other. The media must have bypassed the kernel's UDP stack: the
//! server namespace's UDP counters (`/proc/net/snmp`) see only a handful of
//! datagrams while the browsers exchange thousands of packets.

use crate::browser::{ada_and_bo_in, assert_one_call_over};
use crate::netns::{NetnsPair, NsServer};

/// `Udp: InDatagrams` of the namespace, and `Udp6: Udp6InDatagrams`.
fn udp_in(ns: &str) -> u64 {
    let out = NetnsPair::command(ns, "cat")
        .args(["/proc/net/snmp", "/proc/net/snmp6"])
        .output()
        .expect("cat");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("Udp6InDatagrams") {
            total += line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        } else if line.starts_with("Udp: InDatagrams")
            && let Some(values) = lines.next()
        {
            total += values
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

fn call_over_af_xdp(net: &NetnsPair, name: &str) {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let veth = net.clients[0].server_veth.clone();
    let server = NsServer::start_with(
        net,
        name,
        &[
            "--io",
            "xdp",
            "--xdp-interface",
            &veth,
            "--ice-tcp-port",
            "off",
        ],
    );
    let before = udp_in(&net.server_ns);
    let r = ada_and_bo_in(&net.client_ns, &server, name, "320x180");
    let through_kernel = udp_in(&net.server_ns) - before;
    let context = || format!("report: {r:#}\n--- server ---\n{}", server.log());
    for who in ["Ada", "Bo"] {
        let p = &r["participants"][who];
        assert_one_call_over(p, who, &net.server_ip, "over AF_XDP", &context);
    }
    // thousands of media packets, a handful through the kernel's UDP
    eprintln!("{name}: {through_kernel} datagrams through the kernel's UDP stack");
    assert!(
        through_kernel < 50,
        "{through_kernel} through the kernel\n{}",
        context()
    );
    let shown = NetnsPair::command(&net.server_ns, "ip")
        .args(["-d", "link", "show", "dev", &veth])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("xdp"),
        "the program is attached while the server runs"
    );
}

#[test]
fn a_browser_call_over_af_xdp_on_ipv4() {
    call_over_af_xdp(&NetnsPair::new(), "xdp4");
}

#[test]
fn a_browser_call_over_af_xdp_on_ipv6() {
    call_over_af_xdp(&NetnsPair::ipv6_only(1), "xdp6");
}
