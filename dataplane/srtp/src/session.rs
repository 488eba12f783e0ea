//! One SRTP session: the keys of one direction of one DTLS association and a
//! context per SSRC, created lazily (RFC 3711 §3.2.3).
//!
//! A session either protects (outgoing) or unprotects (incoming); use one of
//! each per endpoint. Per-SSRC state is small (rollover counter, replay
//! windows, SRTCP index) and lives in a short vector: WebRTC endpoints send
//! a handful of SSRCs, so a scan beats a hash map.

use crate::backend::{Backend, CmCipher, GcmCipher};
use crate::index::RolloverState;
use crate::keys::{MasterKey, SessionKeys};
use crate::replay::{DEFAULT_WINDOW, ReplayWindow};
use crate::{Profile, SrtpError, kdf};

/// Session settings; see [`Config::default`] for the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Replay window in packets for SRTP and SRTCP (64–4096; default 1024).
    pub replay_window: usize,
    /// Most SSRC contexts the session holds (default 64).
    pub max_streams: usize,
    /// Create contexts for new SSRCs on first (authenticated) use (default
    /// true). When false, only SSRCs added with [`Session::add_stream`] pass.
    pub accept_new_ssrcs: bool,
    /// Crypto library; `None` picks [`Backend::fastest`] for the profile.
    pub backend: Option<Backend>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replay_window: DEFAULT_WINDOW,
            max_streams: 64,
            accept_new_ssrcs: true,
            backend: None,
        }
    }
}

pub(crate) enum Cipher {
    Cm(Box<dyn CmCipher>),
    Gcm(Box<dyn GcmCipher>),
}

/// Ciphers and session salt for one of RTP or RTCP.
pub(crate) struct Keyed {
    pub(crate) cipher: Cipher,
    pub(crate) salt: [u8; 14],
}

impl Drop for Keyed {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl Keyed {
    fn new(profile: Profile, backend: Backend, keys: &SessionKeys) -> Result<Keyed, SrtpError> {
        let cipher = if profile.is_aead() {
            Cipher::Gcm(
                backend
                    .gcm(keys.cipher_key())
                    .ok_or(SrtpError::UnsupportedBackend)?,
            )
        } else {
            Cipher::Cm(
                backend
                    .cm(keys.cipher_key(), &keys.auth)
                    .ok_or(SrtpError::UnsupportedBackend)?,
            )
        };
        Ok(Keyed {
            cipher,
            salt: keys.salt,
        })
    }
}

/// Borrowed session keys for [`Session::from_session_keys`].
#[derive(Clone, Copy)]
pub struct SessionKeyRefs<'a> {
    /// Session encryption key (16 or 32 bytes).
    pub cipher: &'a [u8],
    /// Session salt (14 bytes for AES-CM, 12 for GCM).
    pub salt: &'a [u8],
    /// Session authentication key (20 bytes; AES-CM only, else empty).
    pub auth: &'a [u8],
}

impl SessionKeyRefs<'_> {
    fn to_keys(self, profile: Profile) -> Result<SessionKeys, SrtpError> {
        let auth_len = if profile.is_aead() { 0 } else { 20 };
        if self.cipher.len() != profile.key_len()
            || self.salt.len() != profile.salt_len()
            || self.auth.len() != auth_len
        {
            return Err(SrtpError::BadKeyLength);
        }
        let mut k = SessionKeys {
            cipher: [0; 32],
            cipher_len: self.cipher.len(),
            salt: [0; 14],
            auth: [0; 20],
        };
        k.cipher[..self.cipher.len()].copy_from_slice(self.cipher);
        k.salt[..self.salt.len()].copy_from_slice(self.salt);
        k.auth[..self.auth.len()].copy_from_slice(self.auth);
        Ok(k)
    }
}

/// The counters of one SSRC's context that a rebuilt session must carry
/// on from ([`Session::contexts`], [`Session::resume_context`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextState {
    /// SSRC.
    pub ssrc: u32,
    /// Highest RTP index (ROC · 2^16 + SEQ); `None` before the first packet.
    pub rtp_index: Option<u64>,
    /// Next SRTCP index to send (protecting) or highest received + 1.
    pub srtcp_index: u32,
}

/// State of one SSRC.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    pub(crate) rollover: RolloverState,
    pub(crate) rtp_replay: ReplayWindow,
    /// Next SRTCP index to send.
    pub(crate) rtcp_next: u32,
    pub(crate) rtcp_replay: ReplayWindow,
}

impl Stream {
    pub(crate) fn new(ssrc: u32, roc: u32, window: usize) -> Stream {
        Stream {
            ssrc,
            rollover: RolloverState::with_roc(roc),
            rtp_replay: ReplayWindow::new(window),
            rtcp_next: 0,
            rtcp_replay: ReplayWindow::new(window),
        }
    }
}

/// An SRTP/SRTCP session for one direction.
pub struct Session {
    pub(crate) profile: Profile,
    pub(crate) backend: Backend,
    pub(crate) rtp: Keyed,
    pub(crate) rtcp: Keyed,
    pub(crate) streams: Vec<Stream>,
    pub(crate) config: Config,
}

impl Session {
    /// Derives the session keys from a master key and sets up the ciphers.
    pub fn new(profile: Profile, master: &MasterKey, config: Config) -> Result<Session, SrtpError> {
        if master.key().len() != profile.key_len() || master.salt().len() != profile.salt_len() {
            return Err(SrtpError::BadKeyLength);
        }
        let rtp = kdf::session_keys(master, false);
        let rtcp = kdf::session_keys(master, true);
        Session::with_keys(profile, &rtp, &rtcp, config)
    }

    /// Sets up a session from already derived session keys, skipping the
    /// KDF: for test vectors that state session keys (RFC 7714 §16–17) and
    /// for keying schemes that derive elsewhere. `auth` keys are ignored by
    /// the GCM profiles.
    pub fn from_session_keys(
        profile: Profile,
        rtp: SessionKeyRefs<'_>,
        rtcp: SessionKeyRefs<'_>,
        config: Config,
    ) -> Result<Session, SrtpError> {
        Session::with_keys(
            profile,
            &rtp.to_keys(profile)?,
            &rtcp.to_keys(profile)?,
            config,
        )
    }

    fn with_keys(
        profile: Profile,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        config: Config,
    ) -> Result<Session, SrtpError> {
        let backend = config.backend.unwrap_or_else(|| Backend::fastest(profile));
        if !backend.supports(profile) {
            return Err(SrtpError::UnsupportedBackend);
        }
        let rtp = Keyed::new(profile, backend, rtp)?;
        let rtcp = Keyed::new(profile, backend, rtcp)?;
        Ok(Session {
            profile,
            backend,
            rtp,
            rtcp,
            streams: Vec::new(),
            config,
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The crypto library in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Adds (or resets) the context of an SSRC, starting at this rollover
    /// counter (0 for a new stream; RFC 4568 and signalling may carry others).
    pub fn add_stream(&mut self, ssrc: u32, roc: u32) -> Result<(), SrtpError> {
        let stream = Stream::new(ssrc, roc, self.config.replay_window);
        if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) {
            *s = stream;
            return Ok(());
        }
        if self.streams.len() >= self.config.max_streams {
            return Err(SrtpError::TooManyStreams);
        }
        self.streams.push(stream);
        Ok(())
    }

    /// What a context must carry on from after the session is rebuilt
    /// elsewhere (a restarted process): per SSRC the highest RTP index seen
    /// or sent, and the SRTCP index (the next one to send, or the highest
    /// received + 1; 0 = none).
    pub fn contexts(&self) -> impl Iterator<Item = ContextState> + '_ {
        self.streams.iter().map(|s| ContextState {
            ssrc: s.ssrc,
            rtp_index: s
                .rollover
                .s_l
                .map(|seq| u64::from(s.rollover.roc) << 16 | u64::from(seq)),
            srtcp_index: match s.rtcp_replay.highest() {
                Some(h) => (h as u32).wrapping_add(1).max(s.rtcp_next),
                None => s.rtcp_next,
            },
        })
    }

    /// Sets up (or resets) an SSRC's context to carry on from `state`:
    /// indices are estimated around `rtp_index`, and sending goes on at
    /// `srtcp_index`. Replay windows start empty, so any index past the
    /// recorded one passes.
    pub fn resume_context(&mut self, state: ContextState) -> Result<(), SrtpError> {
        let roc = state.rtp_index.map_or(0, |i| (i >> 16) as u32);
        self.add_stream(state.ssrc, roc)?;
        if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == state.ssrc) {
            s.rollover.s_l = state.rtp_index.map(|i| i as u16);
            s.rtcp_next = state.srtcp_index & 0x7fff_ffff;
        }
        Ok(())
    }

    /// Forgets an SSRC (e.g. after RTCP BYE).
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.streams.retain(|s| s.ssrc != ssrc);
    }

    /// The SSRCs with a context.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams.iter().map(|s| s.ssrc)
    }

    /// The rollover counter of an SSRC's highest packet.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map(|s| s.rollover.roc)
    }

    /// Position of the SSRC's context, or a fresh context that is not yet
    /// stored (it is stored by [`Session::commit`] once the packet passed).
    pub(crate) fn lookup(&self, ssrc: u32) -> Result<Lookup, SrtpError> {
        if let Some(i) = self.streams.iter().position(|s| s.ssrc == ssrc) {
            return Ok(Lookup::Found(i));
        }
        if !self.config.accept_new_ssrcs {
            return Err(SrtpError::UnknownSsrc);
        }
        if self.streams.len() >= self.config.max_streams {
            return Err(SrtpError::TooManyStreams);
        }
        Ok(Lookup::New(Box::new(Stream::new(
            ssrc,
            0,
            self.config.replay_window,
        ))))
    }

    /// The stream of a lookup, for reading.
    pub(crate) fn stream<'a>(&'a self, l: &'a Lookup) -> &'a Stream {
        match l {
            Lookup::Found(i) => &self.streams[*i],
            Lookup::New(s) => s,
        }
    }

    /// Stores a new stream and returns its position.
    pub(crate) fn commit(&mut self, l: Lookup) -> usize {
        match l {
            Lookup::Found(i) => i,
            Lookup::New(s) => {
                self.streams.push(*s);
                self.streams.len() - 1
            }
        }
    }
}

/// Where the context of a packet's SSRC is.
pub(crate) enum Lookup {
    Found(usize),
    // Boxed only on the first packet of an SSRC, never on the steady path.
    New(Box<Stream>),
}

/// Compares two tags without an early exit.
pub(crate) fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
