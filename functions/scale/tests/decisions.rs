//! What scale decides, against in-memory ports that refuse any call outside its PORT_CALLS:
//! a lease is acquired idempotently and released on every path, a release without a lease is
//! harmless, and an acquire without slots is bad input.

use sluice_core::JobId;
use sluice_core::testing::World;
use sluice_fn_scale::{Action, ScaleInput, handle};

fn input(action: Action, job: &str, slots: Option<u32>) -> ScaleInput {
    ScaleInput {
        action,
        job_id: JobId::new(job).unwrap(),
        slots,
    }
}

#[tokio::test]
async fn leases_are_acquired_once_and_released_on_every_path() {
    let w = World::declared(sluice_fn_scale::PORT_CALLS);
    let a = handle(&w.services, input(Action::Acquire, "a", Some(6)))
        .await
        .unwrap();
    let again = handle(&w.services, input(Action::Acquire, "a", Some(6)))
        .await
        .unwrap();
    assert_eq!((a.desired_slots, a.active_leases), (6, 1));
    assert_eq!(again, a, "a retried acquire changes nothing");
    handle(&w.services, input(Action::Acquire, "b", Some(2)))
        .await
        .unwrap();
    let released = handle(&w.services, input(Action::Release, "a", None))
        .await
        .unwrap();
    assert_eq!(
        (released.desired_slots, released.active_leases),
        (2, 1),
        "b keeps its share"
    );
    let twice = handle(&w.services, input(Action::Release, "a", None))
        .await
        .unwrap();
    assert_eq!(twice, released, "releasing twice is harmless");
}

#[tokio::test]
async fn an_acquire_without_slots_is_bad_input() {
    let w = World::declared(sluice_fn_scale::PORT_CALLS);
    for slots in [None, Some(0)] {
        let err = handle(&w.services, input(Action::Acquire, "a", slots))
            .await
            .unwrap_err();
        assert_eq!(err.name, sluice_core::ErrorName::InvalidInput);
    }
    assert!(w.capacity.leases.lock().unwrap().is_empty());
}
