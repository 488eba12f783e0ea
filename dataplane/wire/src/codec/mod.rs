//! Video payload headers the SFU reads for layer selection and keyframe
//! detection, and rewrites to keep picture numbering continuous.

mod h264;
mod vp8;
mod vp9;

pub use h264::{H264Packetization, H264Payload};
pub use vp8::Vp8Descriptor;
pub use vp9::Vp9Descriptor;
