//! Checks that span the whole struct: versions, wire keys, attribute combinations, generics.

use std::collections::HashMap;

use crate::ast::Container;
use crate::ctxt::Ctxt;

/// Wire keys starting with this belong to the runtime's internal fields
/// (equal to `session_runtime::RESERVED_PREFIX`; the ui-test `reserved-wire-key` pins it).
const RESERVED_PREFIX: &str = "__";

/// Reports every problem found; the schema version to use (1 when it is absent or invalid).
pub(crate) fn check(cx: &Ctxt, container: &Container<'_>) -> u32 {
    check_generics(cx, container);
    let version = check_version(cx, container);
    check_fields(cx, container);
    check_owner(cx, container);
    version
}

/// At most one `owner` field, stored, of type `Option<T>` (`None` is "nobody's session").
fn check_owner(cx: &Ctxt, container: &Container<'_>) {
    let mut first: Option<String> = None;
    for field in &container.fields {
        let Some(path) = field.attrs.owner.get() else {
            continue;
        };
        if let Some(first) = &first {
            cx.error_spanned_by(
                path,
                format!(
                    "only one field can be the owner, and `{first}` already is; remove \
                     `owner` from one of them"
                ),
            );
            continue;
        }
        first = Some(field.name());
        if field.is_skipped() {
            cx.error_spanned_by(
                path,
                "the owner field must be stored (sessions are indexed by it): remove `skip` \
                 or `owner`",
            );
        } else if crate::ast::option_inner(field.ty).is_none() {
            cx.error_spanned_by(
                field.ty,
                "the owner field must be an `Option<T>` (`None`: the session belongs to \
                 nobody), with `T` an integer, a `String`, or a type implementing \
                 `session_runtime::OwnerKey`, as in `user_id: Option<u64>`",
            );
        }
    }
}

fn check_generics(cx: &Ctxt, container: &Container<'_>) {
    let generics = container.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        cx.error_spanned_by(
            generics,
            "Databag cannot be derived for a generic struct: the session layer stores and loads \
             one concrete type; use concrete field types (a field may itself be a generic type, \
             as in `data: MyData<u64>`)",
        );
    }
}

fn check_version(cx: &Ctxt, container: &Container<'_>) -> u32 {
    let attrs = &container.attrs;
    let version = match attrs.version.get() {
        None => 1,
        Some(lit) => match lit.base10_parse::<u32>() {
            Ok(0) => {
                cx.error_spanned_by(
                    lit,
                    "schema versions start at 1: write `version = 1` for the first version",
                );
                1
            }
            Ok(version) => version,
            Err(_) => {
                cx.error_spanned_by(lit, "`version` must be a whole number from 1 to 4294967295");
                1
            }
        },
    };
    if let (Some(ty), None) = (attrs.migrate_from.get(), attrs.version.get()) {
        cx.error_spanned_by(
            ty,
            "`migrate_from` needs an explicit `version = N` on this struct, greater than the \
             version of the struct it migrates from",
        );
    }
    version
}

fn check_fields(cx: &Ctxt, container: &Container<'_>) {
    let mut keys: HashMap<String, String> = HashMap::new();
    for field in &container.fields {
        let attrs = &field.attrs;
        if let (Some(_), Some(rename)) = (attrs.skip.get(), attrs.rename.get()) {
            cx.error_spanned_by(
                rename,
                "a `skip` field is never stored, so it has no wire key: remove `rename` or `skip`",
            );
            continue;
        }
        if field.is_skipped() {
            continue;
        }
        let key = field.wire_key();
        if key.is_empty() {
            if let Some(rename) = attrs.rename.get() {
                cx.error_spanned_by(rename, "a wire key cannot be empty");
            }
            continue;
        }
        if key.starts_with(RESERVED_PREFIX) {
            let message = format!(
                "wire key `{key}` starts with `{RESERVED_PREFIX}`, which is reserved for the \
                 session runtime's internal fields (remember-me, a fixed end time); give the \
                 field another key with `#[databag(rename = \"..\")]`"
            );
            match attrs.rename.get() {
                Some(rename) => cx.error_spanned_by(rename, message),
                None => cx.error_spanned_by(field.ident, message),
            }
            continue;
        }
        if let Some(first) = keys.get(&key) {
            let message = format!(
                "wire key `{key}` is already used by field `{first}`; give one of them another \
                 key with `#[databag(rename = \"..\")]`"
            );
            match attrs.rename.get() {
                Some(rename) => cx.error_spanned_by(rename, message),
                None => cx.error_spanned_by(field.ident, message),
            }
        } else {
            keys.insert(key, field.name());
        }
    }
}
