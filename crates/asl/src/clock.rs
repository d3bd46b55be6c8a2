//! Time for the engine: when a Wait state ends, when a retry fires, when a task times out, and
//! the timestamps written into the execution history.
//!
//! Two implementations of [`Clock`]:
//! - [`RealClock`] (the default) reads the system clock and sleeps with tokio timers.
//! - [`VirtualClock`] never sleeps: when every running branch of every execution on the engine
//!   is waiting on time, it jumps straight to the earliest pending deadline. Tests of Wait,
//!   Retry and timeouts then run in milliseconds, and the history timestamps follow the virtual
//!   time so backoff intervals can be asserted exactly.
//!
//! The engine tells the clock when a branch is doing work ([`Clock::work_started`]) and when it
//! is only waiting on time or on other branches ([`Clock::work_stopped`]); the real clock ignores
//! this, the virtual clock advances only when nothing is at work.
//!
//! Hosts on the virtual clock: a Task waiting for a task token counts as waiting, so if the
//! host answers from another tokio task (a container that "runs" and then calls
//! `send_task_success`), it must call [`Clock::work_started`] before handing the work off and
//! [`Clock::work_stopped`] after the callback — otherwise time may jump to the task's timeout
//! first. Host calls the engine awaits directly (Lambda invocations, service calls) are already
//! counted as work.

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// The engine's source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, as written into history events and `$$.State.EnteredTime`.
    fn now(&self) -> DateTime<Utc>;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
    /// One more branch is at work (running states, calling a host). Default: ignored.
    fn work_started(&self) {}
    /// One branch stopped working and now only waits (on time, a callback or child branches).
    fn work_stopped(&self) {}
}

/// Wall-clock time and tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

struct VirtualState {
    now: DateTime<Utc>,
    /// Branches at work. Signed so that an unbalanced stop can never wrap around.
    busy: i64,
    /// Bumped on every change, so the driver can tell "idle for a moment" from "idle".
    generation: u64,
    seq: u64,
    timers: BTreeMap<(DateTime<Utc>, u64), oneshot::Sender<()>>,
    driver_running: bool,
}

struct VirtualInner {
    state: Mutex<VirtualState>,
    notify: Notify,
}

/// A clock whose time only moves when everything is waiting on it.
///
/// Cheap to clone; clones share the same time.
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<VirtualInner>,
}

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        // A fixed, recognisable epoch makes virtual histories reproducible.
        let start = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_else(Utc::now);
        Self::starting_at(start)
    }
}

fn lock(m: &Mutex<VirtualState>) -> MutexGuard<'_, VirtualState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl VirtualClock {
    /// A virtual clock starting at 2024-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::default()
    }

    /// A virtual clock starting at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(VirtualInner {
                state: Mutex::new(VirtualState {
                    now: start,
                    busy: 0,
                    generation: 0,
                    seq: 0,
                    timers: BTreeMap::new(),
                    driver_running: false,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Moves time forward by hand (for hosts that drive time themselves); fires due timers.
    pub fn advance(&self, by: Duration) {
        let mut st = lock(&self.inner.state);
        let step = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        // Saturate rather than overflow on absurd steps.
        st.now = st.now.checked_add_signed(step).unwrap_or(st.now);
        let now = st.now;
        fire_due(&mut st, now);
    }

    fn ensure_driver(&self) {
        {
            let mut st = lock(&self.inner.state);
            if st.driver_running {
                return;
            }
            st.driver_running = true;
        }
        let weak = Arc::downgrade(&self.inner);
        // The driver is a detached task that only holds a weak reference, so it ends with the
        // clock. It is spawned lazily from inside a poll, so a runtime is always present.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(drive(weak));
        } else {
            lock(&self.inner.state).driver_running = false;
        }
    }
}

fn fire_due(st: &mut VirtualState, now: DateTime<Utc>) {
    while let Some(entry) = st.timers.first_entry() {
        if entry.key().0 > now {
            break;
        }
        let tx = entry.remove();
        let _ = tx.send(());
    }
    st.generation += 1;
}

async fn drive(weak: Weak<VirtualInner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        // Wake on any change, and poll now and then so a dropped clock ends the task.
        let _ = tokio::time::timeout(Duration::from_millis(50), inner.notify.notified()).await;
        loop {
            let generation = {
                let mut st = lock(&inner.state);
                st.timers.retain(|_, tx| !tx.is_closed());
                if st.busy > 0 || st.timers.is_empty() {
                    break;
                }
                st.generation
            };
            // Idle right now; make sure it stays idle while woken tasks get polled (a branch
            // that just finished hands over to its parent through the scheduler).
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            let mut st = lock(&inner.state);
            st.timers.retain(|_, tx| !tx.is_closed());
            if st.busy > 0 || st.generation != generation {
                continue;
            }
            let Some((&(deadline, _), _)) = st.timers.first_key_value() else {
                break;
            };
            if deadline > st.now {
                st.now = deadline;
            }
            let now = st.now;
            fire_due(&mut st, now);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.inner.state).now
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            let rx = {
                let mut st = lock(&this.inner.state);
                if deadline <= st.now {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                st.seq += 1;
                let seq = st.seq;
                st.timers.insert((deadline, seq), tx);
                st.generation += 1;
                rx
            };
            this.ensure_driver();
            this.inner.notify.notify_one();
            let _ = rx.await;
        })
    }

    fn work_started(&self) {
        let mut st = lock(&self.inner.state);
        st.busy += 1;
        st.generation += 1;
    }

    fn work_stopped(&self) {
        let idle = {
            let mut st = lock(&self.inner.state);
            st.busy -= 1;
            st.generation += 1;
            st.busy <= 0
        };
        if idle {
            self.inner.notify.notify_one();
        }
    }
}

/// Work handed from one side to another: counts as one branch at work from its making until
/// it is dropped. A task-token callback carries one to the waiting Task state, which drops it
/// only once it runs again, so the virtual clock cannot jump to the Task's timeout between the
/// callback and the moment the Task state is next polled (however late that is on a loaded
/// machine). Dropped unread (the waiting state is gone), it still ends the work.
pub(crate) struct WorkMark {
    clock: Arc<dyn Clock>,
}

impl WorkMark {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        clock.work_started();
        Self { clock }
    }
}

impl Drop for WorkMark {
    fn drop(&mut self) {
        self.clock.work_stopped();
    }
}

impl std::fmt::Debug for WorkMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkMark")
    }
}

/// Marks a branch as at work on the clock for as long as it lives.
pub(crate) struct WorkGuard {
    clock: Arc<dyn Clock>,
    working: bool,
}

impl WorkGuard {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        clock.work_started();
        Self {
            clock,
            working: true,
        }
    }

    /// Runs `fut` while this branch counts as idle (waiting on time, callbacks or children).
    pub(crate) async fn idle<F: std::future::Future>(&mut self, fut: F) -> F::Output {
        if self.working {
            self.clock.work_stopped();
            self.working = false;
        }
        let out = fut.await;
        self.clock.work_started();
        self.working = true;
        out
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.working {
            self.clock.work_stopped();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleep_jumps_to_deadline() {
        let clock = VirtualClock::new();
        let start = clock.now();
        let t = std::time::Instant::now();
        clock
            .sleep_until(start + chrono::Duration::seconds(3600))
            .await;
        assert_eq!(clock.now() - start, chrono::Duration::seconds(3600));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// Work handed over with a mark holds time still until the mark is dropped, even with
    /// nobody else at work and a deadline pending.
    #[tokio::test]
    async fn a_work_mark_holds_time_until_dropped() {
        let clock = Arc::new(VirtualClock::new());
        let start = clock.now();
        let mark = WorkMark::new(clock.clone());
        let c2 = clock.clone();
        let sleeper = tokio::spawn(async move {
            c2.sleep_until(start + chrono::Duration::seconds(10)).await;
        });
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(clock.now(), start, "time moved while the mark was held");
        drop(mark);
        sleeper.await.unwrap();
        assert_eq!(clock.now() - start, chrono::Duration::seconds(10));
    }

    #[tokio::test]
    async fn virtual_clock_waits_while_busy() {
        let clock = Arc::new(VirtualClock::new());
        let start = clock.now();
        let guard = WorkGuard::new(clock.clone());
        let c2 = clock.clone();
        let sleeper = tokio::spawn(async move {
            c2.sleep_until(start + chrono::Duration::seconds(10)).await;
            c2.now()
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Someone is working, so time must not have moved.
        assert_eq!(clock.now(), start);
        drop(guard);
        let woke = sleeper.await.unwrap_or(start);
        assert_eq!(woke - start, chrono::Duration::seconds(10));
    }
}
