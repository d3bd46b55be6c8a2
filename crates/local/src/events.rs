//! The local event bus: where EventBridge-shaped events go on one machine.
//!
//! Compute publishes "ECS Task State Change" events (and the Spot simulator its "EC2 Spot
//! Instance Interruption Warning") here; the runtime routes each to the handler an EventBridge
//! rule would (task-events), and keeps a JSON-lines log of every event (`events.jsonl` in the
//! work directory) so a user can see exactly what AWS would have sent.

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// Receives events. Publishing never blocks on the handler.
pub trait EventSink: Send + Sync {
    fn publish(&self, event: Value);
    /// Delivers `event` and resolves once its handler has run. For a notice that comes well
    /// ahead of what it announces on AWS (the two-minute Spot warning before the instance
    /// goes): handled before the events that follow it. By default, just published.
    fn deliver(&self, event: Value) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.publish(event);
        Box::pin(std::future::ready(()))
    }
}
