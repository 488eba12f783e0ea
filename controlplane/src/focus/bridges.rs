//! The bridges a focus drives: what each announced when it registered,
//! what its heartbeats say now, and which rooms were placed on it lately
//! (docs/cluster.md). Sans-IO; the cluster links (or, in plain
//! `switchyard`, the pump with its in-process agent) feed it.

use super::placement::{self, Candidate, Rules};
use crate::dtls::Fingerprint;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// The id of the in-process bridge of plain `switchyard`.
pub const LOCAL: &str = "local";

/// What a bridge announces about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Its id, unique in the cluster.
    pub id: String,
    /// Its region, if configured.
    pub region: Option<String>,
    /// Its software version.
    pub version: String,
    /// The UDP port of each dataplane worker.
    pub worker_ports: Vec<u16>,
    /// Addresses browsers reach its media ports at.
    pub advertise: Vec<IpAddr>,
    /// Its ICE-TCP port, if it runs ICE-TCP.
    pub ice_tcp_port: Option<u16>,
    /// Its DTLS certificate's fingerprint.
    pub fingerprint: Fingerprint,
}

/// What a bridge's heartbeats say.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Health {
    /// Packet rate over capacity (1 = full).
    pub stress: f64,
    /// It is draining: no new rooms.
    pub draining: bool,
    /// Its dataplane is attached and running.
    pub dataplane_up: bool,
    /// Endpoints on it as it reports them, every focus's (`None`: the
    /// local bridge, whose endpoints are all this focus's).
    pub endpoints: Option<u64>,
}

/// One bridge as the focus sees it.
#[derive(Debug, Clone)]
pub struct Bridge {
    /// What it announced.
    pub info: BridgeInfo,
    /// What it last reported.
    pub health: Health,
    /// When its last heartbeat (or registration) arrived.
    pub heard: Instant,
    /// When rooms were placed on it lately.
    placed: Vec<Instant>,
    /// Since when its link is down.
    down_since: Option<Instant>,
}

impl Bridge {
    /// Whether its link is up.
    pub fn is_linked(&self) -> bool {
        self.down_since.is_none()
    }
}

/// Every registered bridge, by id.
#[derive(Debug, Default)]
pub struct Bridges {
    map: BTreeMap<String, Bridge>,
}

impl Bridges {
    /// Registers (or re-registers) a bridge.
    pub fn register(&mut self, now: Instant, info: BridgeInfo) {
        let health = Health {
            dataplane_up: true,
            ..Health::default()
        };
        self.map.insert(
            info.id.clone(),
            Bridge {
                info,
                health,
                heard: now,
                placed: Vec::new(),
                down_since: None,
            },
        );
    }

    /// A heartbeat.
    pub fn heartbeat(&mut self, now: Instant, id: &str, health: Health) {
        if let Some(b) = self.map.get_mut(id) {
            b.health = health;
            b.heard = now;
        }
    }

    /// Its link ended: it takes no rooms until it registers again.
    pub fn link_down(&mut self, now: Instant, id: &str) {
        if let Some(b) = self.map.get_mut(id) {
            b.health.dataplane_up = false;
            b.down_since.get_or_insert(now);
        }
    }

    /// Bridges whose link has been down longer than `grace`.
    pub fn down_longer_than(&self, now: Instant, grace: std::time::Duration) -> Vec<String> {
        self.map
            .values()
            .filter(|b| {
                b.down_since
                    .is_some_and(|t| now.saturating_duration_since(t) > grace)
            })
            .map(|b| b.info.id.clone())
            .collect()
    }

    /// Forgets a bridge (lost or gone); true if it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        self.map.remove(id).is_some()
    }

    /// A bridge by id.
    pub fn get(&self, id: &str) -> Option<&Bridge> {
        self.map.get(id)
    }

    /// Every bridge, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Bridge> {
        self.map.values()
    }

    /// How many are registered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The bridge a new room (or a room's new leg, with cascading) goes
    /// to, given the rooms each bridge holds (`rooms_on`), and counts the
    /// placement; `None` when no bridge can take one. Bridges over the
    /// stress threshold are the last resort: a full cluster still places
    /// calls on its least stressed bridge, as a full single host does.
    pub fn place(
        &mut self,
        now: Instant,
        region: Option<&str>,
        rules: Rules,
        except: &[&str],
        rooms_on: impl Fn(&str) -> usize,
    ) -> Option<String> {
        for b in self.map.values_mut() {
            b.placed
                .retain(|&t| now.saturating_duration_since(t) < placement::RECENT_WINDOW);
        }
        let chosen = {
            let candidates: Vec<Candidate<'_>> = self
                .map
                .values()
                .filter(|b| !except.contains(&b.info.id.as_str()))
                .map(|b| candidate(b, rooms_on(&b.info.id)))
                .collect();
            placement::place(&candidates, region, rules, now)
                .or_else(|| {
                    let last_resort = Rules {
                        stress_threshold: f64::INFINITY,
                        ..rules
                    };
                    placement::place(&candidates, region, last_resort, now)
                })
                .map(|i| candidates[i].id.to_string())
        }?;
        if let Some(b) = self.map.get_mut(&chosen) {
            b.placed.push(now);
        }
        Some(chosen)
    }

    /// Whether bridge `id` can take more now: healthy, not draining, of
    /// this version and below the stress threshold (what placement asks
    /// of a candidate).
    pub fn can_take(&self, now: Instant, id: &str, rules: Rules) -> bool {
        self.map.get(id).is_some_and(|b| {
            let c = candidate(b, 0);
            c.healthy
                && !c.draining
                && c.compatible
                && placement::effective_stress(&c, now) < rules.stress_threshold
        })
    }
}

/// What placement looks at of bridge `b`.
fn candidate(b: &Bridge, rooms: usize) -> Candidate<'_> {
    Candidate {
        id: &b.info.id,
        region: b.info.region.as_deref(),
        healthy: b.health.dataplane_up,
        draining: b.health.draining,
        compatible: b.info.version == env!("CARGO_PKG_VERSION"),
        stress: b.health.stress,
        rooms,
        placed: &b.placed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> BridgeInfo {
        BridgeInfo {
            id: id.into(),
            region: None,
            version: env!("CARGO_PKG_VERSION").into(),
            worker_ports: vec![10000],
            advertise: vec!["192.0.2.1".parse().unwrap()],
            ice_tcp_port: None,
            fingerprint: Fingerprint([7; 32]),
        }
    }

    #[test]
    fn rooms_spread_and_a_full_cluster_still_places() {
        let t = Instant::now();
        let mut b = Bridges::default();
        b.register(t, info("a"));
        b.register(t, info("b"));
        let rooms = |_: &str| 0;
        let first = b.place(t, None, Rules::default(), &[], rooms).unwrap();
        let second = b.place(t, None, Rules::default(), &[], rooms).unwrap();
        assert_ne!(first, second, "recent placements count");
        for id in ["a", "b"] {
            b.heartbeat(
                t,
                id,
                Health {
                    stress: 0.95,
                    draining: false,
                    dataplane_up: true,
                    endpoints: None,
                },
            );
        }
        assert!(b.place(t, None, Rules::default(), &[], rooms).is_some());
        b.heartbeat(
            t,
            "a",
            Health {
                draining: true,
                ..Health::default()
            },
        );
        b.heartbeat(t, "b", Health::default());
        assert_eq!(
            b.place(t, None, Rules::default(), &[], rooms),
            None,
            "draining and dataplane down take nothing, not even as a last resort"
        );
    }

    #[test]
    fn another_version_gets_no_rooms() {
        let t = Instant::now();
        let mut b = Bridges::default();
        b.register(
            t,
            BridgeInfo {
                version: "0.0.0-other".into(),
                ..info("old")
            },
        );
        assert_eq!(b.place(t, None, Rules::default(), &[], |_| 0), None);
        b.register(t, info("new"));
        assert_eq!(
            b.place(t, None, Rules::default(), &[], |_| 0).as_deref(),
            Some("new")
        );
    }
}
