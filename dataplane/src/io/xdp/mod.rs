//! The XDP side of the AF_XDP backend (issue #20): a small program, written
//! as eBPF instructions in Rust ([`program`], [`insn`]), attached to an
//! interface through a BPF link ([`XdpFilter`]). It hands the dataplane's
//! media — UDP to the ports it serves — to the AF_XDP socket of the
//! receive queue, and everything else to the kernel.
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

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// `XDP_FLAGS_SKB_MODE`.
const FLAGS_SKB: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
const FLAGS_DRV: u32 = 1 << 2;
/// Receive queues an interface may have, at most (the socket map's size).
pub const MAX_QUEUES: u32 = 256;
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
    ports: OwnedFd,
    xsks: OwnedFd,
    stats: OwnedFd,
    ifindex: u32,
    mode: XdpMode,
}

impl XdpFilter {
    /// Loads the program and attaches it to `interface` in `mode`.
    pub fn attach(interface: &str, mode: XdpMode) -> Result<XdpFilter, XdpError> {
        let ifindex = sys::ifindex(interface).map_err(|source| XdpError::NoInterface {
            name: interface.to_string(),
            source,
        })?;
        let map = |what: &'static str, kind, value, entries| {
            sys::map_create(kind, 4, value, entries, what)
                .map_err(|source| XdpError::Map { what, source })
        };
        let ports = map("sy_ports", sys::MAP_ARRAY, 4, 1 << 16)?;
        let xsks = map("sy_xsks", sys::MAP_XSKMAP, 4, MAX_QUEUES)?;
        let stats = map("sy_stats", sys::MAP_ARRAY, 8, 2)?;
        let code = program::filter(ports.as_raw_fd(), xsks.as_raw_fd(), stats.as_raw_fd());
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
            ports,
            xsks,
            stats,
            ifindex,
            mode,
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
