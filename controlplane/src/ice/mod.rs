//! ICE-lite (RFC 8445 §2.5) and consent freshness (RFC 7675), sans-IO.
//!
//! Toward browsers Switchyard is always the lite, controlled side: it never
//! sends checks, it answers the browser's binding requests. [`IceLite`] takes a datagram
//! (from the dataplane's exception ring) and writes the response to send
//! back; when the controlling agent nominates a pair (USE-CANDIDATE) it
//! reports the 5-tuple to push to the dataplane, and it reports when consent
//! lapses (no valid request for 30 s on the selected pair). Toward another
//! bridge (a relay, docs/cascading.md) one side runs [`IceChecker`], the
//! controlling half, against the other's [`IceLite`].

mod agent;
mod checker;
mod credentials;

pub use agent::{CONSENT_TIMEOUT, IceError, IceEvent, IceLite, Response};
pub use checker::{CheckerEvent, IceChecker};
pub use credentials::Credentials;
