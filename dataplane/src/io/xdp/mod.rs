//! The XDP side of the AF_XDP backend (issue #20): a small program, written
//! as eBPF instructions in Rust ([`program`], [`insn`]), attached to an
//! interface through a BPF link ([`XdpFilter`]). It hands the dataplane's
//! media — UDP to the addresses and ports it serves — to the AF_XDP socket
//! of the receive queue, and everything else to the kernel.
//!
//! Attaching by link, not by netlink: the program lives exactly as long as
//! the link's file descriptor, so a dataplane that exits or is killed
//! leaves nothing attached, and the next start attaches afresh. An
//! interface that already has a program attached some other way refuses
//! the link (`EBUSY`); [`XdpFilter::attach`] tries again a few times (a
//! program of a process that just died is released a moment later), then
//! says so.

pub mod backend;
pub mod insn;
pub mod program;
#[allow(unsafe_code)] // kernel interface: AF_XDP rings and UMEM shared with the kernel
pub mod socket;
#[allow(unsafe_code)] // kernel interface: bpf(2)
pub mod sys;

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `XDP_FLAGS_SKB_MODE`.
const FLAGS_SKB: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
const FLAGS_DRV: u32 = 1 << 2;
/// Receive queues an interface may have, at most (the socket map's size).
pub const MAX_QUEUES: u32 = 256;
/// Addresses served at once, at most (the addrs map's size).
pub const MAX_ADDRESSES: u32 = 256;
/// How often the served addresses follow the interface's (a dataplane
/// bound to a wildcard address).
pub const ADDRESS_REFRESH: Duration = Duration::from_secs(1);
/// Attempts on `EBUSY`, and the wait between them.
const BUSY_TRIES: u32 = 5;
const BUSY_WAIT: Duration = Duration::from_millis(200);

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver, before any socket buffer exists (what the speed needs;
    /// veth and the common server NICs have it).
    Native,
    /// After the kernel built its socket buffer: any interface, no gain in
    /// speed — for drivers without XDP and for tests.
    Generic,
}

/// What could not be done.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("no interface {name}: {source}")]
    NoInterface { name: String, source: io::Error },
    #[error("creating the {what} map: {source}")]
    Map {
        what: &'static str,
        source: io::Error,
    },
    #[error("loading the XDP program: {0}")]
    Load(io::Error),
    #[error("attaching to interface {ifindex} ({mode:?}): {source}")]
    Attach {
        ifindex: u32,
        mode: XdpMode,
        source: io::Error,
    },
    #[error("updating a map: {0}")]
    Update(io::Error),
}

/// Frames the program saw, from its stats map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpCounts {
    /// Handed to the kernel (not media for us).
    pub passed: u64,
    /// Media for a served port.
    pub media: u64,
}

/// The program attached to one interface, and its maps. Dropping it
/// detaches the program.
#[derive(Debug)]
pub struct XdpFilter {
    // the link first: dropped first, it detaches before the maps go
    _link: OwnedFd,
    _prog: OwnedFd,
    addrs: OwnedFd,
    ports: OwnedFd,
    xsks: OwnedFd,
    stats: OwnedFd,
    ifindex: u32,
    mode: XdpMode,
    /// The addrs map's keys, as this process last set them.
    served: Mutex<BTreeSet<[u8; 16]>>,
}

impl XdpFilter {
    /// Loads the program and attaches it to `interface` in `mode`.
    pub fn attach(interface: &str, mode: XdpMode) -> Result<XdpFilter, XdpError> {
        let ifindex = sys::ifindex(interface).map_err(|source| XdpError::NoInterface {
            name: interface.to_string(),
            source,
        })?;
        let map = |what: &'static str, kind, key, value, entries| {
            sys::map_create(kind, key, value, entries, what)
                .map_err(|source| XdpError::Map { what, source })
        };
        let addrs = map("sy_addrs", sys::MAP_HASH, 16, 4, MAX_ADDRESSES)?;
        let ports = map("sy_ports", sys::MAP_ARRAY, 4, 4, 1 << 16)?;
        let xsks = map("sy_xsks", sys::MAP_XSKMAP, 4, 4, MAX_QUEUES)?;
        let stats = map("sy_stats", sys::MAP_ARRAY, 4, 8, 2)?;
        let code = program::filter(program::Maps {
            addrs: addrs.as_raw_fd(),
            ports: ports.as_raw_fd(),
            xsks: xsks.as_raw_fd(),
            stats: stats.as_raw_fd(),
        });
        let prog = sys::prog_load_xdp(&code, "switchyard").map_err(XdpError::Load)?;
        let flags = match mode {
            XdpMode::Native => FLAGS_DRV,
            XdpMode::Generic => FLAGS_SKB,
        };
        let mut tries = 0;
        let link = loop {
            match sys::link_create_xdp(&prog, ifindex, flags) {
                Ok(link) => break link,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries + 1 < BUSY_TRIES => {
                    tries += 1;
                    tracing::warn!(target: "switchyard::io", ifindex, tries, "interface busy with another XDP program; trying again");
                    std::thread::sleep(BUSY_WAIT);
                }
                Err(source) => {
                    return Err(XdpError::Attach {
                        ifindex,
                        mode,
                        source,
                    });
                }
            }
        };
        tracing::info!(target: "switchyard::io", interface, ifindex, ?mode, "XDP program attached");
        Ok(XdpFilter {
            _link: link,
            _prog: prog,
            addrs,
            ports,
            xsks,
            stats,
            ifindex,
            mode,
            served: Mutex::new(BTreeSet::new()),
        })
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode it runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Media to exactly the addresses `ips` is ours from now on (to the
    /// others, to the kernel): adds those not served yet, removes those no
    /// longer listed. `Ok(true)` when the set changed.
    pub fn serve_addresses(&self, ips: &[IpAddr]) -> Result<bool, XdpError> {
        let wanted: BTreeSet<[u8; 16]> = ips.iter().map(|&ip| program::addr_key(ip)).collect();
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        if *served == wanted {
            return Ok(false);
        }
        for gone in served.difference(&wanted) {
            match sys::map_delete(&self.addrs, gone) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                    return Err(XdpError::Update(e));
                }
                _ => {}
            }
        }
        for new in wanted.difference(&served) {
            sys::map_update(&self.addrs, new, &1u32.to_ne_bytes()).map_err(XdpError::Update)?;
        }
        *served = wanted;
        Ok(true)
    }

    /// Media to UDP `port` arriving on receive queue `queue` goes to that
    /// queue's socket from now on (`None`: all of it to the kernel again).
    pub fn serve_port(&self, port: u16, queue: Option<u32>) -> Result<(), XdpError> {
        let key = program::port_key(port).to_ne_bytes();
        let value = queue.map_or(0, |q| q + 1).to_ne_bytes();
        sys::map_update(&self.ports, &key, &value).map_err(XdpError::Update)
    }

    /// Puts AF_XDP socket `fd` on receive queue `queue`.
    pub fn set_socket(&self, queue: u32, fd: &impl AsRawFd) -> Result<(), XdpError> {
        let value = (fd.as_raw_fd() as u32).to_ne_bytes();
        sys::map_update(&self.xsks, &queue.to_ne_bytes(), &value).map_err(XdpError::Update)
    }

    /// What the program counted so far.
    pub fn counts(&self) -> Result<XdpCounts, XdpError> {
        let read = |index: u32| {
            let mut v = [0u8; 8];
            sys::map_lookup(&self.stats, &index.to_ne_bytes(), &mut v)
                .map(|()| u64::from_ne_bytes(v))
                .map_err(XdpError::Update)
        };
        Ok(XdpCounts {
            passed: read(program::STAT_PASSED)?,
            media: read(program::STAT_MEDIA)?,
        })
    }
}

/// The addresses a dataplane whose sockets are bound to `bind` serves on
/// `interface`: `bind` itself, or for a wildcard the interface's addresses
/// of the families the sockets take (`0.0.0.0`: IPv4 only; `::`: both).
pub fn addresses_for(bind: IpAddr, interface: &str) -> io::Result<Vec<IpAddr>> {
    if !bind.is_unspecified() {
        return Ok(vec![bind]);
    }
    let mut ips = sys::interface_addresses(interface)?;
    if bind.is_ipv4() {
        ips.retain(IpAddr::is_ipv4);
    }
    Ok(ips)
}

/// Keeps `filter` serving what [`addresses_for`] says, checking every
/// [`ADDRESS_REFRESH`] until `stop` (an address added to or removed from
/// the interface is followed within that time; until then media to a new
/// address reaches the kernel socket). Returns at once for a `bind` that
/// names one address (set once by the caller). Logs each change, and a
/// failure once until it clears.
pub fn follow_addresses(filter: &XdpFilter, interface: &str, bind: IpAddr, stop: &AtomicBool) {
    if !bind.is_unspecified() {
        return;
    }
    let mut failing = false;
    let mut next = Instant::now() + ADDRESS_REFRESH;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + ADDRESS_REFRESH;
        match serve_interface(filter, interface, bind) {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(target: "switchyard::io", interface, error = %e, "cannot follow the interface's addresses; the XDP program keeps the last ones");
                }
                failing = true;
            }
        }
    }
}

/// Sets the served addresses from the interface once (what
/// [`follow_addresses`] repeats); logs them when they changed.
pub fn serve_interface(filter: &XdpFilter, interface: &str, bind: IpAddr) -> Result<(), String> {
    let ips = addresses_for(bind, interface).map_err(|e| e.to_string())?;
    if filter.serve_addresses(&ips).map_err(|e| e.to_string())? {
        tracing::info!(target: "switchyard::io", interface, addresses = ?ips, "XDP program serves these addresses");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_address_is_served_alone_and_a_wildcard_takes_the_interface_s() {
        let one: IpAddr = "10.9.8.7".parse().unwrap();
        assert_eq!(addresses_for(one, "lo").unwrap(), [one]);
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let v4 = addresses_for("0.0.0.0".parse().unwrap(), "lo").unwrap();
        assert!(v4.contains(&loopback), "{v4:?}");
        assert!(v4.iter().all(IpAddr::is_ipv4), "{v4:?}");
        let both = addresses_for("::".parse().unwrap(), "lo").unwrap();
        assert!(both.contains(&loopback), "{both:?}");
        assert!(
            addresses_for("::".parse().unwrap(), "no-such-if0")
                .unwrap()
                .is_empty()
        );
    }
}
