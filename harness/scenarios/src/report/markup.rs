//! Text made safe for the markup of the pages and of the timeline picture: the one escaping
//! both use, below them so that neither imports the other for it.

/// `s` with `&`, `<`, `>` and `"` escaped for HTML (and SVG) text and attributes.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A link to the page `NAME.html` beside the current one: `./` first, so that a name never reads
/// as a scheme (`javascript:`), and every byte but letters, digits and `-._~` percent-encoded, so
/// that none ends the attribute or starts a query or fragment.
pub(crate) fn page_link(name: &str) -> String {
    let mut link = String::from("./");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            link.push(char::from(byte));
        } else {
            link.push_str(&format!("%{byte:02X}"));
        }
    }
    link.push_str(".html");
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_link_is_relative_and_encoded() {
        assert_eq!(page_link("declined-dunning"), "./declined-dunning.html");
        assert_eq!(
            page_link("javascript:alert(1)"),
            "./javascript%3Aalert%281%29.html"
        );
        assert_eq!(page_link("a \"b\"#?"), "./a%20%22b%22%23%3F.html");
        assert_eq!(page_link("요금"), "./%EC%9A%94%EA%B8%88.html");
    }
}
