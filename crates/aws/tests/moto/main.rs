//! The AWS adapters against moto over HTTP: one `moto_server` per test, so tests are isolated
//! and run in parallel. See `../common/mod.rs` for how moto is found and started.

#[path = "../common/mod.rs"]
mod common;

mod capacity;
mod dynamo;
mod ecs;
mod entrypoint;
mod execution_events;
mod handlers;
mod s3;
mod service_linked_roles;
mod sfn;
