//! trybuild cases for `#[derive(Databag)]`: see `tests/ui.rs`.
