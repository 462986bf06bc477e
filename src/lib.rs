//! medpdp: a policy decision service and small certificate authority for 5G healthcare.
//!
//! # Layout
//! - [`policy`]: workspaces of Cedar files, loaded into validated immutable snapshots and swapped
//!   atomically on reload.
//! - [`decide`]: evaluation of one request against one snapshot; pure, fail-closed.
//! - [`http`]: the JSON API (axum).
//! - [`identity`]: who is calling, from a verified client certificate.
//! - [`tls`]: the API listener's TLS material, hot-reloaded, and the caller in a certificate.
//! - [`ca`]: certificate authority primitives and the first-run development PKI.
//! - [`policytest`]: policy test cases as data, run with coverage (`medpdp test`).
//! - [`audit`]: the tamper-evident decision log, the versions archive, verify and replay.
//! - [`metrics`]: Prometheus metrics (`GET /metrics`).
//! - [`server`]: wiring the pieces into a running service.
//! - [`config`]: configuration from file, environment and flags.
//! - [`cli`]: the `medpdp` command line.
//!
//! `ARCHITECTURE.md` at the repository root has the code map and the invariants.
#![forbid(unsafe_code)]

// The benchmark generators that the unit tests share (`benches/`) name this crate `medpdp`.
#[cfg(test)]
extern crate self as medpdp;

pub mod audit;
pub mod ca;
pub mod cli;
pub mod config;
pub mod decide;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod policy;
pub mod policytest;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
