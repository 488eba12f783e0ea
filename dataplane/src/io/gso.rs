//! Planning UDP GSO sends (`UDP_SEGMENT`): datagrams queued for the same
//! destination, of equal size except a smaller last one, go to the kernel
//! as one send that it splits into segments. Datagrams to different
//! destinations may be reordered; datagrams to one destination keep their
//! order. Pure logic over lengths and addresses; the backends build the
//! system-call structures from the plan.

use socket2::SockAddr;

/// Most segments in one GSO send.
pub const MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (a UDP datagram's limit).
pub const MAX_BYTES: usize = 65_000;

/// One send: `count` queued datagrams (indices `order[first..first+count]`)
/// of `segment` bytes each (the last may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Start in [`Planner::order`].
    pub first: usize,
    /// Datagrams in the group.
    pub count: usize,
    /// Segment size (the first datagram's length).
    pub segment: usize,
}

/// Reusable planning buffers (allocated once for a batch size).
pub struct Planner {
    /// Queued-datagram indices in send order.
    pub order: Vec<usize>,
    /// The sends.
    pub groups: Vec<Group>,
    taken: Vec<bool>,
}

impl Planner {
    /// Buffers for batches of up to `batch` datagrams.
    pub fn new(batch: usize) -> Planner {
        Planner {
            order: Vec::with_capacity(batch),
            groups: Vec::with_capacity(batch),
            taken: vec![false; batch],
        }
    }

    /// Plans sends for datagrams `0..lens.len()`. Without `gso` every
    /// datagram is its own group.
    pub fn plan(&mut self, lens: &[usize], dests: &[SockAddr], gso: bool) {
        let n = lens.len().min(dests.len()).min(self.taken.len());
        self.order.clear();
        self.groups.clear();
        self.taken[..n].fill(false);
        for i in 0..n {
            if self.taken[i] {
                continue;
            }
            self.taken[i] = true;
            let first = self.order.len();
            self.order.push(i);
            let (segment, mut count, mut bytes) = (lens[i], 1, lens[i]);
            if gso {
                for j in i + 1..n {
                    if self.taken[j] || dests[j] != dests[i] {
                        continue;
                    }
                    // the next datagram to this destination: take it or stop,
                    // never skip it (that would reorder the destination's stream)
                    if lens[j] > segment || count == MAX_SEGMENTS || bytes + lens[j] > MAX_BYTES {
                        break;
                    }
                    self.taken[j] = true;
                    self.order.push(j);
                    count += 1;
                    bytes += lens[j];
                    if lens[j] < segment {
                        break; // a shorter one ends the group
                    }
                }
            }
            self.groups.push(Group {
                first,
                count,
                segment,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn addr(port: u16) -> SockAddr {
        SockAddr::from(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn groups_equal_sizes_per_destination_in_order() {
        let mut p = Planner::new(16);
        let dests = [
            addr(1),
            addr(2),
            addr(1),
            addr(2),
            addr(1),
            addr(1),
            addr(1),
        ];
        let lens = [1000, 500, 1000, 500, 900, 1000, 1000];
        p.plan(&lens, &dests, true);
        // to port 1: 1000, 1000, 900 (shorter ends the group), then 1000, 1000
        assert_eq!(
            p.groups[0],
            Group {
                first: 0,
                count: 3,
                segment: 1000
            }
        );
        assert_eq!(&p.order[0..3], &[0, 2, 4]);
        assert_eq!(
            p.groups[1],
            Group {
                first: 3,
                count: 2,
                segment: 500
            }
        );
        assert_eq!(
            p.groups[2],
            Group {
                first: 5,
                count: 2,
                segment: 1000
            }
        );
        assert_eq!(p.order.len(), 7);
    }

    #[test]
    fn a_larger_datagram_is_never_overtaken() {
        let mut p = Planner::new(8);
        let dests = [addr(1), addr(1), addr(1)];
        p.plan(&[500, 800, 500], &dests, true);
        // [500] alone (the 800 may not be skipped), then [800, 500]
        assert_eq!(p.groups.len(), 2);
        assert_eq!(
            p.groups[1],
            Group {
                first: 1,
                count: 2,
                segment: 800
            }
        );
        assert_eq!(p.order, vec![0, 1, 2]);
        p.plan(&[500, 800, 500], &dests, false);
        assert_eq!(p.groups.len(), 3);
    }

    #[test]
    fn limits() {
        let mut p = Planner::new(200);
        let dests = vec![addr(1); 200];
        p.plan(&vec![1200; 200], &dests, true);
        assert!(
            p.groups
                .iter()
                .all(|g| g.count <= MAX_SEGMENTS && g.count * 1200 <= MAX_BYTES)
        );
        assert_eq!(p.groups.iter().map(|g| g.count).sum::<usize>(), 200);
    }
}
