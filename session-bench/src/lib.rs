//! The pieces every benchmark shares, so that the criterion benches (`benches/`) and the
//! quick `compare` binary measure exactly the same things:
//!
//! - [`data`]: the session data, as a [`Databag`](session_runtime::Databag) for us and as a
//!   serde struct for the peers, with the same fields and values;
//! - [`apps`]: the routers of every end-to-end case: no session layer (the baseline), ours
//!   with each store, and the closest tower-sessions / axum-extra equivalent;
//! - [`servers`]: the servers of the real-HTTP benchmark (`http` binary);
//! - [`timing`]: a runtime for async loops and the interleaved median timing `compare` uses.
#![forbid(unsafe_code)]

pub mod apps;
pub mod cases;
pub mod data;
pub mod redis;
pub mod servers;
pub mod timing;
