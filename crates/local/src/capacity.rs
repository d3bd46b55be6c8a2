//! The local process pool and its capacity leases: the laptop's stand-in for an ECS cluster.
//!
//! A job's lease asks for `slots` task slots; the pool runs at most
//! min(sum of active leases, the machine's limit) processes at once. Launches beyond that wait
//! in the pool like ECS tasks waiting for capacity. With no lease held, nothing runs — exactly
//! as a cluster scaled to zero.

use async_trait::async_trait;
use sluice_core::model::Lease;
use sluice_core::ports::{CapacityPool, CapacityStatus};
use sluice_core::{JobId, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

use crate::store::SqliteJobStore;

/// Counts running processes against a limit that leases move up and down.
#[derive(Debug, Default)]
pub struct Slots {
    state: Mutex<(u32, u32)>, // (running, limit)
    changed: Notify,
}

impl Slots {
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((0, limit)),
            changed: Notify::new(),
        })
    }

    pub fn set_limit(&self, limit: u32) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = limit;
        }
        self.changed.notify_waiters();
    }

    /// (running, limit)
    pub fn snapshot(&self) -> (u32, u32) {
        self.state.lock().map(|s| *s).unwrap_or((0, 0))
    }

    /// Wait for a free slot and take it; the guard gives it back.
    pub async fn acquire(self: &Arc<Self>) -> SlotGuard {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Ok(mut s) = self.state.lock()
                && s.0 < s.1
            {
                s.0 += 1;
                return SlotGuard {
                    slots: Arc::clone(self),
                };
            }
            notified.await;
        }
    }
}

/// A taken slot, returned on drop.
pub struct SlotGuard {
    slots: Arc<Slots>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.state.lock() {
            s.0 = s.0.saturating_sub(1);
        }
        self.slots.changed.notify_waiters();
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

    async fn release(&self, job: &JobId) -> Result<CapacityStatus, StoreError> {
        self.store.delete_lease(job)?;
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
        let s = cap.release(&a).await.unwrap();
        assert_eq!((s.desired_slots, s.active_leases), (4, 1));
        assert_eq!(slots.snapshot().1, 4);
        let s = cap.release(&a).await.unwrap();
        assert_eq!(s.desired_slots, 4);
        let s = cap.release(&b).await.unwrap();
        assert_eq!(s.desired_slots, 0);
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
}
