//! Connection strings as libpq reads them: a `postgres://` URL checked and decoded the way libpq
//! decodes it (`p%40ss` is the password `p@ss`); and, in this one place, the hiding of passwords
//! from anything printed: in a URL, in a libpq `key=value` string, in a message quoting either.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::EnvError;

/// Why a database URL cannot be read. Its words never show the password, nor the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UrlError {
    reason: String,
}

impl UrlError {
    fn new(reason: impl Into<String>) -> UrlError {
        UrlError {
            reason: reason.into(),
        }
    }
}

/// The form every refusal names.
const EXPECTED: &str = "expected postgres://USER:PASSWORD@HOST:PORT/DATABASE";

/// Driver options from a `postgres://` or `postgresql://` URL, read as libpq reads one: every
/// `%XX` is the byte it encodes (a password `p%40ss` is `p@ss`), and a `%` without two hex
/// digits after it, or a `%00`, is an error, as it is for `psql`. Nothing is connected to.
///
/// ```
/// use throwaway_pg::parse_url;
///
/// let options = parse_url("postgres://qa%40corp:p%40ss@db.internal:6432/app").unwrap();
/// assert_eq!(options.get_username(), "qa@corp");
/// assert_eq!(options.get_database(), Some("app"));
/// let err = parse_url("host=db password=s3cret").unwrap_err().to_string();
/// assert!(err.contains("key=value") && !err.contains("s3cret"));
/// assert!(parse_url("postgres://qa:100%@db/app").is_err());
/// ```
///
/// # Errors
/// Not a `postgres://` URL (a libpq `key=value` string is named as such), a bad `%` sequence,
/// or a part the driver refuses (a port that is not a number, say); the error never shows the
/// password.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, UrlError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(UrlError::new(if url.contains('=') {
            format!(
                "a key=value connection string is not read here; {EXPECTED} (a character such as @ in the password as %XX: p%40ss)"
            )
        } else {
            EXPECTED.to_owned()
        }));
    }
    percent_decode(url)?;
    PgConnectOptions::from_str(url).map_err(|e| UrlError::new(e.to_string()))
}

/// [`parse_url`] for a URL given as `var` (a command-line option or an environment variable).
///
/// # Errors
/// [`EnvError::BadVariable`] naming `var`, with the URL shown as [`redact`] shows it.
pub(crate) fn parse_given(url: &str, var: &'static str) -> Result<PgConnectOptions, EnvError> {
    parse_url(url).map_err(|e| EnvError::BadVariable {
        var,
        value: redact(url),
        reason: e.to_string(),
    })
}

/// A part of a URL (the password, say) with every `%XX` decoded, as libpq decodes each part.
///
/// # Errors
/// A `%` without two hex digits after it, a `%00`, or bytes that are not UTF-8 once decoded.
pub(crate) fn decode_part(part: &str, what: &str) -> Result<String, UrlError> {
    String::from_utf8(percent_decode(part)?)
        .map_err(|_| UrlError::new(format!("the {what} is not UTF-8 once its %XX are decoded")))
}

/// The password a `postgres://` URL gives, decoded as libpq decodes it: the user information's
/// (`postgres://qa:p%40ss@db/app` gives `p@ss`), else a `password` query parameter's; `None`
/// when it gives none.
///
/// # Errors
/// The password holds a bad `%` sequence (see [`decode_part`]).
pub(crate) fn password_in(url: &str) -> Result<Option<String>, UrlError> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let userinfo = authority.rsplit_once('@').map(|(userinfo, _)| userinfo);
    if let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) {
        return decode_part(password, "password").map(Some);
    }
    let query = tail.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case("password"))
        .map(|(_, password)| decode_part(password, "password"))
        .transpose()
}

/// `url` (a `postgres://` URL) with `password` in its user information, percent-encoded, in
/// place of any there; `url` itself when `password` is `None`.
pub(crate) fn with_password(url: &str, password: Option<&str>) -> String {
    let (Some(password), Some((head, rest))) = (password, url.split_once("://")) else {
        return url.to_owned();
    };
    let password = percent_encode(password.as_bytes(), b"-._~");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let after = &rest[userinfo.len()..];
            format!("{head}://{user}:{password}{after}")
        }
        None => format!("{head}://:{password}@{rest}"),
    }
}

/// `bytes` as URL text: ASCII letters, digits and the bytes in `keep` as they are, every other
/// byte as `%XX`.
pub(crate) fn percent_encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text`'s bytes with every `%XX` decoded; libpq's rules: two hex digits after each `%`, and
/// never `%00`.
fn percent_decode(text: &str) -> Result<Vec<u8>, UrlError> {
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.as_bytes().iter();
    while let Some(&b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        match (hex(bytes.next()), hex(bytes.next())) {
            (Some(0), Some(0)) => {
                return Err(UrlError::new(
                    "the URL holds %00, which libpq refuses in any part",
                ));
            }
            (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
            _ => {
                return Err(UrlError::new(
                    "a % in the URL is not followed by two hex digits (each %XX is one byte: write %25 for a % itself)",
                ));
            }
        }
    }
    Ok(out)
}

/// `url` with its password replaced by `***`, for anything a person or a log may see: the
/// password of the user information (`postgres://qa:***@db/app`) and a `password` query
/// parameter (`?password=***`). Text without a password comes back unchanged, and a URL too
/// malformed to parse is still redacted (nothing after `://` and before the last `@` is shown
/// past the user name). Text that is no URL is read as a libpq `key=value` string, whose
/// `password` value is hidden however it is written (`password = 'a b'` too).
///
/// ```
/// use throwaway_pg::redact_url;
///
/// assert_eq!(
///     redact_url("postgres://qa:s3cret@db.internal:5432/app"),
///     "postgres://qa:***@db.internal:5432/app"
/// );
/// assert_eq!(
///     redact_url("postgres://qa@db/app?sslmode=disable&password=s3cret"),
///     "postgres://qa@db/app?sslmode=disable&password=***"
/// );
/// assert_eq!(redact_url("postgres://qa@db/app"), "postgres://qa@db/app");
/// assert_eq!(
///     redact_url("host=db user=qa password='s3 cret' dbname=app"),
///     "host=db user=qa password=*** dbname=app"
/// );
/// ```
pub fn redact(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return redact_pairs(url);
    };
    let (head, rest) = url.split_at(scheme + 3);
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => rest.split_at(at),
        None => ("", rest),
    };
    let userinfo = match userinfo.split_once(':') {
        // The placeholder of a usage text, `postgres://USER:PASSWORD@HOST`, is no one's secret.
        Some((user, "PASSWORD")) => format!("{user}:PASSWORD"),
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_owned(),
    };
    let after = match after.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => after.to_owned(),
    };
    format!("{head}{userinfo}{after}")
}

/// `text` (a message, say) with every password in it hidden: each `password` value as in a
/// libpq `key=value` string, then the password of each URL as [`redact`] hides it. A URL runs from its scheme to the next space, quote mark or escape character.
///
/// ```
/// use throwaway_pg::redact_passwords;
///
/// assert_eq!(
///     redact_passwords("unexpected argument 'postgres://qa:s3cret@db/app' found"),
///     "unexpected argument 'postgres://qa:***@db/app' found"
/// );
/// assert_eq!(
///     redact_passwords("connect to host=db password=s3cret: refused"),
///     "connect to host=db password=***: refused"
/// );
/// ```
pub fn redact_passwords(text: &str) -> String {
    let text = redact_pairs(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(sep) = rest.find("://") {
        let start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '\u{1b}'))
            .map_or(rest.len(), |i| sep + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with the value of every `password` key hidden (`password=***`), read as libpq reads a
/// `key=value` connection string: spaces may surround the `=`, a value in single quotes runs to
/// the closing quote (`\'` and `\\` inside it are escapes), a bare value runs to the next space
/// (`\ ` is an escaped space). The key is found in any case and at the end of a longer word
/// (`PGPASSWORD=...`), so more is hidden rather than less. Quote marks and `,;:)` that end a bare
/// value are left, so that a message quoting the string (`'host=db password=s3cret'`) keeps its
/// closing quote.
pub(crate) fn redact_pairs(text: &str) -> String {
    const KEY: &[u8] = b"password";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // The key is ASCII, so a match starts and ends on character boundaries.
    while let Some(at) = rest
        .as_bytes()
        .windows(KEY.len())
        .position(|w| w.eq_ignore_ascii_case(KEY))
    {
        let after_key = &rest[at + KEY.len()..];
        let value = after_key
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start)
            .filter(|v| !v.is_empty());
        let Some(value) = value else {
            out.push_str(&rest[..at + KEY.len()]);
            rest = after_key;
            continue;
        };
        let value_at = rest.len() - value.len();
        out.push_str(&rest[..value_at]);
        out.push_str("***");
        rest = &value[value_len(value)..];
    }
    out.push_str(rest);
    out
}

/// How many bytes of `value` (which follows `password=`) are the password.
fn value_len(value: &str) -> usize {
    let mut chars = value.char_indices();
    if value.starts_with('\'') {
        chars.next();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => return i + 1,
                _ => {}
            }
        }
        // Unterminated: all of it.
        return value.len();
    }
    let mut end = value.len();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            end = i;
            break;
        }
        if c == '\\' {
            chars.next();
        }
    }
    let bare = &value[..end];
    match bare
        .trim_end_matches(['\'', '"', '`', ',', ';', ':', ')'])
        .len()
    {
        0 => end,
        kept => kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_of_a_key_value_string_is_hidden_however_it_is_written() {
        for (text, shown) in [
            (
                "host=db user=qa password=s3cret dbname=app",
                "host=db user=qa password=*** dbname=app",
            ),
            ("password='a b' host=db", "password=*** host=db"),
            ("password = s3cret host=db", "password = *** host=db"),
            ("password =\t's3 cret'", "password =\t***"),
            (r"password='it\'s \\ here' host=db", "password=*** host=db"),
            (r"password=a\ b host=db", "password=*** host=db"),
            ("password='unterminated host=db", "password=***"),
            ("PASSWORD=s3cret", "PASSWORD=***"),
            ("PGPASSWORD=s3cret psql", "PGPASSWORD=*** psql"),
            ("password=비밀번호 host=db", "password=*** host=db"),
            (
                "invalid value 'host=db password=s3cret' for '--database-url <URL>'",
                "invalid value 'host=db password=***' for '--database-url <URL>'",
            ),
            (
                "connect to \"host=db password=s3cret\": refused",
                "connect to \"host=db password=***\": refused",
            ),
            (
                "password=s3cret: connection refused",
                "password=***: connection refused",
            ),
            ("password=a password=b", "password=*** password=***"),
        ] {
            assert_eq!(redact_pairs(text), shown, "{text}");
        }
    }

    #[test]
    fn text_without_a_password_value_is_left_as_it_is() {
        for text in [
            "password authentication failed for user \"qa\"",
            "host=db user=qa dbname=app",
            "password=",
            "password= ",
            "a passwordless=true",
            "",
            "비밀번호",
        ] {
            assert_eq!(redact_pairs(text), text);
        }
    }

    #[test]
    fn percent_encoded_parts_are_decoded_as_libpq_decodes_them() {
        assert_eq!(decode_part("p%40ss", "password").unwrap(), "p@ss");
        assert_eq!(decode_part("%2525%3a", "password").unwrap(), "%25:");
        assert_eq!(decode_part("plain", "password").unwrap(), "plain");
        assert_eq!(decode_part("%EB%B9%84", "password").unwrap(), "비");
        for bad in ["100%", "%4", "%zz", "%+1", "a%00b", "%"] {
            let err = decode_part(bad, "password").unwrap_err().to_string();
            assert!(err.contains('%'), "{bad}: {err}");
        }
        assert!(
            decode_part("%ff", "password")
                .unwrap_err()
                .to_string()
                .contains("the password is not UTF-8")
        );
    }

    #[test]
    fn the_password_of_a_url_is_found_where_libpq_finds_it() {
        for (url, password) in [
            ("postgres://qa:p%40ss@db:6432/app", Some("p@ss")),
            ("postgres://qa:a:b@db/app", Some("a:b")),
            (
                "postgres://qa@db/app?sslmode=disable&PASSWORD=s%20c",
                Some("s c"),
            ),
            ("postgres://qa:first@db/app?password=second", Some("first")),
            ("postgres://qa@db/app", None),
            ("postgres://db/app?password", None),
            ("postgres://db", None),
        ] {
            assert_eq!(password_in(url).unwrap().as_deref(), password, "{url}");
        }
        assert!(password_in("postgres://qa:100%@db/app").is_err());
    }

    #[test]
    fn a_password_goes_into_the_user_information_encoded() {
        for (url, password, with) in [
            (
                "postgres://qa@db:6432/app?sslmode=disable",
                Some("p@ss w/rd"),
                "postgres://qa:p%40ss%20w%2Frd@db:6432/app?sslmode=disable",
            ),
            (
                "postgres://qa:old@db/app",
                Some("new"),
                "postgres://qa:new@db/app",
            ),
            (
                "postgres://db:5432/app",
                Some("pw"),
                "postgres://:pw@db:5432/app",
            ),
            ("postgres://qa@db/app", None, "postgres://qa@db/app"),
        ] {
            assert_eq!(with_password(url, password), with, "{url}");
        }
        let url = with_password("postgres://qa@db/app", Some("p@ss%:/?#é"));
        let options = parse_url(&url).unwrap();
        assert_eq!(options.get_username(), "qa");
        assert_eq!(password_in(&url).unwrap().as_deref(), Some("p@ss%:/?#é"));
    }

    #[test]
    fn a_url_is_read_as_libpq_reads_it_and_never_echoed() {
        let options = parse_url("postgresql://q%40a:p%40ss@db:6432/my%20db").unwrap();
        assert_eq!(options.get_username(), "q@a");
        assert_eq!(options.get_port(), 6432);
        assert_eq!(options.get_database(), Some("my db"));
        for bad in [
            "host=db password=Secret1",
            "mysql://root:Secret1@db/x",
            "postgres://qa:Secret1%@db/x",
            "postgres://qa:Secret1%00@db/x",
            "postgres://qa:Secret1@db:port/x",
            "",
        ] {
            let err = parse_url(bad).unwrap_err().to_string();
            assert!(!err.contains("Secret1"), "{bad}: {err}");
            assert!(!err.is_empty());
        }
        assert!(
            parse_url("host=db password=x")
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
    }

    #[test]
    fn passwords_in_urls_and_pairs_are_hidden_wherever_they_appear_in_a_message() {
        for (text, shown) in [
            (
                "a postgresql://u:p@h/x and http://k:v@h ok",
                "a postgresql://u:***@h/x and http://k:***@h ok",
            ),
            (
                "to 'postgres://qa@db/app?password=s3cret' or \"password='a b' host=db\"",
                "to 'postgres://qa@db/app?password=***' or \"password=*** host=db\"",
            ),
            ("password='x://y' host=db", "password=*** host=db"),
            ("no url here", "no url here"),
            ("://", "://"),
        ] {
            assert_eq!(redact_passwords(text), shown, "{text}");
        }
    }
}
