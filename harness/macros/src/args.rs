//! The arguments of `#[billing_harness::test(...)]`, checked at compile time: each error is
//! spanned at the argument it is about and names what is accepted.

use std::path::Path;

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{LitInt, LitStr};

/// What every error about an unknown argument lists.
const ACCEPTED: &str = "migrations, start_at, seed, flavor and worker_threads";

/// The test's options, as the attribute gave them.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) migrations: Migrations,
    /// An RFC 3339 instant, checked here, parsed again at run time.
    pub(crate) start_at: Option<String>,
    pub(crate) seed: Option<u64>,
    pub(crate) flavor: Flavor,
    /// Where `flavor` was given, so that a runtime the tokio build lacks is reported there.
    pub(crate) flavor_span: Span,
}

/// Where the template's migrations come from.
#[derive(Debug, PartialEq)]
pub(crate) enum Migrations {
    /// The crate's own `./migrations` when it has one, else the harness's default.
    Crate,
    /// The reference platform's schema.
    Bundled,
    /// A folder, relative to the crate's.
    Folder(String),
}

/// The tokio runtime the test runs on.
#[derive(Debug, PartialEq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread { worker_threads: Option<usize> },
}

/// Parses the attribute's arguments. `manifest_dir` (the crate's folder, when the compiler
/// says) is where a `migrations` folder must exist.
pub(crate) fn parse(tokens: TokenStream, manifest_dir: Option<&Path>) -> syn::Result<Args> {
    let mut args = Args {
        migrations: Migrations::Crate,
        start_at: None,
        seed: None,
        flavor: Flavor::CurrentThread,
        flavor_span: Span::call_site(),
    };
    let mut seen = Vec::new();
    let mut workers: Option<(usize, Span)> = None;
    syn::meta::parser(|meta| {
        let name = meta.path.get_ident().map(ToString::to_string);
        let name = name.unwrap_or_default();
        if seen.contains(&name) {
            return Err(meta.error(format!("`{name}` is given twice")));
        }
        match name.as_str() {
            "migrations" => args.migrations = migrations(&meta, manifest_dir)?,
            "start_at" => args.start_at = Some(start_at(&meta)?),
            "seed" => args.seed = Some(integer(&meta, "seed", "seed = 42")?),
            "flavor" => {
                args.flavor_span = meta.path.span();
                args.flavor = flavor(&meta)?;
            }
            "worker_threads" => {
                let n = integer(&meta, "worker_threads", "worker_threads = 4")?;
                if n == 0 {
                    return Err(meta.error("`worker_threads` must be at least 1"));
                }
                workers = Some((n, meta.path.span()));
            }
            _ => {
                let shown = if name.is_empty() {
                    "this argument".to_owned()
                } else {
                    format!("unknown argument `{name}`")
                };
                return Err(meta.error(format!(
                    "{shown}: #[billing_harness::test] takes {ACCEPTED}"
                )));
            }
        }
        seen.push(name);
        Ok(())
    })
    .parse2(tokens)?;
    if let Some((n, span)) = workers {
        match &mut args.flavor {
            Flavor::MultiThread { worker_threads } => *worker_threads = Some(n),
            Flavor::CurrentThread => {
                return Err(syn::Error::new(
                    span,
                    "`worker_threads` needs flavor = \"multi_thread\" (the default flavor, \
                     \"current_thread\", runs the test on its own thread)",
                ));
            }
        }
    }
    Ok(args)
}

/// `migrations = "bundled"` or a folder that exists.
fn migrations(meta: &ParseNestedMeta<'_>, manifest_dir: Option<&Path>) -> syn::Result<Migrations> {
    let value = string(meta, "migrations", "migrations = \"bundled\" or a folder")?;
    if value.value() == "bundled" {
        return Ok(Migrations::Bundled);
    }
    let folder = value.value();
    if let Some(dir) = manifest_dir
        && !dir.join(&folder).is_dir()
    {
        return Err(syn::Error::new(
            value.span(),
            format!(
                "`migrations`: no folder {folder} (a relative path is taken from the crate's \
                 folder, {}); give a folder of sqlx migrations, or \"bundled\" for the reference \
                 platform's schema",
                dir.display()
            ),
        ));
    }
    Ok(Migrations::Folder(folder))
}

/// `start_at = "2026-10-01T00:00:00Z"`.
fn start_at(meta: &ParseNestedMeta<'_>) -> syn::Result<String> {
    let value = string(meta, "start_at", "start_at = \"2026-10-01T00:00:00Z\"")?;
    match rfc3339_problem(&value.value()) {
        None => Ok(value.value()),
        Some(problem) => Err(syn::Error::new(
            value.span(),
            format!(
                "`start_at` is not an RFC 3339 instant: {problem}; write e.g. \
                 \"2026-10-01T00:00:00Z\" or \"2026-10-01T09:00:00+09:00\""
            ),
        )),
    }
}

/// `flavor = "current_thread"` or `"multi_thread"`.
fn flavor(meta: &ParseNestedMeta<'_>) -> syn::Result<Flavor> {
    let value = string(meta, "flavor", "flavor = \"multi_thread\"")?;
    match value.value().as_str() {
        "current_thread" => Ok(Flavor::CurrentThread),
        "multi_thread" => Ok(Flavor::MultiThread {
            worker_threads: None,
        }),
        other => Err(syn::Error::new(
            value.span(),
            format!(
                "unknown flavor \"{other}\": use \"current_thread\" (the default) or \
                 \"multi_thread\""
            ),
        )),
    }
}

/// The string after `name =`.
fn string(meta: &ParseNestedMeta<'_>, name: &str, example: &str) -> syn::Result<LitStr> {
    let expected = || meta.error(format!("`{name}` takes a string: {example}"));
    let value = meta.value().map_err(|_| expected())?;
    value.parse::<LitStr>().map_err(|_| expected())
}

/// The integer after `name =`.
fn integer<N>(meta: &ParseNestedMeta<'_>, name: &str, example: &str) -> syn::Result<N>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let expected = || meta.error(format!("`{name}` takes a whole number: {example}"));
    let value = meta.value().map_err(|_| expected())?;
    let lit = value.parse::<LitInt>().map_err(|_| expected())?;
    if lit.base10_digits().starts_with('-') {
        return Err(expected());
    }
    lit.base10_parse()
        .map_err(|e| syn::Error::new(lit.span(), format!("`{name}` = {lit}: {e}")))
}

/// What is wrong with `s` as an RFC 3339 instant (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`), or
/// `None`. The run time parses it again with chrono; this check makes a typo a compile error.
pub(crate) fn rfc3339_problem(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| s[from..from + len].parse().ok())?
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let shape = "expected YYYY-MM-DDTHH:MM:SS, then Z or an offset such as +09:00";
    let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 2), num(8, 2)) else {
        return Some(shape);
    };
    let (Some(hour), Some(minute), Some(second)) = (num(11, 2), num(14, 2), num(17, 2)) else {
        return Some(shape);
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return Some(shape);
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Some("a fraction of a second needs digits after the `.`");
        }
        i += digits;
    }
    let offset_ok = match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && at(i + 3, b":")
                && num(i + 1, 2).is_some_and(|h| h < 24)
                && num(i + 4, 2).is_some_and(|m| m < 60)
        }
        _ => false,
    };
    if !offset_ok {
        return Some("it ends in Z or an offset such as +09:00, -05:00");
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Some("the month is not 01 to 12"),
    };
    if day == 0 || day > days {
        return Some("that month has no such day");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Some("the time of day is out of range");
    }
    None
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn error(tokens: TokenStream) -> String {
        parse(tokens, None).unwrap_err().to_string()
    }

    #[test]
    fn no_arguments_are_the_defaults() {
        let args = parse(TokenStream::new(), None).unwrap();
        assert_eq!(args.migrations, Migrations::Crate);
        assert_eq!(args.start_at, None);
        assert_eq!(args.seed, None);
        assert_eq!(args.flavor, Flavor::CurrentThread);
    }

    #[test]
    fn every_argument_is_read() {
        let args = parse(
            quote!(
                migrations = "bundled",
                start_at = "2026-10-01T00:00:00Z",
                seed = 42,
                flavor = "multi_thread",
                worker_threads = 3
            ),
            None,
        )
        .unwrap();
        assert_eq!(args.migrations, Migrations::Bundled);
        assert_eq!(args.start_at.as_deref(), Some("2026-10-01T00:00:00Z"));
        assert_eq!(args.seed, Some(42));
        assert_eq!(
            args.flavor,
            Flavor::MultiThread {
                worker_threads: Some(3)
            }
        );
        let args = parse(quote!(migrations = "db/migrations"), None).unwrap();
        assert_eq!(args.migrations, Migrations::Folder("db/migrations".into()));
    }

    #[test]
    fn a_folder_is_checked_against_the_crate_folder() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let args = parse(quote!(migrations = "src"), Some(here)).unwrap();
        assert_eq!(args.migrations, Migrations::Folder("src".into()));
        let e = parse(quote!(migrations = "no_such_folder"), Some(here))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`migrations`: no folder no_such_folder"),
            "{e}"
        );
        assert!(e.contains(&here.display().to_string()), "{e}");
    }

    #[test]
    fn an_unknown_argument_names_the_accepted_ones() {
        assert_eq!(
            error(quote!(seed = 1, sede = 2)),
            "unknown argument `sede`: #[billing_harness::test] takes migrations, start_at, \
             seed, flavor and worker_threads"
        );
        assert_eq!(
            error(quote!(a::b = 2)),
            "this argument: #[billing_harness::test] takes migrations, start_at, seed, flavor \
             and worker_threads"
        );
    }

    #[test]
    fn a_value_of_the_wrong_kind_says_what_it_takes() {
        assert_eq!(
            error(quote!(seed = "42")),
            "`seed` takes a whole number: seed = 42"
        );
        assert_eq!(
            error(quote!(seed)),
            "`seed` takes a whole number: seed = 42"
        );
        assert_eq!(
            error(quote!(seed = -1)),
            "`seed` takes a whole number: seed = 42"
        );
        assert_eq!(
            error(quote!(seed = 18446744073709551616)),
            "`seed` = 18446744073709551616: number too large to fit in target type"
        );
        assert_eq!(
            error(quote!(migrations = bundled)),
            "`migrations` takes a string: migrations = \"bundled\" or a folder"
        );
        assert_eq!(
            error(quote!(start_at = 2026)),
            "`start_at` takes a string: start_at = \"2026-10-01T00:00:00Z\""
        );
        assert_eq!(
            error(quote!(worker_threads = 0)),
            "`worker_threads` must be at least 1"
        );
    }

    #[test]
    fn a_repeated_argument_is_an_error() {
        assert_eq!(error(quote!(seed = 1, seed = 2)), "`seed` is given twice");
    }

    #[test]
    fn flavors_are_current_or_multi_thread() {
        assert_eq!(
            error(quote!(flavor = "multi")),
            "unknown flavor \"multi\": use \"current_thread\" (the default) or \"multi_thread\""
        );
        let e = error(quote!(worker_threads = 2));
        assert!(
            e.starts_with("`worker_threads` needs flavor = \"multi_thread\""),
            "{e}"
        );
        let args = parse(quote!(worker_threads = 2, flavor = "multi_thread"), None).unwrap();
        assert_eq!(
            args.flavor,
            Flavor::MultiThread {
                worker_threads: Some(2)
            }
        );
    }

    #[test]
    fn a_bad_instant_is_an_error_naming_start_at() {
        let e = error(quote!(start_at = "2026-10-01"));
        assert!(
            e.starts_with("`start_at` is not an RFC 3339 instant: expected"),
            "{e}"
        );
    }

    #[test]
    fn rfc3339_instants_are_checked_field_by_field() {
        for good in [
            "2026-10-01T00:00:00Z",
            "2026-10-01t23:59:60z",
            "2024-02-29T12:00:00.123456+09:00",
            "2026-12-31 00:00:00-05:30",
        ] {
            assert_eq!(rfc3339_problem(good), None, "{good}");
        }
        for (bad, problem) in [
            ("2026-10-01", "expected YYYY-MM-DD"),
            ("2026/10/01T00:00:00Z", "expected YYYY-MM-DD"),
            ("2026-10-01T00:00Z", "expected YYYY-MM-DD"),
            ("2026-10-01T00:00:00", "it ends in Z"),
            ("2026-10-01T00:00:00+0900", "it ends in Z"),
            ("2026-10-01T00:00:00+24:00", "it ends in Z"),
            ("2026-10-01T00:00:00Zx", "it ends in Z"),
            ("2026-10-01T00:00:00.Z", "a fraction"),
            ("2026-13-01T00:00:00Z", "the month"),
            ("2025-02-29T00:00:00Z", "that month has no such day"),
            ("2026-04-31T00:00:00Z", "that month has no such day"),
            ("2026-04-00T00:00:00Z", "that month has no such day"),
            ("2026-04-01T24:00:00Z", "the time of day"),
            ("2026-04-01T00:60:00Z", "the time of day"),
        ] {
            let found = rfc3339_problem(bad).unwrap_or_default();
            assert!(found.starts_with(problem), "{bad}: {found}");
        }
    }
}
