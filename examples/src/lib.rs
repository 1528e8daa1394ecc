//! Example apps: run one with `cargo run --example <name>`.
