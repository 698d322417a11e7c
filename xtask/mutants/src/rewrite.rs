//! A SQL mutant as a rewrite of query text at run time: what the mutated string literal sends to
//! Postgres in place of what the original one sends, so the tests built once can run every SQL
//! mutant without a rebuild (the proxy in [`super::proxy`] applies it).
//!
//! Pure functions over text. A literal is read as the program sees it at run time: escapes and
//! line continuations resolved, and `{NAME}` taken as a `format!` argument, a hole that matches
//! whatever text the program put there and that the rewrite carries over.

use std::ops::Range;

use super::sql::{self, SqlMutant};

/// One piece of a literal as run: text, or a `format!` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text sent as it is.
    Text(String),
    /// `{NAME}`: the text of a `format!` argument, unknown here.
    Hole(String),
}

/// What a mutant changes in the queries the program sends: every run of `from` (texts with holes
/// between them) becomes `to`, the holes' texts carried over by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewrite {
    /// Texts, in order, with one hole between each two; none empty.
    from: Vec<String>,
    /// The replacement: text, and holes by their index in `holes`.
    to: Vec<To>,
}

/// One piece of a replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum To {
    /// Text written as it is.
    Text(String),
    /// The text the hole with this index matched.
    Hole(usize),
}

impl Rewrite {
    /// `query` with every match rewritten, or `None` when nothing matched.
    pub(crate) fn apply(&self, query: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = 0;
        let mut hit = false;
        while let Some((range, captured)) = self.find(query, rest) {
            out.push_str(&query[rest..range.start]);
            for piece in &self.to {
                match piece {
                    To::Text(text) => out.push_str(text),
                    To::Hole(i) => out.push_str(captured[*i]),
                }
            }
            rest = range.end;
            hit = true;
        }
        hit.then(|| {
            out.push_str(&query[rest..]);
            out
        })
    }

    /// Whether `text` holds a match.
    pub(crate) fn matches(&self, text: &str) -> bool {
        self.find(text, 0).is_some()
    }

    /// The first match at or after `from_byte`: its range and what each hole matched (the
    /// shortest text before the next piece).
    fn find<'q>(&self, query: &'q str, from_byte: usize) -> Option<(Range<usize>, Vec<&'q str>)> {
        let start = from_byte + query.get(from_byte..)?.find(&self.from[0])?;
        let mut end = start + self.from[0].len();
        let mut captured = Vec::with_capacity(self.from.len() - 1);
        // Past the first text, a later start can only find less: the first is the one.
        for text in &self.from[1..] {
            let at = query[end..].find(text.as_str())?;
            captured.push(&query[end..end + at]);
            end += at + text.len();
        }
        Some((start..end, captured))
    }
}

/// The rewrite that `mutant` of `source`, in the literal at `literal`, makes at run time, or
/// `None` when it cannot be told from the text (its edits leave the literal, a hole at either
/// end of the literal is removed, two holes touch, or `others` (every other SQL literal as run)
/// holds a match, so the rewrite would change more than this literal). Such a mutant is built
/// instead.
pub(crate) fn rewrite(
    source: &str,
    literal: Range<usize>,
    mutant: &SqlMutant,
    others: &[String],
) -> Option<Rewrite> {
    if mutant
        .edits
        .iter()
        .any(|e| e.range.start < literal.start || e.range.end > literal.end)
    {
        return None;
    }
    let raw = is_raw(source, literal.start);
    let mut mutated = source[literal.clone()].to_owned();
    for edit in mutant.edits.iter().rev() {
        let at = edit.range.start - literal.start..edit.range.end - literal.start;
        mutated.replace_range(at, &edit.text);
    }
    let mut original = pieces(&source[literal.clone()], raw);
    let mut after = pieces(&mutated, raw);
    // A hole at either end matches anything: both sides must keep it, and it is left out.
    for end in [true, false] {
        let pick = |p: &mut Vec<Piece>| if end { p.pop() } else { p.drain(..1).next() };
        let hole = |p: &Vec<Piece>| {
            let piece = if end { p.last() } else { p.first() };
            matches!(piece, Some(Piece::Hole(_)))
        };
        match (hole(&original), hole(&after)) {
            (true, true) if original.len() > 1 && after.len() > 1 => {
                if pick(&mut original) != pick(&mut after) {
                    return None;
                }
            }
            (false, false) => {}
            _ => return None,
        }
    }
    let mut from = Vec::new();
    let mut holes = Vec::new();
    for piece in original {
        match piece {
            Piece::Text(text) => from.push(text),
            Piece::Hole(name) => holes.push(name),
        }
    }
    if from.len() != holes.len() + 1 || from.iter().any(|t| t.trim().is_empty()) {
        return None;
    }
    let mut used = vec![false; holes.len()];
    let mut to = Vec::new();
    for piece in after {
        match piece {
            Piece::Text(text) => to.push(To::Text(text)),
            Piece::Hole(name) => {
                let i = (0..holes.len()).find(|&i| holes[i] == name && !used[i])?;
                used[i] = true;
                to.push(To::Hole(i));
            }
        }
    }
    let rewrite = Rewrite { from, to };
    if others.iter().any(|other| rewrite.matches(other)) {
        return None;
    }
    Some(rewrite)
}

/// Every SQL literal of `source` as run, its holes written `{NAME}`, but for the one at `skip`.
pub(crate) fn literals_as_run(source: &str, skip: Option<Range<usize>>) -> Vec<String> {
    sql::sql_literals(source)
        .into_iter()
        .filter(|r| Some(r) != skip.as_ref())
        .map(|r| {
            pieces(&source[r.clone()], is_raw(source, r.start))
                .into_iter()
                .map(|p| match p {
                    Piece::Text(text) => text,
                    Piece::Hole(name) => format!("{{{name}}}"),
                })
                .collect()
        })
        .collect()
}

/// The literal of `source` holding `mutant`'s first edit.
pub(crate) fn literal_of(source: &str, mutant: &SqlMutant) -> Option<Range<usize>> {
    let first = mutant.edits.first()?;
    sql::sql_literals(source)
        .into_iter()
        .find(|r| r.start <= first.range.start && first.range.end <= r.end)
}

/// Whether the literal whose content starts at `start` is a raw string (`r"`, `r#"`).
fn is_raw(source: &str, start: usize) -> bool {
    let before = source[..start.saturating_sub(1)].trim_end_matches('#');
    before.ends_with('r')
}

/// A literal's content as the program holds it, split at `format!` arguments.
fn pieces(content: &str, raw: bool) -> Vec<Piece> {
    let text = if raw {
        content.to_owned()
    } else {
        unescape(content)
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                current.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                current.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(Piece::Text(std::mem::take(&mut current)));
                out.push(Piece::Hole(name));
            }
            c => current.push(c),
        }
    }
    out.push(Piece::Text(current));
    out.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    out
}

/// A normal string literal's escapes resolved: `\` at a line's end drops the line break and the
/// next line's leading whitespace.
fn unescape(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\n') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    fn schema() -> Schema {
        Schema::parse(
            "create table billings (id bigint generated always as identity primary key, \
               subscription_id bigint not null, starts_on date not null, ends_on date);",
        )
    }

    /// Every mutant of `source` with its rewrite.
    fn rewrites(source: &str) -> Vec<(String, Option<Rewrite>)> {
        sql::mutants(source, &schema())
            .into_iter()
            .map(|m| {
                let literal = literal_of(source, &m).unwrap();
                let others = literals_as_run(source, Some(literal.clone()));
                let r = rewrite(source, literal, &m, &others);
                (m.description, r)
            })
            .collect()
    }

    /// The rewrite of the first mutant of `source` whose description starts with `change`.
    fn first(source: &str, change: &str) -> Rewrite {
        rewrites(source)
            .into_iter()
            .find(|(d, _)| d.starts_with(change))
            .and_then(|(_, r)| r)
            .unwrap()
    }

    #[test]
    fn a_continued_literal_rewrites_the_text_the_program_sends() {
        let source = "fn f() {\n    sqlx::query(\"select id from billings \\\n        where starts_on < $1\");\n}\n";
        let flip = first(source, "replace < with <=");
        assert_eq!(
            flip.apply("select id from billings where starts_on < $1"),
            Some("select id from billings where starts_on <= $1".to_owned())
        );
        assert_eq!(flip.apply("select 1"), None);
    }

    #[test]
    fn format_arguments_are_carried_over_and_may_be_dropped_inside() {
        let source = "fn f() {\n    sqlx::query(&format!(\"select id from billings b where b.id in ({IDS}) and b.starts_on < $1 order by id\"));\n}\n";
        let flip = first(source, "replace < with <=");
        assert_eq!(
            flip.apply("select id from billings b where b.id in (select 7) and b.starts_on < $1 order by id"),
            Some("select id from billings b where b.id in (select 7) and b.starts_on <= $1 order by id".to_owned())
        );
        let dropped = first(source, "drop condition `b.id in ({IDS})`");
        let out = dropped
            .apply("select id from billings b where b.id in (select 7) and b.starts_on < $1 order by id")
            .unwrap();
        assert!(!out.contains("select 7"), "{out}");
    }

    #[test]
    fn a_literal_that_another_one_contains_is_built_instead() {
        let source = "fn f() {\n    sqlx::query(\"select id from billings where starts_on < $1\");\n    sqlx::query(\"select id from billings where starts_on < $1 and ends_on is null\");\n}\n";
        let all = rewrites(source);
        let flips: Vec<bool> = all
            .iter()
            .filter(|(d, _)| d.starts_with("replace < with <="))
            .map(|(_, r)| r.is_some())
            .collect();
        // The first literal runs inside the second: only the second is rewritten.
        assert_eq!(flips, [false, true]);
    }

    #[test]
    fn escapes_and_braces_read_as_the_program_holds_them() {
        assert_eq!(unescape("a \\\n     b\\\"c\\\\"), "a b\"c\\");
        assert_eq!(
            pieces("x {{1}} {A} y", false),
            vec![
                Piece::Text("x {1} ".into()),
                Piece::Hole("A".into()),
                Piece::Text(" y".into())
            ]
        );
    }
}
