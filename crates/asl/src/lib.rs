//! sluice-asl: an Amazon States Language engine that behaves like AWS Step Functions.
//!
//! The pipeline's state machines (`statemachines/*.asl.json`) run on AWS Step Functions at scale
//! and on this engine on one machine. The crate is laid out like an interpreter:
//! parse → typed model → evaluate, one concept per module.
//!
//! - [`error`]: `States.*` error names and [`error::StatesError`].
//! - [`data`]: reference paths / JSONPath, payload templates, intrinsic functions, Choice rules.
//! - [`validate`]: static validation of a definition, with AWS-style locations.
//! - [`items`]: ItemReader content (JSON, JSONL, CSV) and ItemBatcher.
//! - [`mock`]: Step Functions Local mock configuration (`SFN_MOCK_CONFIG`).

pub mod data;
pub mod error;
pub mod validate;

pub use error::StatesError;
pub mod items;
pub mod mock;
