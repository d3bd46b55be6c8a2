//! Identifiers. Job and task ids end up in object keys, DynamoDB keys, Step Functions execution
//! names (≤ 80 chars of `[A-Za-z0-9-_]`) and ECS tags, so they are validated once, here, and a
//! hostile value (path traversal, control characters, overlong) can never get through.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{value}': {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    let err = |reason| IdError {
        kind,
        value: value.chars().take(100).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.len() > max {
        return Err(err("too long"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err("only letters, digits, '-' and '_' are allowed"));
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $kind:literal, $max:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value, $max)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

// A job id is also the Step Functions execution name, hence 80.
id_type!(JobId, "job id", 80);
// `<stage>_<item>`: a stage name (32) and a row's own id (64).
id_type!(TaskId, "task id", 100);
id_type!(PipelineName, "pipeline name", 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_hostile_ids() {
        for bad in ["", "../etc", "a/b", "a b", "x\u{0}", "é", &"a".repeat(81)] {
            assert!(JobId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(JobId::new("ber-0123abcd").unwrap().as_str(), "ber-0123abcd");
    }

    #[test]
    fn deserialization_validates() {
        let ok: TaskId = serde_json::from_str("\"t-001\"").unwrap();
        assert_eq!(ok.as_str(), "t-001");
        assert!(serde_json::from_str::<TaskId>("\"../x\"").is_err());
    }
}
