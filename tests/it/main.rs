//! Integration tests: the real server on 127.0.0.1 with real clients.
//!
//! One test binary (fast to link on small machines); one module per concern.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod api;
mod audit;
mod audit_api;
mod audit_crash;
mod audit_tamper;
mod authzen;
mod authzen_batch;
mod authzen_search;
mod bad_input;
mod bad_input_cases;
mod bad_input_requests;
mod ca_cli;
mod ca_est;
mod cli;
mod common;
mod faults;
mod metrics;
mod openapi;
mod policy_pack;
mod readme;
mod reload;
mod tidy;
mod tls;
mod tls_limits;
mod tls_reload;
mod tls_tools;
