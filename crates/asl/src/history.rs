//! Execution history in the shape of AWS `GetExecutionHistory`.
//!
//! Every execution records events as it runs (`ExecutionStarted`, `PassStateEntered`,
//! `TaskScheduled`, `MapIterationSucceeded`, ...). Each event has a sequential `id`, the
//! `previousEventId` of the event that led to it (the previous event on the same branch, as in
//! AWS, so Parallel branches and Map iterations form chains of their own), a timestamp from the
//! engine's clock, and a `<type>EventDetails` object with AWS's field names.
//!
//! Events go to the host's [`HistorySink`] the moment they happen (so a host can persist them)
//! and are kept on the execution for [`crate::ExecutionHandle::history`] — unless the host said
//! it does not want them kept ([`crate::EngineConfig::keep_history`]) and has no sink. Then
//! only the event ids advance (the `previousEventId` chains stay right) and no event detail is
//! ever built: a detail carries the state's whole input or output as a JSON string, so building
//! details nobody reads is most of the cost of a large Map.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub timestamp: DateTime<Utc>,
    /// `ExecutionStarted`, `TaskStateEntered`, ...
    pub event_type: String,
    pub id: u64,
    pub previous_event_id: u64,
    /// The `<type>EventDetails` key and object, e.g. `("stateEnteredEventDetails", {...})`.
    pub details: Option<(String, Value)>,
}

impl HistoryEvent {
    /// The AWS JSON form: `{"timestamp","type","id","previousEventId","<x>EventDetails"}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "timestamp".into(),
            Value::String(self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        m.insert("type".into(), Value::String(self.event_type.clone()));
        m.insert("id".into(), Value::from(self.id));
        m.insert(
            "previousEventId".into(),
            Value::from(self.previous_event_id),
        );
        if let Some((k, v)) = &self.details {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    /// The detail object, if any.
    pub fn detail(&self) -> Option<&Value> {
        self.details.as_ref().map(|(_, v)| v)
    }
}

impl Serialize for HistoryEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Receives history events as they are recorded, e.g. to persist them.
pub trait HistorySink: Send + Sync {
    fn record(&self, execution_arn: &str, event: &HistoryEvent);
}

/// An event's `<type>EventDetails`, given either as a value or as a closure that builds it only
/// when somebody will read it (see [`HistoryLog::wants_details`]).
pub(crate) trait Details {
    fn build(self) -> Option<(&'static str, Value)>;
}

impl Details for Option<(&'static str, Value)> {
    fn build(self) -> Option<(&'static str, Value)> {
        self
    }
}

impl<F: FnOnce() -> Option<(&'static str, Value)>> Details for F {
    fn build(self) -> Option<(&'static str, Value)> {
        self()
    }
}

/// The events of one execution, recorded as they happen.
pub(crate) struct HistoryLog {
    execution_arn: String,
    /// Kept events (empty when `keep` is false).
    events: Mutex<Vec<HistoryEvent>>,
    /// Ids handed out so far: the last event's id.
    last_id: AtomicU64,
    keep: bool,
    sink: Option<Arc<dyn HistorySink>>,
}

impl HistoryLog {
    /// A log whose next event gets id `last_id + 1` (0 for a new execution; a restored one
    /// continues its persisted history).
    pub(crate) fn new(
        execution_arn: String,
        sink: Option<Arc<dyn HistorySink>>,
        keep: bool,
        last_id: u64,
    ) -> Self {
        Self {
            execution_arn,
            events: Mutex::new(Vec::new()),
            last_id: AtomicU64::new(last_id),
            keep,
            sink,
        }
    }

    /// Whether events are read by anyone (kept or sent to a sink).
    pub(crate) fn wants_details(&self) -> bool {
        self.keep || self.sink.is_some()
    }

    /// Appends an event; returns its id.
    pub(crate) fn record(
        &self,
        timestamp: DateTime<Utc>,
        event_type: &str,
        previous_event_id: u64,
        details: impl Details,
    ) -> u64 {
        if !self.wants_details() {
            return self.last_id.fetch_add(1, Ordering::SeqCst) + 1;
        }
        let details = details.build();
        let event = {
            // Ids are assigned under the lock so that kept events are in id order.
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            let event = HistoryEvent {
                timestamp,
                event_type: event_type.to_string(),
                id: self.last_id.fetch_add(1, Ordering::SeqCst) + 1,
                previous_event_id,
                details: details.map(|(k, v)| (k.to_string(), v)),
            };
            if self.keep {
                events.push(event.clone());
            }
            event
        };
        if let Some(sink) = &self.sink {
            sink.record(&self.execution_arn, &event);
        }
        event.id
    }

    /// The id of the last event recorded (0 before the first).
    pub(crate) fn last_id(&self) -> u64 {
        self.last_id.load(Ordering::SeqCst)
    }

    /// The kept events (none when the engine keeps no history).
    pub(crate) fn events(&self) -> Vec<HistoryEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serialises a payload the way history details carry it: as a JSON string.
pub(crate) fn payload(v: &Value) -> Value {
    Value::String(v.to_string())
}

pub(crate) fn not_truncated() -> Value {
    json!({ "truncated": false })
}

/// `stateEnteredEventDetails`.
pub(crate) fn state_entered(name: &str, input: &Value) -> (&'static str, Value) {
    (
        "stateEnteredEventDetails",
        json!({ "name": name, "input": payload(input), "inputDetails": not_truncated() }),
    )
}

/// `stateExitedEventDetails`.
pub(crate) fn state_exited(name: &str, output: &Value) -> (&'static str, Value) {
    (
        "stateExitedEventDetails",
        json!({ "name": name, "output": payload(output), "outputDetails": not_truncated() }),
    )
}
