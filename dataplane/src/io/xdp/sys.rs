//! The `bpf(2)` commands the XDP backend needs, each behind a safe
//! function: create a map, update, read and delete an element, load a
//! program, attach it to an interface through a BPF link; and the two
//! interface facts it needs (index, addresses). Every file descriptor
//! comes back as an [`OwnedFd`], so closing is automatic — and closing the
//! last fd of an XDP link detaches its program, which is how a crashed
//! dataplane leaves nothing attached.

use super::insn::Insn;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_XSKMAP`: AF_XDP sockets by receive queue.
pub const MAP_XSKMAP: u32 = 17;
const PROG_TYPE_XDP: u32 = 6;
const ATTACH_XDP: u32 = 37;

/// Every `bpf_attr` the kernel takes is at most this long here; the unused
/// tail must be zero.
const ATTR_LEN: usize = 128;

/// A zeroed `bpf_attr` with `fields` written at their byte offsets.
fn attr(fields: &[(usize, &[u8])]) -> [u8; ATTR_LEN] {
    let mut a = [0u8; ATTR_LEN];
    for (at, bytes) in fields {
        a[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    a
}

/// Runs `bpf(cmd, attr)`: its non-negative result, or the error.
fn bpf(cmd: libc::c_long, attr: &mut [u8; ATTR_LEN]) -> io::Result<i64> {
    // SAFETY: `attr` is a live, writable buffer of ATTR_LEN bytes for the
    // whole call, laid out as the `bpf_attr` member of `cmd` (offsets from
    // include/uapi/linux/bpf.h) with a zero tail; any pointers inside it
    // were taken by the caller from buffers it keeps alive across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            ATTR_LEN as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of a descriptor the kernel just returned.
fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: `fd` was returned by a successful bpf() call that creates a
    // new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new map (`name` at most 15 bytes).
pub fn map_create(
    kind: u32,
    key_size: u32,
    value_size: u32,
    entries: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut n = [0u8; 16];
    let len = name.len().min(15);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    let mut a = attr(&[
        (0, &kind.to_ne_bytes()),
        (4, &key_size.to_ne_bytes()),
        (8, &value_size.to_ne_bytes()),
        (12, &entries.to_ne_bytes()),
        (28, &n),
    ]);
    owned(bpf(BPF_MAP_CREATE, &mut a)?)
}

/// Sets `map[key] = value` (sizes as the map was made with).
pub fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let fd = map.as_raw_fd() as u32;
    let mut a = attr(&[
        (0, &fd.to_ne_bytes()),
        (8, &(key.as_ptr() as u64).to_ne_bytes()),
        (16, &(value.as_ptr() as u64).to_ne_bytes()),
    ]);
    // the kernel reads `key` and `value` (borrowed for this call) only
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// Removes `key` from `map` (a hash map); a key not there is `ENOENT`.
pub fn map_delete(map: &OwnedFd, key: &[u8]) -> io::Result<()> {
    let fd = map.as_raw_fd() as u32;
    let mut a = attr(&[
        (0, &fd.to_ne_bytes()),
        (8, &(key.as_ptr() as u64).to_ne_bytes()),
    ]);
    // the kernel reads key_size bytes of `key` (borrowed for this call)
    bpf(BPF_MAP_DELETE_ELEM, &mut a).map(drop)
}

/// Reads `map[key]` into `value`.
pub fn map_lookup(map: &OwnedFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let fd = map.as_raw_fd() as u32;
    let mut a = attr(&[
        (0, &fd.to_ne_bytes()),
        (8, &(key.as_ptr() as u64).to_ne_bytes()),
        (16, &(value.as_mut_ptr() as u64).to_ne_bytes()),
    ]);
    // the kernel writes value_size bytes to `value`, which the caller sized
    // to the map's values (checked by the callers in this module's parent)
    bpf(BPF_MAP_LOOKUP_ELEM, &mut a).map(drop)
}

/// Loads an XDP program. On a verifier refusal the error carries the
/// verifier's log (the last lines), which says which instruction failed.
pub fn prog_load_xdp(insns: &[Insn], name: &str) -> io::Result<OwnedFd> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let license: &CStr = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut n = [0u8; 16];
    let len = name.len().min(15);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    let fields = |log_level: u32, log: &mut [u8]| {
        attr(&[
            (0, &PROG_TYPE_XDP.to_ne_bytes()),
            (4, &(insns.len() as u32).to_ne_bytes()),
            (8, &(code.as_ptr() as u64).to_ne_bytes()),
            (16, &(license.as_ptr() as u64).to_ne_bytes()),
            (24, &log_level.to_ne_bytes()),
            (28, &(log.len() as u32).to_ne_bytes()),
            // no buffer at all without a log: the kernel refuses one
            (
                32,
                &(if log.is_empty() {
                    0
                } else {
                    log.as_mut_ptr() as u64
                })
                .to_ne_bytes(),
            ),
            (48, &n),
            // as libbpf sets for an `xdp` program: attachable by a link
            (68, &ATTACH_XDP.to_ne_bytes()),
        ])
    };
    let mut a = fields(0, &mut []);
    match bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => owned(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            // again with the verifier's log, to say why
            let mut a = fields(1, &mut log);
            let _ = bpf(BPF_PROG_LOAD, &mut a);
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0');
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(io::Error::new(
                e.kind(),
                format!("{e}; verifier: {}", tail.join(" | ")),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Attaches `prog` to interface `ifindex` through a new BPF link, in the
/// mode `flags` asks (`XDP_FLAGS_SKB_MODE` or `XDP_FLAGS_DRV_MODE`). The
/// program stays attached while the returned link fd is open.
pub fn link_create_xdp(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let fd = prog.as_raw_fd() as u32;
    let mut a = attr(&[
        (0, &fd.to_ne_bytes()),
        (4, &ifindex.to_ne_bytes()),
        (8, &ATTACH_XDP.to_ne_bytes()),
        (12, &flags.to_ne_bytes()),
    ]);
    owned(bpf(BPF_LINK_CREATE, &mut a)?)
}

/// The index of interface `name` in this thread's network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call; the
    // function only reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// The IPv4 and IPv6 addresses interface `name` has now, in this thread's
/// network namespace.
pub fn interface_addresses(name: &str) -> io::Result<Vec<std::net::IpAddr>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid place for the list's head, which
    // getifaddrs fills on success; the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned, which
        // stays alive (unmodified) until freeifaddrs below.
        let node = unsafe { &*at };
        // SAFETY: every node's name is a NUL-terminated string owned by
        // the list.
        let ifname = unsafe { CStr::from_ptr(node.ifa_name) };
        if ifname.to_bytes() == name.as_bytes() && !node.ifa_addr.is_null() {
            // SAFETY: a non-null `ifa_addr` points at a sockaddr whose
            // family says its real type: sockaddr_in for AF_INET,
            // sockaddr_in6 for AF_INET6 (both owned by the list).
            let ip = unsafe {
                match i32::from((*node.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(node.ifa_addr as *const libc::sockaddr_in);
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(node.ifa_addr as *const libc::sockaddr_in6);
                        Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                    }
                    _ => None,
                }
            };
            out.extend(ip);
        }
        at = node.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once;
    // no reference into the list outlives this point.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}
