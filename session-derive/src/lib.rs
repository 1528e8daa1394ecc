//! `#[derive(Databag)]`: turns a struct with named fields into strongly typed session data.
//!
//! Use it through `session_runtime`, which re-exports it (`use session_runtime::Databag;`)
//! and documents the attributes and what the derive generates. The expansion runs in three
//! stages: `ast` reads the struct and its `#[databag(..)]` attributes (`attr`), `check`
//! validates what spans several fields, and `expand` emits the code. Every error found on
//! the way is reported, each at the user's code; see `ctxt`.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// Derives `session_runtime::Databag`. See the `session_runtime` crate docs.
#[proc_macro_derive(Databag, attributes(databag))]
pub fn derive_databag(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
