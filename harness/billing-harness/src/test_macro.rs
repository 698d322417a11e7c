//! What `#[billing_harness::test]` expands to at run time (`billing_harness::__private`): the
//! options as the macro read them, the environment built from them, and the body run on it so
//! that a panic or an `Err` fails the test while the environment, and so its database, is alive.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::{TestEnv, TestEnvBuilder};

/// The macro's arguments, checked at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The test crate's folder (`env!("CARGO_MANIFEST_DIR")` in the expansion).
    pub manifest_dir: &'static str,
    /// `migrations = ...`.
    pub migrations: Migrations,
    /// `start_at = "..."`, RFC 3339.
    pub start_at: Option<&'static str>,
    /// `seed = ...`.
    pub seed: Option<u64>,
}

/// Where the template's migrations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// The crate's own `migrations` folder when it has one, else the builder's default
    /// (`HARNESS_MIGRATIONS`, else the bundled platform schema).
    Crate,
    /// The reference platform's schema, whatever `HARNESS_MIGRATIONS` says.
    Bundled,
    /// A folder, relative to the crate's.
    Folder(&'static str),
}

/// What a test function may return: `()`, or `Result<(), E>` whose `Err` fails the test.
#[diagnostic::on_unimplemented(
    message = "a #[billing_harness::test] function returns `()` or `Result<(), E>` with `E: Display`, not `{Self}`"
)]
pub trait Outcome {
    /// Why the test failed, if it did.
    fn failure(self) -> Option<String>;
}

impl Outcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display> Outcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        // `{:#}`: an `anyhow::Error` shows its causes too.
        self.err().map(|e| format!("{e:#}"))
    }
}

/// The builder the options ask for.
///
/// # Panics
/// `start_at` is not RFC 3339 (the macro checked it, so chrono and the check disagree).
pub fn builder(options: &Options) -> TestEnvBuilder {
    let mut builder = TestEnv::builder();
    match options.migrations {
        Migrations::Crate => {
            let own = Path::new(options.manifest_dir).join("migrations");
            if own.is_dir() {
                builder = builder.migrations(own);
            }
        }
        Migrations::Bundled => builder = builder.migrator(&billing_platform::MIGRATOR),
        Migrations::Folder(dir) => {
            builder = builder.migrations(Path::new(options.manifest_dir).join(dir))
        }
    }
    if let Some(at) = options.start_at {
        let at = DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| {
            panic!("billing-harness: start_at = {at:?} is not an RFC 3339 instant: {e}")
        });
        builder = builder.start_at(at.with_timezone(&Utc));
    }
    if let Some(seed) = options.seed {
        builder = builder.seed(seed);
    }
    builder
}

/// Runs one test: gets its environment, lends it to `test`, and panics if the body returned an
/// `Err`, before the environment drops, so that its database is kept and the note printed.
pub fn run<O: Outcome>(
    runtime: tokio::runtime::Runtime,
    options: Options,
    test: impl for<'e> FnOnce(&'e TestEnv) -> Pin<Box<dyn Future<Output = O> + 'e>>,
) {
    runtime.block_on(async {
        let env = crate::test_env::expect_env(builder(&options).build().await);
        if let Some(failure) = test(&env).await.failure() {
            panic!("the test returned an error: {failure}");
        }
        drop(env);
    });
}
