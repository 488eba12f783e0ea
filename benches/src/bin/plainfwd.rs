//! `switchyard-plainfwd`: the baseline row of `benches/compare.sh` — a
//! plain UDP forwarder of the same traffic, with nothing an SFU does beyond
//! copying: no ICE, no DTLS, no SRTP, no rewriting, no feedback. It uses
//! Switchyard's own packet I/O (`switchyard_dataplane::io`, the backend
//! `--io` names, batches of 64), so the gap between it and Switchyard is
//! what the SFU's work costs, not a difference in how the kernel is used
//! (the socket asks for the same 8 MiB buffers).
//!
//! Protocol (what `switchyard-pktgen --target plain` speaks): a datagram
//! `JOIN <room>` adds its sender to that room and is answered `OK`;
//! `LEAVE` takes it out. Every other datagram from a member goes, unchanged,
//! to every other member of its room; from anyone else it is dropped.
//! (The generator's participants share one SRTP key in this mode, so they
//! read each other's packets as sent.) At most 65 536 members and as many
//! room names.
//!
//!   switchyard-plainfwd --bind 10.213.7.2:10000 [--io auto|uring|mmsg]

use clap::Parser;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use switchyard_dataplane::io::{self, IoChoice, Tx, wake::Wake};

#[derive(Parser)]
#[command(about = "Plain UDP forwarder: the baseline for benches/compare.sh")]
struct Args {
    /// Address and port to receive on.
    #[arg(long)]
    bind: SocketAddr,
    /// Packet I/O backend.
    #[arg(long, value_enum, default_value = "auto")]
    io: IoChoice,
}

/// Receive and send buffer the socket asks for (the dataplane's default).
const BUFFERS: usize = 8 << 20;

/// Members most.
const MAX_MEMBERS: usize = 65_536;

/// Who is in which room.
#[derive(Default)]
struct Rooms {
    by_name: HashMap<Vec<u8>, usize>,
    members: Vec<Vec<SocketAddr>>,
    room_of: HashMap<SocketAddr, usize>,
}

impl Rooms {
    /// Puts `who` in room `name` (leaving any other).
    fn join(&mut self, who: SocketAddr, name: &[u8]) -> bool {
        let full = self.room_of.len() >= MAX_MEMBERS && !self.room_of.contains_key(&who);
        // rooms are never taken down: as many names as members, at most
        let too_many_rooms = self.by_name.len() >= MAX_MEMBERS && !self.by_name.contains_key(name);
        if full || too_many_rooms {
            return false;
        }
        self.leave(who);
        let next = self.members.len();
        let room = *self.by_name.entry(name.to_vec()).or_insert(next);
        if room == next {
            self.members.push(Vec::new());
        }
        self.members[room].push(who);
        self.room_of.insert(who, room);
        true
    }

    fn leave(&mut self, who: SocketAddr) {
        if let Some(room) = self.room_of.remove(&who) {
            self.members[room].retain(|m| *m != who);
        }
    }

    /// Everyone in `from`'s room but `from` (nobody for a stranger).
    fn others(&self, from: SocketAddr) -> impl Iterator<Item = SocketAddr> + '_ {
        self.room_of
            .get(&from)
            .map(|&r| self.members[r].as_slice())
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(move |m| *m != from)
    }
}

/// One received datagram: a command, or media to copy to the room.
fn handle(rooms: &mut Rooms, data: &[u8], from: SocketAddr, tx: &mut dyn Tx) {
    if let Some(name) = data.strip_prefix(b"JOIN ") {
        if !name.is_empty() && name.len() <= 64 && rooms.join(from, name) {
            reply(tx, b"OK", from);
        }
        return;
    }
    if data == b"LEAVE" {
        rooms.leave(from);
        return;
    }
    for to in rooms.others(from) {
        reply(tx, data, to);
    }
}

fn reply(tx: &mut dyn Tx, data: &[u8], to: SocketAddr) {
    if let Some(buf) = tx.buffer()
        && data.len() <= buf.len()
    {
        buf[..data.len()].copy_from_slice(data);
        tx.commit(data.len(), to);
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    // the socket buffers the dataplane asks for by default
    let socket = io::socket::bind_udp(args.bind, BUFFERS, BUFFERS)?;
    let wake = Wake::new()?;
    let mut packets = io::open(args.io, socket, &wake, 64)?;
    eprintln!(
        "switchyard-plainfwd: forwarding on {} ({})",
        args.bind,
        packets.name()
    );
    let mut rooms = Rooms::default();
    loop {
        packets.wait(Duration::from_millis(100))?;
        packets.drain(&mut |data, from, tx| handle(&mut rooms, data, from, tx))?;
        packets.flush()?;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard-plainfwd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send side that keeps what it was given.
    #[derive(Default)]
    struct Kept {
        buf: Vec<u8>,
        sent: Vec<(Vec<u8>, SocketAddr)>,
    }

    impl Tx for Kept {
        fn buffer(&mut self) -> Option<&mut [u8]> {
            self.buf = vec![0; 2048];
            Some(&mut self.buf)
        }
        fn commit(&mut self, len: usize, to: SocketAddr) {
            self.sent.push((self.buf[..len].to_vec(), to));
        }
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn members_get_each_other_s_datagrams_and_strangers_nothing() {
        let mut rooms = Rooms::default();
        let mut tx = Kept::default();
        for (who, room) in [(1, "a"), (2, "a"), (3, "a"), (4, "b")] {
            handle(
                &mut rooms,
                format!("JOIN {room}").as_bytes(),
                at(who),
                &mut tx,
            );
        }
        assert_eq!(tx.sent.len(), 4, "each join answered");
        assert!(tx.sent.iter().all(|(d, _)| d == b"OK"));
        tx.sent.clear();
        handle(&mut rooms, b"media", at(1), &mut tx);
        let to: Vec<SocketAddr> = tx.sent.iter().map(|(_, t)| *t).collect();
        assert_eq!(to, [at(2), at(3)]);
        tx.sent.clear();
        handle(&mut rooms, b"media", at(9), &mut tx);
        handle(&mut rooms, b"media", at(4), &mut tx);
        assert!(tx.sent.is_empty(), "a stranger, and alone in b");
        handle(&mut rooms, b"LEAVE", at(2), &mut tx);
        handle(&mut rooms, b"JOIN ", at(5), &mut tx);
        handle(&mut rooms, b"media", at(1), &mut tx);
        let to: Vec<SocketAddr> = tx.sent.iter().map(|(_, t)| *t).collect();
        assert_eq!(to, [at(3)], "2 left; an empty room name is refused");
    }
}
