//! Data processing: everything an execution does to JSON between states — reference paths and
//! JSONPath queries, payload templates (`.$` keys, `$$` context), intrinsic functions and Choice
//! rules. Pure functions over `serde_json::Value`; no I/O, no clock.
//!
//! - [`path`]: Paths and Reference Paths (`$`, `$$`), `select`, `is_present`, ResultPath.
//! - [`template`]: payload templates (`Parameters`, `ItemSelector`, `ResultSelector`).
//! - [`intrinsics`]: `States.*` intrinsic functions — parser and evaluator.
//! - [`choice`]: Choice Rules — typed parse and evaluation.

pub mod choice;
pub mod intrinsics;
pub mod path;
pub mod template;
