//! Parses `#[databag(..)]` attributes on the struct and on its fields.

use syn::meta::ParseNestedMeta;

use crate::ctxt::Ctxt;

const CONTAINER_KEYS: &[&str] = &["version", "migrate_from", "crate"];
const FIELD_KEYS: &[&str] = &["default", "rename", "skip", "owner"];

/// A value given at most once; a second occurrence is reported where it is.
pub(crate) struct Attr<T> {
    name: &'static str,
    value: Option<T>,
}

impl<T> Attr<T> {
    fn none(name: &'static str) -> Self {
        Self { name, value: None }
    }

    fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>, value: T) {
        if self.value.is_some() {
            cx.syn_error(meta.error(format_args!(
                "duplicate databag attribute `{}`; remove this one",
                self.name
            )));
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

/// `#[databag(..)]` on the struct.
pub(crate) struct Container {
    pub(crate) version: Attr<syn::LitInt>,
    pub(crate) migrate_from: Attr<syn::Type>,
    /// `crate = "path"`: where the runtime is, for users who renamed the dependency.
    pub(crate) krate: Attr<syn::Path>,
}

/// `#[databag(..)]` on a field.
pub(crate) struct Field {
    pub(crate) default: Attr<syn::Expr>,
    pub(crate) rename: Attr<syn::LitStr>,
    pub(crate) skip: Attr<()>,
    /// `owner`: the field that says whose session it is. Kept as the attribute's path, for
    /// errors about it.
    pub(crate) owner: Attr<syn::Path>,
    /// Whether an attribute of this field failed to parse: expansion then avoids errors that
    /// would only repeat the first one (such as a missing `Default` impl).
    pub(crate) had_error: bool,
}

impl Container {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = Self {
            version: Attr::none("version"),
            migrate_from: Attr::none("migrate_from"),
            krate: Attr::none("crate"),
        };
        for attr in databag_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("version") {
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    out.version.set(cx, &meta, lit);
                } else if meta.path.is_ident("migrate_from") {
                    let ty: syn::Type = meta.value()?.parse()?;
                    out.migrate_from.set(cx, &meta, ty);
                } else if meta.path.is_ident("crate") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    let path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
                        syn::Error::new(
                            lit.span(),
                            "`crate` takes the path the runtime is reachable at, such as \
                             `crate = \"my_sessions\"` when Cargo.toml renames session-runtime",
                        )
                    })?;
                    out.krate.set(cx, &meta, path);
                } else {
                    return Err(unknown_key(&meta, "the struct", CONTAINER_KEYS, FIELD_KEYS));
                }
                Ok(())
            });
            if let Err(error) = result {
                cx.syn_error(error);
            }
        }
        out
    }
}

impl Field {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = Self {
            default: Attr::none("default"),
            rename: Attr::none("rename"),
            skip: Attr::none("skip"),
            owner: Attr::none("owner"),
            had_error: false,
        };
        for attr in databag_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    let expr: syn::Expr = meta.value()?.parse()?;
                    out.default.set(cx, &meta, expr);
                } else if meta.path.is_ident("rename") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    out.rename.set(cx, &meta, lit);
                } else if meta.path.is_ident("skip") {
                    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                        return Err(meta.error("`skip` takes no value: write `#[databag(skip)]`"));
                    }
                    out.skip.set(cx, &meta, ());
                } else if meta.path.is_ident("owner") {
                    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                        return Err(meta.error(
                            "`owner` takes no value: write `#[databag(owner)]` on the field \
                             that says whose session it is",
                        ));
                    }
                    out.owner.set(cx, &meta, meta.path.clone());
                } else {
                    return Err(unknown_key(&meta, "a field", FIELD_KEYS, CONTAINER_KEYS));
                }
                Ok(())
            });
            if let Err(error) = result {
                out.had_error = true;
                cx.syn_error(error);
            }
        }
        out
    }
}

fn databag_attrs(attrs: &[syn::Attribute]) -> impl Iterator<Item = &syn::Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("databag"))
}

/// The error for a key that is not valid here: names the valid keys, suggests the closest
/// one, and says where a key of the other kind belongs.
fn unknown_key(
    meta: &ParseNestedMeta<'_>,
    place: &str,
    valid: &[&str],
    other_place_keys: &[&str],
) -> syn::Error {
    let key = meta
        .path
        .get_ident()
        .map_or_else(|| path_text(&meta.path), ToString::to_string);
    let expected = valid
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = if other_place_keys.contains(&key.as_str()) {
        let other = if place == "a field" {
            "the struct"
        } else {
            "a field"
        };
        format!(" (`{key}` belongs on {other})")
    } else {
        closest(&key, valid)
            .map(|suggestion| format!(" (did you mean `{suggestion}`?)"))
            .unwrap_or_default()
    };
    meta.error(format_args!(
        "unknown databag attribute `{key}` on {place}; expected one of {expected}{hint}"
    ))
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// The valid key closest to `key`, if it is close enough to be a likely typo.
fn closest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, with a transposition counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn typos_are_suggested() {
        assert_eq!(edit_distance("defualt", "default"), 1);
        assert_eq!(
            closest("defualt", &["default", "rename", "skip"]),
            Some("default")
        );
        assert_eq!(
            closest("renam", &["default", "rename", "skip"]),
            Some("rename")
        );
        assert_eq!(closest("colour", &["default", "rename", "skip"]), None);
    }
}
