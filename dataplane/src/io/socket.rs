//! Creating the workers' UDP sockets (socket2).

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds a non-blocking UDP socket with large kernel buffers. Warns when
/// the kernel caps a buffer below the request (raise `net.core.rmem_max` /
/// `wmem_max`; `switchyard-tune check` shows them).
pub fn bind_udp(addr: SocketAddr, recv_buffer: usize, send_buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // accept IPv4-mapped peers too when bound to [::]
        let _ = socket.set_only_v6(false);
    }
    socket.set_nonblocking(true)?;
    socket.set_recv_buffer_size(recv_buffer)?;
    socket.set_send_buffer_size(send_buffer)?;
    // Linux reports twice the value it granted (bookkeeping overhead).
    let (got_r, got_s) = (
        socket.recv_buffer_size()? / 2,
        socket.send_buffer_size()? / 2,
    );
    if got_r < recv_buffer || got_s < send_buffer {
        tracing::warn!(
            target: "switchyard::io",
            requested_recv = recv_buffer,
            granted_recv = got_r,
            requested_send = send_buffer,
            granted_send = got_s,
            "kernel capped socket buffers; raise net.core.rmem_max / wmem_max (see switchyard-tune check)"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds the ICE-TCP listening socket (address reuse on, so a restarted
/// dataplane binds again at once; IPv4-mapped peers accepted on `[::]`).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
