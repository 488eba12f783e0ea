//! Issue #16 show 3: a call where the only network is IPv6 — the server
//! binds and advertises an IPv6 address, the browsers have nothing else —
//! from the page over HTTPS to the media over UDP. And the addresses of a
//! host with several: replies leave from the one each browser reached.

use crate::browser::{ada_and_bo_in, assert_one_call_over};
use crate::netns::{NetnsPair, NsServer};

#[test]
fn a_call_over_ipv6_only() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::ipv6_only(1);
    let server = NsServer::start(&net, "ipv6");
    assert!(
        server.https.starts_with("https://["),
        "the page on the IPv6 address: {}",
        server.https
    );
    let r = ada_and_bo_in(&net.client_ns, &server, "ipv6", "640x360");
    let context = || format!("report: {r:#}\n--- server ---\n{}", server.log());
    for name in ["Ada", "Bo"] {
        let p = &r["participants"][name];
        assert_one_call_over(p, name, &net.server_ip, "over IPv6", &context);
    }
}

/// Dual stack: the server binds the IPv6 wildcard (which takes IPv4 too)
/// and advertises an address of each family; a browser with IPv4 only and
/// one with IPv6 only meet in one room, each over its own family.
#[test]
fn an_ipv4_browser_and_an_ipv6_browser_meet_on_a_dual_stack_server() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::dual_stack(2);
    let server = NsServer::start(&net, "dual");
    let v6 = net.server_ip6.clone().expect("dual stack");
    let pages = [
        (
            net.clients[0].ns.clone(),
            server.https.clone(),
            "Ada",
            net.server_ip.clone(),
        ),
        (
            net.clients[1].ns.clone(),
            format!("https://[{v6}]:8443"),
            "Bo",
            v6,
        ),
    ];
    let runs: Vec<_> = pages
        .iter()
        .cloned()
        .map(|(ns, https, name, _)| {
            std::thread::spawn(move || {
                crate::browser::call_in_at(
                    &ns,
                    &https,
                    &[
                        "--room",
                        "dual",
                        "--names",
                        name,
                        "--remotes",
                        "1",
                        "--camera",
                        "640x360",
                        "--min-frames",
                        "100",
                        "--timeout",
                        "60",
                        // stay while the other one counts its frames
                        "--hold",
                        "8",
                    ],
                    &format!("dual-{name}"),
                )
            })
        })
        .collect();
    let reports: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
    let context = || format!("reports: {reports:#?}\n--- server ---\n{}", server.log());
    for ((_, _, name, address), r) in pages.iter().zip(&reports) {
        let r = r
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", context()));
        let p = &r["participants"][*name];
        // its own host candidate: the server's binding responses name the
        // IPv4 browser's address as IPv4 (not IPv4-mapped IPv6, which it
        // took for a peer-reflexive address of its own)
        assert_eq!(p["path"]["local"], "host", "{name}: {}", context());
        assert_one_call_over(p, name, address, "from the other family", &context);
    }
}

/// A server with two addresses binds the wildcard and advertises the second
/// (in a subnet of its own): the routing table would answer the browsers
/// from the first, and ICE would drop those answers; the server answers
/// from the address each browser reached (IP_PKTINFO), and the call holds.
#[test]
fn a_multi_homed_server_answers_from_the_address_browsers_reached() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::multi_homed(1);
    let media = net.media_ip.clone().expect("multi-homed");
    let server = NsServer::start(&net, "multihomed");
    let r = ada_and_bo_in(&net.client_ns, &server, "multihomed", "320x180");
    let context = || format!("report: {r:#}\n--- server ---\n{}", server.log());
    for name in ["Ada", "Bo"] {
        let p = &r["participants"][name];
        assert_one_call_over(p, name, &media, "through the second address", &context);
    }
}
