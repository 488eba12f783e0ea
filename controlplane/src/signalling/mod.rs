//! Signalling protocol v1: JSON messages over one WebSocket per
//! participant. docs/signalling.md documents every message and error code.
//!
//! [`ClientMessage::parse`] turns a WebSocket text frame into a typed
//! message or a [`ProtocolError`] with a stable [`ErrorCode`]; every
//! [`ServerMessage`] serialises with the version field.

mod messages;

pub use messages::{
    ChatLine, ClientMessage, Content, ErrorCode, MAX_CHAT_CHARS, MAX_ENDPOINT_DATA,
    MAX_ERROR_DETAIL, MAX_MESSAGE, ParticipantInfo, ProtocolError, ServerMessage, SourceInfo,
    TrackKind, VERSION, clip, valid_room,
};
