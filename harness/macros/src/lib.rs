//! billing-harness-macros: the `#[billing_harness::test]` attribute. Use it through
//! billing-harness, which re-exports it and provides what the expansion calls at run time
//! (`billing_harness::__private`); this crate only reads the arguments and rewrites the function.

mod args;
mod expand;

use proc_macro::TokenStream;

/// Makes an `async fn(env: TestEnv)` a test with a database of its own: see
/// `billing_harness::test`, where the arguments are documented.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    // Cargo sets it for every crate it compiles; a `migrations` folder is checked against it.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    expand::test(args.into(), item.into(), manifest_dir.as_deref())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
