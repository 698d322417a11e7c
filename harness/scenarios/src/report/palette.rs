//! The colours of the report pages, in one place so that the accessibility test can check every
//! pair of text and background the pages use for a contrast ratio of at least 4.5:1.
//!
//! States and payment outcomes never differ by colour alone: each also has its own pattern or
//! shape (see the timeline's `<defs>`).

/// Body text.
pub const INK: &str = "#1f1f1f";
/// Secondary text: lane labels, day numbers.
pub const MUTED: &str = "#4d4d4d";
/// The page's and the timeline's background.
pub const PAPER: &str = "#ffffff";
/// Links.
pub const LINK: &str = "#0b57a4";
/// Text of the "holds" badge, on [`HOLDS_BG`].
pub const HOLDS_FG: &str = "#1b5e20";
/// Background of the "holds" badge.
pub const HOLDS_BG: &str = "#e6f4ea";
/// Text of the "does not hold" badge, on [`FAILS_BG`].
pub const FAILS_FG: &str = "#8b1a1a";
/// Background of the "does not hold" badge.
pub const FAILS_BG: &str = "#fde8e8";
/// Background of table headers.
pub const HEAD_BG: &str = "#eef2f6";
/// Background of the total rows.
pub const TOTAL_BG: &str = "#f4f4f4";

/// Every (text, background) pair the pages draw text with.
pub const TEXT_PAIRS: &[(&str, &str)] = &[
    (INK, PAPER),
    (MUTED, PAPER),
    (LINK, PAPER),
    (HOLDS_FG, HOLDS_BG),
    (FAILS_FG, FAILS_BG),
    (INK, HEAD_BG),
    (INK, TOTAL_BG),
];

/// Lines: grid, separators.
pub(crate) const GRID: &str = "#d0d0d0";
/// Plan periods: fill and outline, by the plan's order of appearance.
pub(crate) const PLANS: &[(&str, &str)] = &[
    ("#cfe0f1", "#4e79a7"),
    ("#fde0c2", "#c26a1b"),
    ("#d4ecd0", "#3f8a35"),
    ("#e8d7ee", "#8a5a9e"),
    ("#d5eeeb", "#3d8c86"),
    ("#f7eab8", "#9c7f12"),
];
/// State `active`: a plain fill.
pub(crate) const ACTIVE: (&str, &str) = ("#cdebc5", "#2e7d32");
/// State `past_due`: diagonal stripes.
pub(crate) const PAST_DUE: (&str, &str) = ("#fff1d6", "#d9891a");
/// State `cancelled`: a cross-hatch.
pub(crate) const CANCELLED: (&str, &str) = ("#ececec", "#6b6b6b");
/// Usage within the quota.
pub(crate) const USAGE: &str = "#5b84b1";
/// Usage above the quota (with stripes).
pub(crate) const OVER: &str = "#c0392b";
/// A payment that succeeded (a filled circle).
pub(crate) const SUCCEEDED: &str = "#2e7d32";
/// A payment that failed (a cross).
pub(crate) const FAILED: &str = "#c62828";
/// An expected error (a diamond).
pub(crate) const ERROR: &str = "#6a1b9a";
/// The today line.
pub(crate) const TODAY: &str = "#c62828";
/// A contract step (a document).
pub(crate) const CONTRACT: &str = "#f7eab8";
/// A drift step on a product (a flag).
pub(crate) const DRIFT: &str = "#d9891a";
/// A product's outage: fill and outline of its band.
pub(crate) const OUTAGE: (&str, &str) = ("#f6dada", "#c62828");
