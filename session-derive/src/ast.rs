//! The derive's model of the input struct, keeping the syn nodes for spans.

use syn::ext::IdentExt;

use crate::attr;
use crate::ctxt::Ctxt;

/// The struct the derive is applied to.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) generics: &'a syn::Generics,
    pub(crate) attrs: attr::Container,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) ty: &'a syn::Type,
    pub(crate) attrs: attr::Field,
}

impl<'a> Container<'a> {
    /// Reads the input, or reports why it cannot be session data and returns `None`.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput) -> Option<Self> {
        let fields = match &input.data {
            syn::Data::Struct(data) => match &data.fields {
                syn::Fields::Named(named) => &named.named,
                syn::Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        "Databag needs named fields, because each field is stored under its \
                         name; write `struct Name { field: Type, .. }`",
                    );
                    return None;
                }
                syn::Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "Databag needs a struct with named fields to store; a unit struct has \
                         nothing to store: add fields, as in `struct Name { field: Type }`",
                    );
                    return None;
                }
            },
            syn::Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "Databag can only be derived for a struct with named fields, not an enum; \
                     keep the enum as the type of a field of a session struct (deriving serde's \
                     Serialize and Deserialize for it)",
                );
                return None;
            }
            syn::Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "Databag can only be derived for a struct with named fields, not a union",
                );
                return None;
            }
        };
        let fields = fields
            .iter()
            .filter_map(|field| {
                Some(Field {
                    ident: field.ident.as_ref()?,
                    vis: &field.vis,
                    ty: &field.ty,
                    attrs: attr::Field::from_ast(cx, &field.attrs),
                })
            })
            .collect();
        Some(Self {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs: attr::Container::from_ast(cx, &input.attrs),
            fields,
        })
    }

    /// The owner field (the first, if several are marked: that is an error anyway) and its
    /// index among the stored fields.
    pub(crate) fn owner(&self) -> Option<(usize, &Field<'a>)> {
        self.stored_fields()
            .enumerate()
            .find(|(_, field)| field.attrs.owner.get().is_some())
    }

    /// The stored fields (not `skip`), in declaration order: their position is the field's
    /// index in the change set.
    pub(crate) fn stored_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|field| !field.is_skipped())
    }
}

impl Field<'_> {
    pub(crate) fn is_skipped(&self) -> bool {
        self.attrs.skip.get().is_some()
    }

    /// The field's name without any `r#` prefix.
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }

    /// The key the field is stored under.
    pub(crate) fn wire_key(&self) -> String {
        self.attrs
            .rename
            .get()
            .map_or_else(|| self.name(), syn::LitStr::value)
    }
}

/// `T` when `ty` is written `Option<T>` (or `std::option::Option<T>`, `core::option::Option<T>`).
pub(crate) fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let segment = path.path.segments.last()?;
    if segment.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}
