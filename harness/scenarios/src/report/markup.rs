//! Text made safe for the markup of the pages and of the timeline picture: the one escaping
//! both use, below them so that neither imports the other for it.

/// `s` with `&`, `<`, `>` and `"` escaped for HTML (and SVG) text and attributes.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
