//! The messages of signalling protocol v1.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Protocol version carried in every message as `"v"`.
pub const VERSION: u32 = 1;
/// Largest text frame accepted (an SDP offer with many m-lines fits easily).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Stable error codes (docs/signalling.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not an object.
    BadJson,
    /// Larger than [`MAX_MESSAGE`].
    TooLarge,
    /// `"v"` missing or not 1.
    UnsupportedVersion,
    /// `"type"` missing or unknown.
    UnknownMessage,
    /// A known type with missing or wrong fields.
    BadMessage,
    /// The message is not allowed now (e.g. an offer before `join`).
    BadState,
    /// The SDP could not be parsed or answered (the message names the line).
    BadSdp,
    /// Room name, display name or another value out of range.
    InvalidValue,
    /// Token missing, invalid or expired.
    Unauthorized,
    /// Room full, too many rooms, joining too fast, or no media bridge can
    /// take a new room.
    Limit,
    /// The server failed; the participant should rejoin.
    Internal,
    /// The server is shutting down and takes no new participants.
    Draining,
    /// `resume` with a token of no participant (it left, or waited too
    /// long): join again.
    ResumeFailed,
    /// The server lost this participant's media and could not give it back
    /// (its dataplane restarted and refused the participant's endpoint); the
    /// connection is closed: join again.
    MediaLost,
    /// The room cannot be opened now (the cluster's registry is unreachable,
    /// or the server that held the room stopped and the room is not free
    /// yet); the connection is closed: join again in a few seconds.
    RoomUnavailable,
    /// Only a moderator may do this (`mute_participant`,
    /// `remove_participant`); the connection stays.
    Forbidden,
}

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl ProtocolError {
    /// An error with a code and detail.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }
}

/// What a browser sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message: enter a room.
    Join {
        /// Protocol version (1).
        v: u32,
        /// Room name: 1–64 of `A–Z a–z 0–9 - _ .`.
        room: String,
        /// Display name: 1–64 characters.
        name: String,
        /// JWT when the server requires tokens.
        #[serde(default)]
        token: Option<String>,
        /// Where the client is (1–64 of `A–Z a–z 0–9 - _ .`): a new room
        /// goes to a media bridge of this region when there is one.
        #[serde(default)]
        region: Option<String>,
    },
    /// An SDP offer (initial, or renegotiation when the browser adds or
    /// removes tracks).
    Offer {
        /// Protocol version.
        v: u32,
        /// The SDP.
        sdp: String,
        /// What the tracks of some m-lines show, by `mid` (absent: a
        /// camera or microphone). Read when a source is first published.
        #[serde(default)]
        content: BTreeMap<String, Content>,
    },
    /// The answer to an offer the server sent.
    Answer {
        /// Protocol version.
        v: u32,
        /// The SDP.
        sdp: String,
    },
    /// Which remote sources to receive (by default: all).
    Subscribe {
        /// Protocol version.
        v: u32,
        /// Source ids to receive; others are not sent.
        sources: Vec<String>,
    },
    /// Receiver video constraints: the tallest layer worth sending per
    /// source (e.g. 180 for a thumbnail, 0 to pause), and which sources
    /// matter most. Each message replaces the previous constraints.
    Constraints {
        /// Protocol version.
        v: u32,
        /// Source id → maximum height in pixels (absent: no limit).
        #[serde(default)]
        max_height: BTreeMap<String, u32>,
        /// Sources the receiver pinned: served first.
        #[serde(default)]
        selected: Vec<String>,
        /// Sources the receiver shows large: served next.
        #[serde(default)]
        on_stage: Vec<String>,
    },
    /// A local track was muted or unmuted.
    Mute {
        /// Protocol version.
        v: u32,
        /// The track's `mid`.
        mid: String,
        /// Muted?
        muted: bool,
    },
    /// First message on a new connection after one dropped: carry on as
    /// the participant `joined` gave this token to.
    Resume {
        /// Protocol version.
        v: u32,
        /// `joined.resume_token`.
        token: String,
    },
    /// Keepalive; answered with `pong`.
    Ping {
        /// Protocol version.
        v: u32,
    },
    /// Leave the room (closing the socket does the same).
    Leave {
        /// Protocol version.
        v: u32,
    },
    /// A chat message: to everyone else in the room, or to participant
    /// `to` alone.
    Chat {
        /// Protocol version.
        v: u32,
        /// 1–[`MAX_CHAT_CHARS`] characters; shown as text, never as HTML.
        text: String,
        /// A participant id of this room (absent: the whole room).
        #[serde(default)]
        to: Option<String>,
    },
    /// A small JSON value for the other apps in the room (or participant
    /// `to` alone), passed on as it is.
    EndpointMessage {
        /// Protocol version.
        v: u32,
        /// Any JSON value, at most [`MAX_ENDPOINT_DATA`] bytes as JSON.
        data: serde_json::Value,
        /// A participant id of this room (absent: the whole room).
        #[serde(default)]
        to: Option<String>,
    },
    /// Raise or lower this participant's hand.
    Hand {
        /// Protocol version.
        v: u32,
        /// Raised?
        raised: bool,
    },
    /// A moderator mutes another participant's tracks of one kind: the
    /// server stops forwarding them until their publisher unmutes.
    MuteParticipant {
        /// Protocol version.
        v: u32,
        /// Whom.
        participant: String,
        /// `audio` or `video`.
        kind: TrackKind,
    },
    /// A moderator removes another participant from the room.
    RemoveParticipant {
        /// Protocol version.
        v: u32,
        /// Whom.
        participant: String,
    },
}

/// What a published track shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// A camera or a microphone (the default).
    #[default]
    Camera,
    /// A shared screen, window or tab (`getDisplayMedia`): receivers get its
    /// best layer whenever they show it, and on stage it is outside last-N.
    Screen,
}

impl Content {
    /// The default: left out of `source_added`.
    pub fn is_camera(&self) -> bool {
        *self == Content::Camera
    }
}

/// The kind of a participant's tracks a moderator mutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Microphones.
    Audio,
    /// Cameras and shared screens.
    Video,
}

/// Largest `endpoint_message` `data`, in bytes of JSON.
pub const MAX_ENDPOINT_DATA: usize = 2048;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 1000;

/// A chat message as the server passes it on (and keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChatLine {
    /// Sender's participant id.
    pub from: String,
    /// Sender's display name.
    pub name: String,
    /// The text, as sent.
    pub text: String,
}

/// A remote participant as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantInfo {
    /// Participant id (server-assigned).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Their published sources.
    pub sources: Vec<SourceInfo>,
    /// Their room token made them a moderator (absent: not).
    #[serde(skip_serializing_if = "is_false")]
    pub moderator: bool,
    /// Their hand is raised (absent: not).
    #[serde(skip_serializing_if = "is_false")]
    pub hand_raised: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Source id (server-assigned, stable for the track's life).
    pub id: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Muted by its publisher.
    pub muted: bool,
    /// `screen` for a shared screen (absent: a camera or microphone).
    #[serde(skip_serializing_if = "Content::is_camera")]
    pub content: Content,
    /// The `mid` of the m-line carrying it to this receiver, once negotiated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `join`.
    Joined {
        /// Protocol version.
        v: u32,
        /// Our participant id.
        id: String,
        /// Room name.
        room: String,
        /// Everyone else already there.
        participants: Vec<ParticipantInfo>,
        /// Send it in `resume` on a new connection to carry on as this
        /// participant after the connection dropped.
        resume_token: String,
        /// TURN servers with credentials for this participant, for its
        /// `RTCPeerConnection` (absent when the server has none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<crate::turn::IceServer>,
        /// The room's last room-wide chat messages, oldest first (absent
        /// when there are none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chat: Vec<ChatLine>,
        /// This participant's room token made it a moderator (absent: not).
        #[serde(skip_serializing_if = "is_false")]
        moderator: bool,
    },
    /// Reply to `resume`: this connection carries on as participant `id`;
    /// what the server sent while it was away follows.
    Resumed {
        /// Protocol version.
        v: u32,
        /// The participant id, as before.
        id: String,
        /// Fresh TURN credentials, as in `joined`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<crate::turn::IceServer>,
    },
    /// An SDP offer (the server adds or removes remote tracks).
    Offer {
        /// Protocol version.
        v: u32,
        /// The SDP.
        sdp: String,
    },
    /// The answer to the browser's offer.
    Answer {
        /// Protocol version.
        v: u32,
        /// The SDP.
        sdp: String,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Protocol version.
        v: u32,
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone left (their tracks are gone).
    ParticipantLeft {
        /// Protocol version.
        v: u32,
        /// Participant id.
        id: String,
    },
    /// A participant published a track.
    SourceAdded {
        /// Protocol version.
        v: u32,
        /// Publisher.
        participant: String,
        /// The track.
        source: SourceInfo,
    },
    /// A track was unpublished.
    SourceRemoved {
        /// Protocol version.
        v: u32,
        /// Publisher.
        participant: String,
        /// Source id.
        source: String,
    },
    /// A source this client cannot receive: its answer rejected the m-line
    /// the server offered it on (no codec in common). It is left out as if
    /// the client had not subscribed to it; a `subscribe` naming it tries
    /// again.
    SourceUnavailable {
        /// Protocol version.
        v: u32,
        /// Publisher.
        participant: String,
        /// Source id.
        source: String,
        /// Why, for people.
        reason: String,
    },
    /// Mute state of a remote track changed.
    MuteState {
        /// Protocol version.
        v: u32,
        /// Publisher.
        participant: String,
        /// Source id.
        source: String,
        /// Muted?
        muted: bool,
    },
    /// The loudest speaker changed.
    DominantSpeaker {
        /// Protocol version.
        v: u32,
        /// Participant id.
        participant: String,
    },
    /// A chat message from another participant.
    Chat {
        /// Protocol version.
        v: u32,
        /// Sender's participant id.
        from: String,
        /// Sender's display name.
        name: String,
        /// The text: show it as text.
        text: String,
        /// Sent to this participant alone.
        private: bool,
    },
    /// Another participant's endpoint message.
    EndpointMessage {
        /// Protocol version.
        v: u32,
        /// Sender's participant id.
        from: String,
        /// The value, as sent.
        data: serde_json::Value,
        /// Sent to this participant alone.
        private: bool,
    },
    /// A participant raised or lowered their hand.
    Hand {
        /// Protocol version.
        v: u32,
        /// Whose.
        participant: String,
        /// Raised?
        raised: bool,
    },
    /// A moderator muted this participant's track on m-line `mid`: the
    /// server no longer forwards it; mute the track, and `mute` it with
    /// `muted: false` to be heard (or seen) again.
    ForceMuted {
        /// Protocol version.
        v: u32,
        /// The moderator's participant id.
        by: String,
        /// Their display name.
        name: String,
        /// `audio` or `video`.
        kind: TrackKind,
        /// The muted track's m-line in this participant's offer.
        mid: String,
    },
    /// A moderator removed this participant from the room: the server
    /// closes the connection (1000) and the participant is gone; do not
    /// `resume`.
    Removed {
        /// Protocol version.
        v: u32,
        /// The moderator's participant id.
        by: String,
        /// Their display name.
        name: String,
    },
    /// Reply to `ping`.
    Pong {
        /// Protocol version.
        v: u32,
    },
    /// The server is shutting down: the call goes on for at most
    /// `within_s` seconds, then the server closes the socket with code 1001.
    GoingAway {
        /// Protocol version.
        v: u32,
        /// Why, for people.
        reason: String,
        /// Seconds until the server ends the call at the latest.
        within_s: u64,
    },
    /// This participant's media session is gone (the media bridge carrying
    /// it was lost, or is being emptied): close the peer connection, forget
    /// the sources learned so far (they are announced again), make a new
    /// peer connection and `offer`, on this same signalling connection.
    /// Participant id, room and participants stay.
    MediaMoved {
        /// Protocol version.
        v: u32,
        /// Why, for people.
        reason: String,
    },
    /// Another server of the cluster holds the room: connect to `url` and
    /// `join` there. The connection is closed.
    Redirect {
        /// Protocol version.
        v: u32,
        /// The room asked for.
        room: String,
        /// The id of the server (shard) that holds it.
        shard: String,
        /// Its signalling URL.
        url: String,
    },
    /// A request was refused.
    Error {
        /// Protocol version.
        v: u32,
        /// Stable code.
        code: ErrorCode,
        /// Detail for humans.
        message: String,
    },
}

impl ServerMessage {
    /// The error message for a protocol error.
    pub fn error(e: &ProtocolError) -> ServerMessage {
        ServerMessage::Error {
            v: VERSION,
            code: e.code,
            message: e.message.clone(),
        }
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail (no maps with non-string keys,
        // no floats); fall back to a fixed error just in case.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","v":1,"code":"internal","message":"serialisation"}"#.into()
        })
    }
}

const KNOWN: [&str; 14] = [
    "join",
    "resume",
    "offer",
    "answer",
    "subscribe",
    "constraints",
    "mute",
    "ping",
    "leave",
    "chat",
    "endpoint_message",
    "hand",
    "mute_participant",
    "remove_participant",
];

impl ClientMessage {
    /// Parses and validates one text frame.
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        if text.len() > MAX_MESSAGE {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!("message over {MAX_MESSAGE} bytes"),
            ));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ProtocolError::new(ErrorCode::BadJson, clip(&e.to_string())))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ProtocolError::new(ErrorCode::BadJson, "not a JSON object"))?;
        match obj.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(ProtocolError::new(
                    ErrorCode::UnsupportedVersion,
                    format!("version {v}; this server speaks 1"),
                ));
            }
            None => {
                return Err(ProtocolError::new(
                    ErrorCode::UnsupportedVersion,
                    "missing \"v\"",
                ));
            }
        }
        let kind = obj
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_string();
        if !KNOWN.contains(&kind.as_str()) {
            return Err(ProtocolError::new(
                ErrorCode::UnknownMessage,
                clip(&format!("unknown message type {kind:?}")),
            ));
        }
        let msg: ClientMessage = serde_json::from_value(value).map_err(|e| {
            ProtocolError::new(ErrorCode::BadMessage, clip(&format!("{kind}: {e}")))
        })?;
        msg.validate()?;
        Ok(msg)
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |m: &str| Err(ProtocolError::new(ErrorCode::InvalidValue, m));
        match self {
            ClientMessage::Join {
                room, name, region, ..
            } => {
                if !valid_room(room) {
                    return bad("room: 1–64 of A–Z a–z 0–9 - _ .");
                }
                if region.as_deref().is_some_and(|r| !valid_room(r)) {
                    return bad("region: 1–64 of A–Z a–z 0–9 - _ .");
                }
                let chars = name.chars().count();
                if !(1..=64).contains(&chars) || name.chars().any(char::is_control) {
                    return bad("name: 1–64 printable characters");
                }
            }
            ClientMessage::Constraints {
                max_height,
                selected,
                on_stage,
                ..
            } if max_height.len() > 256 || selected.len() > 256 || on_stage.len() > 256 => {
                return bad("too many sources");
            }
            ClientMessage::Subscribe { sources, .. } if sources.len() > 256 => {
                return bad("too many sources");
            }
            ClientMessage::Chat { text, to, .. } => {
                let chars = text.chars().count();
                if !(1..=MAX_CHAT_CHARS).contains(&chars)
                    || text
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\t')
                {
                    return bad(
                        "text: 1–1000 characters, no control characters but newline and tab",
                    );
                }
                if to.as_ref().is_some_and(|t| t.is_empty() || t.len() > 32) {
                    return bad("to: a participant id");
                }
            }
            ClientMessage::EndpointMessage { data, to, .. } => {
                if data.to_string().len() > MAX_ENDPOINT_DATA {
                    return bad("data: at most 2048 bytes of JSON");
                }
                if to.as_ref().is_some_and(|t| t.is_empty() || t.len() > 32) {
                    return bad("to: a participant id");
                }
            }
            ClientMessage::Offer { content, .. } if content.len() > 32 => {
                return bad("content: at most 32 m-lines");
            }
            ClientMessage::MuteParticipant { participant, .. }
            | ClientMessage::RemoveParticipant { participant, .. }
                if participant.is_empty() || participant.len() > 32 =>
            {
                return bad("participant: a participant id");
            }
            _ => {}
        }
        Ok(())
    }
}

/// Longest error detail sent back: errors never echo large input.
pub const MAX_ERROR_DETAIL: usize = 200;

/// `text` cut to [`MAX_ERROR_DETAIL`] bytes (at a character boundary), with
/// `…` when cut.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_ERROR_DETAIL {
        return text.to_string();
    }
    let mut end = MAX_ERROR_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A room name: 1–64 of A–Z a–z 0–9 `-` `_` `.`.
pub fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_message() {
        let cases = [
            r#"{"v":1,"type":"join","room":"standup","name":"Ada"}"#,
            r#"{"v":1,"type":"join","room":"a.b-c_1","name":"Ada L.","token":"x.y.z"}"#,
            r#"{"v":1,"type":"offer","sdp":"v=0..."}"#,
            r#"{"v":1,"type":"answer","sdp":"v=0..."}"#,
            r#"{"v":1,"type":"subscribe","sources":["s1","s2"]}"#,
            r#"{"v":1,"type":"constraints","max_height":{"s1":180,"s2":0}}"#,
            r#"{"v":1,"type":"mute","mid":"0","muted":true}"#,
            r#"{"v":1,"type":"ping"}"#,
            r#"{"v":1,"type":"leave"}"#,
            r#"{"v":1,"type":"chat","text":"hi <b>all</b>\nsecond line"}"#,
            r#"{"v":1,"type":"chat","text":"psst","to":"p12"}"#,
            r#"{"v":1,"type":"resume","token":"0123456789abcdef0123456789abcdef"}"#,
            r#"{"v":1,"type":"offer","sdp":"v=0...","content":{"2":"screen","0":"camera"}}"#,
            r#"{"v":1,"type":"hand","raised":true}"#,
            r#"{"v":1,"type":"endpoint_message","data":{"reaction":"+1"}}"#,
            r#"{"v":1,"type":"endpoint_message","data":[1,2],"to":"p4"}"#,
            r#"{"v":1,"type":"mute_participant","participant":"p3","kind":"video"}"#,
            r#"{"v":1,"type":"remove_participant","participant":"p3"}"#,
        ];
        for c in cases {
            ClientMessage::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
        }
    }

    #[test]
    fn errors_have_stable_codes() {
        let code = |t: &str| ClientMessage::parse(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":"ping"}"#), ErrorCode::UnsupportedVersion);
        assert_eq!(
            code(r#"{"v":2,"type":"ping"}"#),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(code(r#"{"v":1,"type":"dance"}"#), ErrorCode::UnknownMessage);
        assert_eq!(
            code(r#"{"v":1,"type":"mute_participant","participant":"p3","kind":"screen"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"v":1,"type":"remove_participant","participant":""}"#),
            ErrorCode::InvalidValue
        );
        let big = format!(
            r#"{{"v":1,"type":"endpoint_message","data":"{}"}}"#,
            "x".repeat(3000)
        );
        assert_eq!(code(&big), ErrorCode::InvalidValue);
        assert_eq!(code(r#"{"v":1}"#), ErrorCode::UnknownMessage);
        assert_eq!(
            code(r#"{"v":1,"type":"join","room":"x"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"v":1,"type":"ping","extra":1}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"v":1,"type":"join","room":"a b","name":"x"}"#),
            ErrorCode::InvalidValue
        );
        assert_eq!(
            code(r#"{"v":1,"type":"join","room":"r","name":""}"#),
            ErrorCode::InvalidValue
        );
        let big = format!(
            r#"{{"v":1,"type":"offer","sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE)
        );
        assert_eq!(code(&big), ErrorCode::TooLarge);
    }

    #[test]
    fn errors_never_echo_large_input() {
        let long = "é".repeat(30_000);
        for text in [
            format!(r#"{{"v":1,"type":"{long}"}}"#),
            format!(r#"{{"v":1,"type":"ping","{long}":1}}"#),
            format!(r#"{{"v":1,"type":"join","room":1,"name":"{long}"}}"#),
            format!(r#"{{"v":1,"type":"mute","mid":"0","muted":"{long}"}}"#),
            format!("{{\"v\":1,\"{long}"),
        ] {
            let e = ClientMessage::parse(&text).unwrap_err();
            assert!(
                e.message.len() <= MAX_ERROR_DETAIL + 3,
                "{:?}: {} bytes",
                e.code,
                e.message.len()
            );
        }
    }

    #[test]
    fn server_messages_carry_type_and_version() {
        let m = ServerMessage::ParticipantLeft {
            v: VERSION,
            id: "p2".into(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"participant_left","v":1,"id":"p2"}"#
        );
        let e = ServerMessage::error(&ProtocolError::new(ErrorCode::BadSdp, "line 7"));
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","v":1,"code":"bad_sdp","message":"line 7"}"#
        );
    }
}
