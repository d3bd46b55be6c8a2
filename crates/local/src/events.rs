//! The local event bus: where EventBridge-shaped events go on one machine.
//!
//! Compute publishes "ECS Task State Change" events here; the runtime routes each to the
//! handler an EventBridge rule would (task-events), and keeps a JSON-lines log of every event
//! (`events.jsonl` in the work directory) so a user can see exactly what AWS would have sent.

use serde_json::Value;

/// Receives events. Publishing never blocks on the handler.
pub trait EventSink: Send + Sync {
    fn publish(&self, event: Value);
}
