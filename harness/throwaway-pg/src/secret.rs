//! `Secret`: a password, or a URL that carries one, that prints as `***`: whoever hands it to a
//! log, a panic message or an assertion shows nothing, and reading it takes a call named for it.

/// A password, or a connection URL with the password in it, that `Debug` and `Display` show as
/// `***`. [`Secret::expose`] gives the text itself, for the program under test.
///
/// ```
/// # fn f(secret: throwaway_pg::Secret) {
/// assert_eq!(format!("{secret} {secret:?}"), "*** ***");
/// let password: &str = secret.expose();
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The text itself: pass it to the program or driver that needs it, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_stars_and_exposes_its_text() {
        let secret = Secret::new("s3cret");
        for shown in [
            format!("{secret}"),
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(secret.expose(), "s3cret");
    }
}
