//! Compile-fail and compile-pass cases for `#[derive(Databag)]`.
//!
//! Each `ui/fail/<mistake>.rs` has a reviewed `<mistake>.stderr`: the message a user sees.
//! After a deliberate change to a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and read every changed `.stderr` again.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
