//! Emits the `Databag` impl, the handle type and its accessors.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{Container, Field};
use crate::check::check;
use crate::ctxt::Ctxt;

/// Expands `#[derive(Databag)]` on `input`: the generated code, with every error found as a
/// `compile_error!` next to it.
pub(crate) fn derive(input: &syn::DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let Some(container) = Container::from_ast(&cx, input) else {
        return cx.into_compile_errors();
    };
    let version = check(&cx, &container);
    if !container.generics.params.is_empty() || container.generics.where_clause.is_some() {
        // Nothing sensible can be generated for a generic struct.
        return cx.into_compile_errors();
    }
    // On attribute errors the code is still generated as if the bad attribute were absent,
    // so that one typo gives one error, not a cascade in every handler that uses a setter.
    let generated = generate(&container, version);
    if cx.has_errors() {
        let errors = cx.into_compile_errors();
        quote! { #errors #generated }
    } else {
        generated
    }
}

/// The path generated code reaches the runtime through: `::session_runtime::__private`, or
/// `<path>::__private` with `#[databag(crate = "path")]`.
#[derive(Clone)]
struct Runtime(TokenStream);

impl Runtime {
    fn of(container: &Container<'_>) -> Self {
        match container.attrs.krate.get() {
            Some(path) => Self(quote!(#path)),
            None => Self(quote!(::session_runtime)),
        }
    }

    fn path(&self) -> TokenStream {
        let krate = &self.0;
        quote!(#krate::__private)
    }

    /// The same path spanned at `span`, so that an error about a call through it is
    /// reported at the user's code that `span` points to.
    fn at(&self, span: proc_macro2::Span) -> TokenStream {
        let respanned: TokenStream = self
            .path()
            .into_iter()
            .map(|mut token| {
                token.set_span(span);
                token
            })
            .collect();
        respanned
    }
}

fn generate(container: &Container<'_>, version: u32) -> TokenStream {
    let runtime = Runtime::of(container);
    let rt = runtime.path();
    let ident = container.ident;
    let vis = container.vis;
    let handle = format_ident!("{}Handle", ident, span = ident.span());
    let stored: Vec<&Field<'_>> = container.stored_fields().collect();

    let field_infos = stored.iter().map(|field| {
        let name = field.name();
        let key = field.wire_key();
        quote!(#rt::Field { name: #name, key: #key })
    });
    let default_fns: Vec<syn::Ident> = (0..container.fields.len())
        .map(|index| format_ident!("__databag_default_{}", index))
        .collect();
    let default_items = container
        .fields
        .iter()
        .zip(&default_fns)
        .map(|(field, name)| default_fn(&runtime, field, name));
    let defaults = container.fields.iter().zip(&default_fns).map(|(field, f)| {
        let member = field.ident;
        quote!(#member: #f())
    });
    let codecs: Vec<syn::Ident> = (0..stored.len())
        .map(|index| format_ident!("__DATABAG_CODEC_{}", index))
        .collect();
    let codec_items = stored.iter().zip(&codecs).map(|(field, codec)| {
        let ty = field.ty;
        let rt = runtime.at(ty.span());
        quote_spanned!(ty.span()=> const #codec: #rt::Codec<#ty> = #rt::Codec::<#ty>::new();)
    });
    let encode_arms = stored.iter().enumerate().map(|(index, field)| {
        let member = field.ident;
        let name = field.name();
        let codec = &codecs[index];
        quote!(#index => #codec.encode::<Self>(#name, &self.#member, out),)
    });
    let slots: Vec<syn::Ident> = (0..stored.len())
        .map(|index| format_ident!("__field_{}", index))
        .collect();
    let slot_decls = stored.iter().zip(&slots).map(|(field, slot)| {
        let ty = field.ty;
        quote!(let mut #slot: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let decode_arms = stored.iter().zip(&slots).zip(&codecs).map(|((field, slot), codec)| {
        let key = field.wire_key();
        quote!(#key => #slot = ::core::option::Option::Some(#codec.decode::<Self>(#key, __raw.value)?),)
    });
    let decoded_members = container.fields.iter().zip(&default_fns).map(|(field, f)| {
        let member = field.ident;
        match stored.iter().position(|stored| stored.ident == field.ident) {
            Some(index) => {
                let slot = &slots[index];
                quote!(#member: match #slot {
                    ::core::option::Option::Some(value) => value,
                    ::core::option::Option::None => #f(),
                })
            }
            None => quote!(#member: #f()),
        }
    });
    // Stored fields are checked by their codec; skipped ones only need to be shareable.
    let field_checks = container
        .fields
        .iter()
        .filter(|f| f.is_skipped())
        .map(|field| {
            let ty = field.ty;
            let rt = runtime.at(ty.span());
            quote_spanned!(ty.span()=> #rt::assert_skipped_field::<#ty>();)
        });
    let (migration_item, migration) = migration(&runtime, container);
    let owner = owner(&runtime, container);
    let accessors = container.fields.iter().map(|field| {
        let index = stored.iter().position(|stored| stored.ident == field.ident);
        accessors(&rt, field, index)
    });
    let handle_doc = format!(
        "Change-tracked access to [`{ident}`], generated by `#[derive(Databag)]`.\n\n\
         Read fields through `Deref` (`handle.field`); write them with the generated \
         `set_<field>`, `<field>_mut` and `update_<field>` methods, which record the change."
    );

    quote! {
        #[doc = #handle_doc]
        #vis struct #handle {
            __core: #rt::Core<#ident>,
        }

        #[allow(dead_code)]
        impl #handle {
            /// Wraps a value, with no field marked changed.
            #[inline]
            #[must_use]
            pub fn new(value: #ident) -> Self {
                <Self as #rt::DatabagHandle>::from_tracked(#rt::Tracked::new(value))
            }

            /// The tracked data: the value and the set of changed fields.
            #[inline]
            #[must_use]
            pub fn tracked(&self) -> &#rt::Tracked<#ident> {
                #rt::Core::tracked(&self.__core)
            }

            /// Whether any stored field changed.
            #[inline]
            #[must_use]
            pub fn is_changed(&self) -> bool {
                #rt::Core::tracked(&self.__core).is_changed()
            }

            /// The stored fields that changed, in declaration order.
            pub fn changed_fields(&self) -> impl ::core::iter::Iterator<Item = &'static #rt::Field> + '_ {
                #rt::Core::tracked(&self.__core).changed_fields()
            }

            // The lifecycle methods of `DatabagHandle`, repeated as inherent methods so that
            // handlers call them without importing the trait. Each only forwards.

            /// The session id. `Display` prints a fingerprint, not the token.
            #[inline]
            #[must_use]
            pub fn id(&self) -> &#rt::SessionId {
                #rt::Core::id(&self.__core)
            }

            /// Whether the session did not exist before this request (it is stored only once
            /// something is written to it).
            #[inline]
            #[must_use]
            pub fn is_new(&self) -> bool {
                #rt::Core::is_new(&self.__core)
            }

            /// Gives the session a new id when the request commits; the old id stops
            /// working. Call it when privileges change (login), against session fixation.
            /// A new session the handler writes nothing to is still not stored.
            #[inline]
            pub fn renew(&mut self) {
                #rt::Core::renew(&mut self.__core)
            }

            /// Ends the session when the request commits: the record is deleted and the
            /// client told to forget its token. The handle then reads defaults; writes
            /// after `destroy()` start a fresh session (new id, new creation time).
            #[inline]
            pub fn destroy(&mut self) {
                #rt::Core::destroy(&mut self.__core)
            }

            /// Puts every field back to its default (all marked changed).
            #[inline]
            pub fn reset(&mut self) {
                #rt::Core::reset(&mut self.__core)
            }

            /// When the session expires if it is not used again (`None` without timeouts).
            #[inline]
            #[must_use]
            pub fn expires_at(&self) -> ::core::option::Option<::std::time::SystemTime> {
                #rt::Core::expires_at(&self.__core)
            }

            /// Remember me: `Some(duration)` keeps the session `duration` since its last
            /// use, with a persistent cookie; `None` goes back to a browser-session cookie
            /// and the layer's idle timeout. See `DatabagHandle::remember_for`.
            #[inline]
            pub fn remember_for(&mut self, duration: ::core::option::Option<::core::time::Duration>) {
                #rt::Core::remember_for(&mut self.__core, duration)
            }

            /// The remember-me duration chosen for this session, if any.
            #[inline]
            #[must_use]
            pub fn remembered_for(&self) -> ::core::option::Option<::core::time::Duration> {
                #rt::Core::remembered_for(&self.__core)
            }

            /// A fixed end for this session (a wall-clock deadline), or `None` for none.
            /// See `DatabagHandle::end_at`.
            #[inline]
            pub fn end_at(&mut self, at: ::core::option::Option<::std::time::SystemTime>) {
                #rt::Core::end_at(&mut self.__core, at)
            }

            /// The fixed end chosen for this session, if any.
            #[inline]
            #[must_use]
            pub fn ends_at(&self) -> ::core::option::Option<::std::time::SystemTime> {
                #rt::Core::ends_at(&self.__core)
            }

            /// A masked CSRF token for this session (a different string each call), for a
            /// hidden form field or a `<meta>` tag. See `DatabagHandle::csrf_token`.
            ///
            /// # Errors
            /// If the operating system's random source fails.
            #[inline]
            pub fn csrf_token(&mut self) -> ::core::result::Result<::std::string::String, #rt::RandomnessError> {
                #rt::Core::csrf_token(&mut self.__core)
            }

            /// Queues a flash message for a later request, which reads it once with
            /// `take_flash`. See `DatabagHandle::flash`.
            ///
            /// # Errors
            /// If the message's `Serialize` implementation fails.
            #[inline]
            pub fn flash<__M: #rt::FlashOut>(&mut self, message: __M) -> ::core::result::Result<(), #rt::EncodeError> {
                #rt::Core::flash(&mut self.__core, message)
            }

            /// Takes the flash messages queued by earlier requests, oldest first; the next
            /// request sees none. See `DatabagHandle::take_flash`.
            #[inline]
            pub fn take_flash<__M: #rt::FlashIn>(&mut self) -> ::std::vec::Vec<__M> {
                #rt::Core::take_flash(&mut self.__core)
            }

            /// Persists what changed so far, now (see `DatabagHandle::save`).
            ///
            /// # Errors
            /// See `SaveError`; after an error the handle still holds its unsaved changes.
            pub async fn save(&mut self) -> ::core::result::Result<(), #rt::SaveError> {
                #rt::Core::save(&mut self.__core).await
            }

            #(#accessors)*
        }

        const _: () = {
            #(#default_items)*
            #(#codec_items)*
            #migration_item

            #[automatically_derived]
            impl #rt::Databag for #ident {
                type Handle = #handle;
                const VERSION: u32 = #version;
                const FIELDS: &'static [#rt::Field] = &[#(#field_infos),*];
                #owner

                fn defaults() -> Self {
                    Self { #(#defaults),* }
                }

                fn encode_field(
                    &self,
                    index: usize,
                    out: &mut ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<(), #rt::EncodeError> {
                    match index {
                        #(#encode_arms)*
                        _ => ::core::result::Result::Err(#rt::no_such_field::<Self>(index)),
                    }
                }

                fn decode_current(
                    fields: &[#rt::RawField<'_>],
                ) -> ::core::result::Result<Self, #rt::DecodeError> {
                    #(#slot_decls)*
                    for __raw in fields {
                        match __raw.key {
                            #(#decode_arms)*
                            _ => {}
                        }
                    }
                    ::core::result::Result::Ok(Self { #(#decoded_members),* })
                }

                #migration
            }

            #[automatically_derived]
            impl ::core::ops::Deref for #handle {
                type Target = #ident;

                #[inline]
                fn deref(&self) -> &#ident {
                    #rt::Core::tracked(&self.__core).get()
                }
            }

            #[automatically_derived]
            impl #rt::DatabagHandle for #handle {
                type Data = #ident;

                fn from_tracked(tracked: #rt::Tracked<#ident>) -> Self {
                    Self { __core: #rt::Core::new(tracked) }
                }
                fn tracked(&self) -> &#rt::Tracked<#ident> {
                    #rt::Core::tracked(&self.__core)
                }
                fn tracked_mut(&mut self) -> &mut #rt::Tracked<#ident> {
                    #rt::Core::tracked_mut(&mut self.__core)
                }
                fn into_tracked(self) -> #rt::Tracked<#ident> {
                    #rt::Core::into_tracked(self.__core)
                }
                fn id(&self) -> &#rt::SessionId {
                    #rt::Core::id(&self.__core)
                }
                fn is_new(&self) -> bool {
                    #rt::Core::is_new(&self.__core)
                }
                fn renew(&mut self) {
                    #rt::Core::renew(&mut self.__core)
                }
                fn destroy(&mut self) {
                    #rt::Core::destroy(&mut self.__core)
                }
                fn reset(&mut self) {
                    #rt::Core::reset(&mut self.__core)
                }
                fn expires_at(&self) -> ::core::option::Option<::std::time::SystemTime> {
                    #rt::Core::expires_at(&self.__core)
                }
                fn remember_for(&mut self, duration: ::core::option::Option<::core::time::Duration>) {
                    #rt::Core::remember_for(&mut self.__core, duration)
                }
                fn remembered_for(&self) -> ::core::option::Option<::core::time::Duration> {
                    #rt::Core::remembered_for(&self.__core)
                }
                fn end_at(&mut self, at: ::core::option::Option<::std::time::SystemTime>) {
                    #rt::Core::end_at(&mut self.__core, at)
                }
                fn ends_at(&self) -> ::core::option::Option<::std::time::SystemTime> {
                    #rt::Core::ends_at(&self.__core)
                }
                fn save(
                    &mut self,
                ) -> impl ::core::future::Future<Output = ::core::result::Result<(), #rt::SaveError>>
                       + ::core::marker::Send {
                    #rt::Core::save(&mut self.__core)
                }
            }

            #[automatically_derived]
            impl #rt::FromCore for #handle {
                #[inline]
                fn from_core(core: #rt::Core<#ident>) -> Self {
                    Self { __core: core }
                }
            }

            #[automatically_derived]
            impl<__S: ::core::marker::Send + ::core::marker::Sync> #rt::FromRequestParts<__S> for #handle {
                type Rejection = #rt::SessionRejection;

                async fn from_request_parts(
                    parts: &mut #rt::Parts,
                    _state: &__S,
                ) -> ::core::result::Result<Self, Self::Rejection> {
                    #rt::extract::<Self>(parts).await
                }
            }

            // Debug only when the data is Debug. A plain `where #ident: Debug` would be a
            // trivial bound (it names no generic parameter), which rustc rejects as an error
            // when it does not hold; a higher-ranked bound is not trivial, so the impl is
            // simply absent then (rust-lang/rust#48214).
            #[automatically_derived]
            impl ::core::fmt::Debug for #handle
            where
                for<'__a> #ident: ::core::fmt::Debug,
            {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::fmt::Debug::fmt(#rt::Core::tracked(&self.__core), f)
                }
            }

            const _: () = {
                #(#field_checks)*
            };
        };
    }
}

/// The function giving a field's default, emitted once per field so that an ill-typed
/// default expression is reported once, at the expression.
/// `Databag`'s owner items: the owner type, the owner field's index and its value; with no
/// owner field, `NoOwner`. The owner type is spanned at the user's `T` in `Option<T>`, so an
/// unusable owner type is reported there.
fn owner(runtime: &Runtime, container: &Container<'_>) -> TokenStream {
    let rt = runtime.path();
    let Some((index, field)) = container.owner() else {
        return quote!(type Owner = #rt::NoOwner;);
    };
    let Some(inner) = crate::ast::option_inner(field.ty) else {
        // Reported by `check`; keep the rest of the expansion free of follow-on errors.
        return quote!(type Owner = #rt::NoOwner;);
    };
    let member = field.ident;
    // `Databag::Owner: OwnerKey` checks the type, reported at the user's `T`.
    let owner_type = quote_spanned!(inner.span()=> type Owner = #inner;);
    quote! {
        #owner_type
        const OWNER: ::core::option::Option<usize> = ::core::option::Option::Some(#index);
        fn owner(&self) -> ::core::option::Option<&Self::Owner> {
            ::core::option::Option::as_ref(&self.#member)
        }
    }
}

fn default_fn(runtime: &Runtime, field: &Field<'_>, name: &syn::Ident) -> TokenStream {
    let ty = field.ty;
    let body = match field.attrs.default.get() {
        Some(expr) => quote_spanned!(expr.span()=> #expr),
        // A field whose attribute did not parse may have meant to give a default: do not
        // also demand `Default`, which would only repeat the first error.
        None if field.attrs.had_error => {
            quote!(::core::unreachable!(
                "#[derive(Databag)] reported an error for this field"
            ))
        }
        None => {
            let rt = runtime.at(ty.span());
            quote_spanned!(ty.span()=> #rt::default_value::<#ty>())
        }
    };
    quote! {
        #[inline]
        #[allow(clippy::redundant_closure_call)]
        fn #name() -> #ty {
            #body
        }
    }
}

/// `decode_older`, when the struct names a `migrate_from` type, and the constant that checks
/// the migration at compile time.
fn migration(runtime: &Runtime, container: &Container<'_>) -> (TokenStream, TokenStream) {
    let rt = runtime.path();
    let Some(previous) = container.attrs.migrate_from.get() else {
        return (TokenStream::new(), TokenStream::new());
    };
    // Without an explicit version, check() already reported the missing `version`; checking
    // the chain against the implied 1 would only add a second error.
    if container.attrs.version.get().is_none() {
        return (TokenStream::new(), TokenStream::new());
    }
    let ident = container.ident;
    let span = previous.span();
    let rt_here = runtime.at(span);
    let item = quote_spanned! {span=>
        const __DATABAG_MIGRATE: #rt_here::MigrateFn<#ident> =
            #rt_here::migration::<#previous, #ident>();
    };
    let method = quote! {
        fn decode_older(
            version: u32,
            fields: &[#rt::RawField<'_>],
        ) -> ::core::result::Result<Self, #rt::DecodeError> {
            __DATABAG_MIGRATE(version, fields)
        }
    };
    (item, method)
}

/// `set_x`, `x_mut` and `update_x` for one field; `index` is its position among the stored
/// fields (`None` for a skipped field, whose writes are not tracked).
fn accessors(rt: &TokenStream, field: &Field<'_>, index: Option<usize>) -> TokenStream {
    let member = field.ident;
    let ty = field.ty;
    let name = field.ident.unraw();
    let span = member.span();
    let setter = format_ident!("set_{}", name, span = span);
    let getter_mut = format_ident!("{}_mut", name, span = span);
    let updater = format_ident!("update_{}", name, span = span);
    let (value_mut, note) = match index {
        Some(index) => (
            quote!(#rt::field_mut(&mut self.__core, #index)),
            "marks it changed",
        ),
        None => (
            quote!(#rt::skipped_field_mut(&mut self.__core)),
            "does not mark anything changed: the field is `skip`, never stored",
        ),
    };
    let set_doc = format!("Sets `{name}`; {note}.");
    let mut_doc = format!(
        "Mutable access to `{name}`; {} when borrowed, whether or not it is then written.",
        if index.is_some() {
            "marks it changed"
        } else {
            note
        }
    );
    let update_doc = format!("Changes `{name}` in place with `f`; {note}.");
    // Writing a field is allowed exactly where reading it is.
    let vis = field.vis;
    quote! {
        #[doc = #set_doc]
        #[inline]
        #vis fn #setter(&mut self, value: #ty) {
            #value_mut.#member = value;
        }

        #[doc = #mut_doc]
        #[inline]
        #vis fn #getter_mut(&mut self) -> &mut #ty {
            &mut #value_mut.#member
        }

        #[doc = #update_doc]
        #[inline]
        #vis fn #updater<R>(&mut self, f: impl ::core::ops::FnOnce(&mut #ty) -> R) -> R {
            f(&mut #value_mut.#member)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::derive;

    #[test]
    fn a_renamed_runtime_is_the_only_runtime_path_generated_code_names() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[databag(crate = "my_sessions", version = 2, migrate_from = Old)]
            pub struct Visits {
                pub count: u64,
                #[databag(skip)]
                pub scratch: Vec<u8>,
            }
        };
        let expanded = derive(&input).to_string();
        assert!(expanded.contains("my_sessions :: __private"), "{expanded}");
        assert!(!expanded.contains("session_runtime"), "{expanded}");
    }
}
