//! Shared helpers for the integration tests in `tests/tests/`.

/// The code blocks of README.md, compiled and run as doc tests so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
