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
pub mod owner_store_suite;
pub mod owners_suite;
pub mod ports;
pub mod postgres_harness;
pub mod redis_harness;
pub mod redis_owners;
pub mod server;
pub mod session_api;
pub mod settle;
pub mod sql_stores;
pub mod store_suite;
pub mod temp;

/// The code blocks of README.md, compiled and run as doc tests so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Every shared suite a server-side store runs, each in a module of its own, from one
/// setup that makes `(guard, store)`: the store contract, the owner index (store
/// level, and over HTTP against the `devices` example), the request-lifecycle
/// guarantees, the hardening cases, the handler API (and the API outside a request), the
/// migration suite (through `Counting`) and the concurrency suite. A store's test file
/// invokes it once and adds what is particular to its store; `concurrency:` names another
/// setup for the concurrency suite (a store whose own timeouts a loaded machine cannot reach,
/// as its layer's is: that suite counts lost updates and errors, not speed).
#[macro_export]
macro_rules! server_store_suites {
    (guarded: $setup:expr) => {
        $crate::server_store_suites!(guarded: $setup, concurrency: $setup);
    };
    (guarded: $setup:expr, concurrency: $patient:expr) => {
        mod store {
            $crate::store_suite!(guarded: $setup);
        }
        mod owner_store {
            $crate::owner_store_suite!(guarded: $setup);
        }
        mod owners {
            $crate::owners_suite!(guarded: $setup);
        }
        mod http {
            $crate::guarantee_suite!(guarded: $setup);
        }
        mod hardening {
            $crate::hardening_suite!(guarded: $setup);
        }
        mod session_api {
            $crate::session_api_suite!($crate::session_api::Kind::ServerSide, guarded: $setup);
        }
        mod server_api {
            $crate::server_api_suite!(guarded: $setup);
        }
        mod migration {
            $crate::migration_suite!(guarded: async {
                let (guard, store) = $setup.await;
                (guard, $crate::counting::Counting::new(store))
            });
        }
        mod concurrency {
            $crate::concurrency_suite!(guarded: $patient);
        }
    };
}
