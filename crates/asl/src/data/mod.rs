//! Data processing: everything an execution does to JSON between states — reference paths and
//! JSONPath queries, payload templates (`.$` keys, `$$` context), intrinsic functions and Choice
//! rules. Pure functions over `serde_json::Value`; no I/O, no clock.

pub mod choice;
pub mod intrinsics;
pub mod path;
pub mod template;
