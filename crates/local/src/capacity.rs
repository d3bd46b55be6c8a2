//! The local process pool and its capacity leases: the laptop's stand-in for an ECS cluster.
//!
//! A job's lease asks for `slots` task slots; the pool runs at most
//! min(sum of active leases, the machine's limit) processes at once. Launches beyond that wait
//! in the pool like ECS tasks waiting for capacity. With no lease held, nothing runs — exactly
//! as a cluster scaled to zero.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sluice_core::model::Lease;
use sluice_core::ports::{CapacityPool, CapacityStatus};
use sluice_core::{JobId, StoreError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

use crate::store::SqliteJobStore;

/// Counts running processes against a limit that leases move up and down, and hands freed
/// slots to waiting launches first come, first served.
///
/// First come, first served is what bounds how long a launched attempt waits: with `ahead`
/// attempts waiting for `slots` slots, each slot running one attempt for at most its timeout,
/// the newest waits for at most `ceil(ahead / slots)` runs (the plan gives its Task state that
/// much extra time). A freed slot wakes exactly the launch it goes to, not every waiter.
#[derive(Debug, Default)]
pub struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    running: u32,
    limit: u32,
    /// Launches waiting for a slot, oldest first. A slot is handed over as a [`SlotGuard`]:
    /// a waiter that gave up (its receiver dropped) gives it straight back.
    waiting: VecDeque<oneshot::Sender<SlotGuard>>,
}

impl Slots {
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SlotState {
                limit,
                ..SlotState::default()
            }),
        })
    }

    pub fn set_limit(self: &Arc<Self>, limit: u32) {
        let mut granted = Vec::new();
        if let Ok(mut s) = self.state.lock() {
            s.limit = limit;
            while s.running < s.limit {
                let Some(waiter) = s.waiting.pop_front() else {
                    break;
                };
                s.running += 1;
                granted.push(waiter);
            }
        }
        // Sent with the lock released: a waiter that has gone drops its guard, which frees
        // the slot again through `release`.
        for waiter in granted {
            let _ = waiter.send(SlotGuard::new(self));
        }
    }

    /// (running, limit)
    pub fn snapshot(&self) -> (u32, u32) {
        self.state
            .lock()
            .map(|s| (s.running, s.limit))
            .unwrap_or((0, 0))
    }

    /// Wait for a free slot and take it; the guard gives it back.
    pub async fn acquire(self: &Arc<Self>) -> SlotGuard {
        loop {
            let rx = {
                let Ok(mut s) = self.state.lock() else {
                    // A poisoned count cannot be trusted to limit anything: run unthrottled
                    // rather than hang every launch.
                    return SlotGuard::new(self);
                };
                if s.running < s.limit && s.waiting.is_empty() {
                    s.running += 1;
                    return SlotGuard::new(self);
                }
                let (tx, rx) = oneshot::channel();
                s.waiting.push_back(tx);
                rx
            };
            // The sender lives in `waiting` until it is sent: an error only if it was dropped
            // unsent, and then asking again is right.
            if let Ok(guard) = rx.await {
                return guard;
            }
        }
    }

    /// A slot came free: hand it to the oldest waiter still waiting, or count it free.
    fn release(self: &Arc<Self>) {
        loop {
            let waiter = {
                let Ok(mut s) = self.state.lock() else {
                    return;
                };
                let waiter = if s.running > s.limit {
                    None // the limit went down: this slot is not given again
                } else {
                    s.waiting.pop_front()
                };
                match waiter {
                    Some(w) => w,
                    None => {
                        s.running = s.running.saturating_sub(1);
                        return;
                    }
                }
            };
            let guard = SlotGuard::new(self);
            match waiter.send(guard) {
                Ok(()) => return,
                // That waiter gave up: the next one gets the slot. The returned guard is
                // disarmed, or its Drop would release the slot a second time.
                Err(mut guard) => {
                    guard.slots.take();
                }
            }
        }
    }
}

/// A taken slot, returned on drop.
#[derive(Debug)]
pub struct SlotGuard {
    /// `None` once disarmed (a hand-off that found its waiter gone).
    slots: Option<Arc<Slots>>,
}

impl SlotGuard {
    fn new(slots: &Arc<Slots>) -> Self {
        Self {
            slots: Some(Arc::clone(slots)),
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

/// Leases in the job table; the pool limit follows them.
pub struct LocalCapacity {
    store: SqliteJobStore,
    slots: Arc<Slots>,
    /// The most processes this machine runs at once, whatever the leases ask.
    max_slots: u32,
}

impl LocalCapacity {
    pub fn new(store: SqliteJobStore, slots: Arc<Slots>, max_slots: u32) -> Self {
        Self {
            store,
            slots,
            max_slots: max_slots.max(1),
        }
    }

    fn resize(&self) -> Result<CapacityStatus, StoreError> {
        let (sum, leases) = self.store.lease_totals()?;
        let desired = sum.min(u64::from(self.max_slots)) as u32;
        self.slots.set_limit(desired);
        Ok(CapacityStatus {
            desired_slots: desired,
            active_leases: leases,
        })
    }
}

#[async_trait]
impl CapacityPool for LocalCapacity {
    async fn acquire(&self, lease: &Lease) -> Result<CapacityStatus, StoreError> {
        self.store.put_lease(lease)?;
        self.resize()
    }

    async fn release(
        &self,
        job: &JobId,
        acquired_by: Option<DateTime<Utc>>,
    ) -> Result<CapacityStatus, StoreError> {
        self.store.delete_lease(job, acquired_by)?;
        self.resize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_jobs_release_keeps_anothers_capacity() {
        let store = SqliteJobStore::in_memory().unwrap();
        let slots = Slots::new(0);
        let cap = LocalCapacity::new(store, slots.clone(), 8);
        let now = chrono::Utc::now();
        let a = JobId::new("a").unwrap();
        let b = JobId::new("b").unwrap();
        cap.acquire(&Lease {
            job_id: a.clone(),
            slots: 3,
            acquired_at: now,
        })
        .await
        .unwrap();
        let s = cap
            .acquire(&Lease {
                job_id: b.clone(),
                slots: 4,
                acquired_at: now,
            })
            .await
            .unwrap();
        assert_eq!((s.desired_slots, s.active_leases), (7, 2));
        // Acquiring twice is idempotent.
        let s = cap
            .acquire(&Lease {
                job_id: b.clone(),
                slots: 4,
                acquired_at: now,
            })
            .await
            .unwrap();
        assert_eq!(s.desired_slots, 7);
        let s = cap.release(&a, None).await.unwrap();
        assert_eq!((s.desired_slots, s.active_leases), (4, 1));
        assert_eq!(slots.snapshot().1, 4);
        let s = cap.release(&a, None).await.unwrap();
        assert_eq!(s.desired_slots, 4);
        let s = cap.release(&b, None).await.unwrap();
        assert_eq!(s.desired_slots, 0);
    }

    #[tokio::test]
    async fn leases_keep_the_capacity_contract() {
        let slots = Slots::new(0);
        let cap = LocalCapacity::new(SqliteJobStore::in_memory().unwrap(), slots, 8);
        sluice_core::testing::contract::capacity(&cap, "sqlite").await;
    }

    #[tokio::test]
    async fn pool_waits_for_capacity() {
        let slots = Slots::new(1);
        let first = slots.acquire().await;
        let s2 = slots.clone();
        let waiter = tokio::spawn(async move { s2.acquire().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "second launch must wait for a slot");
        drop(first);
        let _second = tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(slots.snapshot(), (1, 1));
    }

    /// Launches take freed slots in the order they came: the wait of a launched attempt is
    /// bounded by the ones ahead of it, never by luck.
    #[tokio::test]
    async fn freed_slots_go_to_the_oldest_waiter() {
        let slots = Slots::new(1);
        let first = slots.acquire().await;
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for i in 0..5 {
            let s = slots.clone();
            let tx = order_tx.clone();
            waiters.push(tokio::spawn(async move {
                let guard = s.acquire().await;
                tx.send(i).unwrap();
                tokio::task::yield_now().await;
                drop(guard);
            }));
            // Each waiter queues before the next is spawned.
            while slots.state.lock().unwrap().waiting.len() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for w in waiters {
            w.await.unwrap();
        }
        let mut got = Vec::new();
        while let Ok(i) = order.try_recv() {
            got.push(i);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(slots.snapshot(), (0, 1));
    }

    /// A launch that stops waiting (its task was stopped) does not take a slot with it.
    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_the_slot_on() {
        let slots = Slots::new(1);
        let first = slots.acquire().await;
        let s = slots.clone();
        let quitter = tokio::spawn(async move { s.acquire().await });
        while slots.state.lock().unwrap().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        let s = slots.clone();
        let patient = tokio::spawn(async move { s.acquire().await });
        while slots.state.lock().unwrap().waiting.len() < 2 {
            tokio::task::yield_now().await;
        }
        quitter.abort();
        let _ = quitter.await;
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(2), patient)
            .await
            .expect("the slot went to the waiter still waiting")
            .unwrap();
        assert_eq!(slots.snapshot(), (1, 1));
        drop(second);
        assert_eq!(slots.snapshot(), (0, 1));
    }

    /// A raised limit starts waiters at once; a lowered one takes effect as slots come free.
    #[tokio::test]
    async fn the_limit_moves_with_the_leases() {
        let slots = Slots::new(0);
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let s = slots.clone();
            waiters.push(tokio::spawn(async move { s.acquire().await }));
        }
        while slots.state.lock().unwrap().waiting.len() < 3 {
            tokio::task::yield_now().await;
        }
        slots.set_limit(2);
        assert_eq!(slots.snapshot(), (2, 2));
        let a = waiters.remove(0).await.unwrap();
        let b = waiters.remove(0).await.unwrap();
        slots.set_limit(1);
        drop(a);
        // Two were running against a limit of one: the freed slot is not given again.
        assert_eq!(slots.snapshot(), (1, 1));
        assert!(!waiters[0].is_finished());
        drop(b);
        let c = waiters.remove(0).await.unwrap();
        assert_eq!(slots.snapshot(), (1, 1));
        drop(c);
        assert_eq!(slots.snapshot(), (0, 1));
    }
}
