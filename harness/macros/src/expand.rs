//! The expansion: the test function becomes a `#[test]` that builds a tokio runtime, gets a
//! `TestEnv` and lends it to the body, all through `::billing_harness::__private` so that an
//! adopter depends on billing-harness alone.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Type};

use crate::args::{self, Args, Flavor, Migrations};

/// `#[billing_harness::test(args)] item` as a test function, or the first error.
pub(crate) fn test(
    args: TokenStream,
    item: TokenStream,
    manifest_dir: Option<&Path>,
) -> syn::Result<TokenStream> {
    let args = args::parse(args, manifest_dir)?;
    let mut item: ItemFn = syn::parse2(item)?;
    check_signature(&item)?;
    if let Some(FnArg::Typed(arg)) = item.sig.inputs.first_mut()
        && !matches!(*arg.ty, Type::Reference(_))
    {
        // The body borrows the environment: the expansion owns it until the body's result is
        // known, so that a failure (a panic or an `Err`) is seen while it is alive.
        let ty = &arg.ty;
        *arg.ty = syn::parse_quote_spanned!(ty.span()=> &#ty);
    }
    let attrs = std::mem::take(&mut item.attrs);
    let vis = item.vis.clone();
    let name = item.sig.ident.clone();
    let runtime = runtime(&args);
    let options = options(&args);
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #item
            ::billing_harness::__private::run(
                #runtime,
                #options,
                |env| ::std::boxed::Box::pin(#name(env)),
            )
        }
    })
}

/// An `async fn` of one argument (the environment), neither generic nor a method, and no
/// `#[test]` of its own.
fn check_signature(item: &ItemFn) -> syn::Result<()> {
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "#[billing_harness::test] needs an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a #[billing_harness::test] function takes no generic parameters",
        ));
    }
    let one_env = "a #[billing_harness::test] function takes one argument, the test's \
                   environment: `env: TestEnv`";
    match (sig.inputs.first(), sig.inputs.len()) {
        (Some(FnArg::Typed(_)), 1) => {}
        (Some(FnArg::Receiver(receiver)), _) => {
            return Err(syn::Error::new(receiver.span(), one_env));
        }
        (_, n) if n > 1 => return Err(syn::Error::new(sig.inputs[1].span(), one_env)),
        _ => return Err(syn::Error::new(sig.paren_token.span.join(), one_env)),
    }
    if let Some(test) = item.attrs.iter().find(|a| a.path().is_ident("test")) {
        return Err(syn::Error::new(
            test.span(),
            "remove this #[test]: #[billing_harness::test] makes the function a test",
        ));
    }
    Ok(())
}

/// The tokio runtime the flavor asks for. A tokio built without `rt-multi-thread` reports the
/// missing `new_multi_thread` at the `flavor` argument.
fn runtime(args: &Args) -> TokenStream {
    let tokio = quote!(::billing_harness::__private::tokio);
    let builder = match &args.flavor {
        Flavor::CurrentThread => quote!(#tokio::runtime::Builder::new_current_thread()),
        Flavor::MultiThread { worker_threads } => {
            let workers = worker_threads.map(|n| quote!(.worker_threads(#n)));
            let new = quote_spanned!(args.flavor_span=> new_multi_thread);
            quote!(#tokio::runtime::Builder::#new() #workers)
        }
    };
    quote! {
        #builder
            .enable_all()
            .build()
            .expect("billing-harness: failed to build the test's tokio runtime")
    }
}

/// The `Options` value the expansion passes at run time.
fn options(args: &Args) -> TokenStream {
    let private = quote!(::billing_harness::__private);
    let migrations = match &args.migrations {
        Migrations::Crate => quote!(#private::Migrations::Crate),
        Migrations::Bundled => quote!(#private::Migrations::Bundled),
        Migrations::Folder(dir) => quote!(#private::Migrations::Folder(#dir)),
    };
    let start_at = match &args.start_at {
        Some(at) => quote!(::core::option::Option::Some(#at)),
        None => quote!(::core::option::Option::None),
    };
    let seed = match args.seed {
        Some(seed) => quote!(::core::option::Option::Some(#seed)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #private::Options {
            manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
            migrations: #migrations,
            start_at: #start_at,
            seed: #seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn error(item: TokenStream) -> String {
        test(TokenStream::new(), item, None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_body_borrows_the_environment_inside_a_test() {
        let out = test(
            quote!(seed = 7),
            quote!(
                #[doc = "d"]
                async fn places(env: TestEnv) -> Result<(), E> {
                    Ok(())
                }
            ),
            None,
        )
        .unwrap()
        .to_string();
        for part in [
            "# [doc = \"d\"] # [:: core :: prelude :: v1 :: test] fn places ()",
            "async fn places (env : & TestEnv) -> Result < () , E >",
            "new_current_thread ()",
            "seed : :: core :: option :: Option :: Some (7u64)",
            "migrations : :: billing_harness :: __private :: Migrations :: Crate",
            "| env | :: std :: boxed :: Box :: pin (places (env))",
        ] {
            assert!(out.contains(part), "{part}\nnot in\n{out}");
        }
    }

    #[test]
    fn a_borrowed_environment_stays_borrowed_and_multi_thread_is_built() {
        let out = test(
            quote!(
                flavor = "multi_thread",
                worker_threads = 2,
                migrations = "bundled"
            ),
            quote!(
                async fn t(env: &TestEnv) {}
            ),
            None,
        )
        .unwrap()
        .to_string();
        assert!(out.contains("async fn t (env : & TestEnv)"), "{out}");
        assert!(
            out.contains("new_multi_thread () . worker_threads (2usize)"),
            "{out}"
        );
        assert!(out.contains("Migrations :: Bundled"), "{out}");
    }

    #[test]
    fn a_function_of_another_shape_is_an_error() {
        assert_eq!(
            error(quote!(
                fn t(env: TestEnv) {}
            )),
            "#[billing_harness::test] needs an `async fn`"
        );
        let one = "a #[billing_harness::test] function takes one argument, the test's \
                   environment: `env: TestEnv`";
        assert_eq!(
            error(quote!(
                async fn t() {}
            )),
            one
        );
        assert_eq!(
            error(quote!(
                async fn t(env: TestEnv, n: u8) {}
            )),
            one
        );
        assert_eq!(
            error(quote!(
                async fn t(&self) {}
            )),
            one
        );
        assert_eq!(
            error(quote!(
                async fn t<T>(env: TestEnv) {}
            )),
            "a #[billing_harness::test] function takes no generic parameters"
        );
        assert_eq!(
            error(quote!(
                #[test]
                async fn t(env: TestEnv) {}
            )),
            "remove this #[test]: #[billing_harness::test] makes the function a test"
        );
    }
}
