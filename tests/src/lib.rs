//! Shared helpers for the integration tests in `tests/tests/`: a real axum server on a free
//! loopback port, an HTTP client with a cookie jar, a store wrapper that counts operations
//! and injects faults next to a real store, and the store-behaviour suite every store runs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // test support code

pub mod api_app;
pub mod app;
pub mod chromium;
pub mod concurrency;
pub mod counting;
pub mod csrf_suite;
pub mod flash_suite;
pub mod guarantees;
pub mod hardening;
pub mod inprocess;
pub mod logs;
pub mod migration;
pub mod redis_harness;
pub mod server;
pub mod session_api;
pub mod settle;
pub mod store_suite;

/// The code blocks of README.md, compiled and run as doc tests so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
