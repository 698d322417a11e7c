//! The SQL mutator: finds the SQL in a Rust file's string literals and lists its mutants, each a
//! small change of the file's text with the line it is on and a description of the change.
//!
//! Pure functions over text: [`mutants`] lists, [`apply`] writes one mutant into the source.
//! Mutations: flip a comparison (`<` ↔ `<=`, `>` ↔ `>=`), swap `and` ↔ `or`, drop one condition
//! of a `where` or `on` (one conjunct of an `and` chain, or the whole clause when it has one),
//! swap a column for a sibling of the same table and type (from [`Schema`]), and swap two
//! adjacent bound parameters (`$1` ↔ `$2`) when both appear in a literal.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use super::schema::Schema;

/// The scopes of a statement: the statement (0), then each parenthesised subquery.
struct Scopes {
    /// Each token's scope.
    of: Vec<usize>,
    /// Each scope's enclosing scope (none for the statement).
    parents: Vec<Option<usize>>,
}

/// What names tables in a statement.
struct Named {
    /// Per scope, its tables with their aliases.
    tables: Vec<Vec<(String, Option<String>)>>,
    /// The tokens that name a table or an alias, or a derived table's columns: no column.
    not_columns: BTreeSet<usize>,
    /// The tokens of insert column lists.
    insert_list: BTreeSet<usize>,
    /// The table each token of an insert column list inserts into.
    insert_table: HashMap<usize, String>,
}

impl Named {
    /// The table that `alias` (or a table's own name) stands for in `scope` or a scope around.
    fn table_of_alias(&self, scopes: &Scopes, scope: usize, alias: &str) -> Option<String> {
        let mut s = Some(scope);
        while let Some(sc) = s {
            for (table, al) in &self.tables[sc] {
                if al.as_deref() == Some(alias) || (al.is_none() && table == alias) {
                    return Some(table.clone());
                }
            }
            s = scopes.parents[sc];
        }
        None
    }

    /// The one table of the nearest scope, from `scope` outwards, whose tables have a column
    /// `column`; none when two tables of that scope have it (ambiguous).
    fn table_having(
        &self,
        scopes: &Scopes,
        scope: usize,
        schema: &Schema,
        column: &str,
    ) -> Option<String> {
        let mut s = Some(scope);
        while let Some(sc) = s {
            let having: Vec<&String> = self.tables[sc]
                .iter()
                .map(|(table, _)| table)
                .filter(|table| schema.column(table, column).is_some())
                .collect();
            match having.as_slice() {
                [] => s = scopes.parents[sc],
                [one] => return Some((*one).clone()),
                _ => return None,
            }
        }
        None
    }
}

/// One replacement of a byte range of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    /// The replaced bytes.
    pub(crate) range: Range<usize>,
    /// What they become.
    pub(crate) text: String,
}

/// What a SQL mutant changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlKind {
    /// `<` ↔ `<=`, `>` ↔ `>=`.
    Comparison,
    /// `and` ↔ `or`.
    Logic,
    /// One condition of a `where` or `on` dropped.
    DropCondition,
    /// A column swapped for a sibling of the same table and type.
    Column,
    /// Two bound parameters swapped.
    Parameters,
}

/// One SQL mutant of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlMutant {
    /// 1-based line of the (first) change.
    pub(crate) line: usize,
    /// The kind of change.
    pub(crate) kind: SqlKind,
    /// The change, stable across unrelated edits of the file (no line numbers in it): the key of
    /// an accepted survivor.
    pub(crate) description: String,
    /// The replacements, in file order, not overlapping.
    pub(crate) edits: Vec<Edit>,
}

/// Lists the mutants of every SQL string literal in `source`, in file order.
pub(crate) fn mutants(source: &str, schema: &Schema) -> Vec<SqlMutant> {
    let mut all = Vec::new();
    for literal in sql_literals(source) {
        let tokens = tokenize(source, literal.clone());
        let mut ctx = Ctx {
            source,
            tokens: &tokens,
            between: BTreeSet::new(),
        };
        ctx.between = ctx.between_ands();
        ctx.comparisons(&mut all);
        ctx.logic(&mut all);
        ctx.drop_conditions(&mut all);
        let (resolved, written) = ctx.resolve(schema);
        ctx.columns(schema, &resolved, &written, &mut all);
        ctx.parameters(&ctx.parameter_types(schema, &resolved), &mut all);
    }
    all.sort_by_key(|m| (m.edits[0].range.start, m.edits[0].range.end));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &mut all {
        m.line = line_of(source, m.edits[0].range.start);
        let n = seen.entry(m.description.clone()).or_default();
        *n += 1;
        if *n > 1 {
            m.description = format!("{} (#{n})", m.description);
        }
    }
    all
}

/// `source` with `mutant` written in.
pub(crate) fn apply(source: &str, mutant: &SqlMutant) -> String {
    let mut out = source.to_owned();
    for edit in mutant.edits.iter().rev() {
        out.replace_range(edit.range.clone(), &edit.text);
    }
    out
}

/// 1-based line of byte `offset`.
fn line_of(source: &str, offset: usize) -> usize {
    source[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The content ranges (between the quotes) of the string literals of `source` that hold SQL.
pub(crate) fn sql_literals(source: &str) -> Vec<Range<usize>> {
    string_literals(source)
        .into_iter()
        .filter(|r| looks_like_sql(source, r))
        .collect()
}

/// The content ranges of every string literal of a Rust source, raw ones included; comments,
/// character literals and lifetimes skipped.
fn string_literals(source: &str) -> Vec<Range<usize>> {
    let b = source.as_bytes();
    let len = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < len {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < len && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < len && depth > 0 {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < len && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push(start..i.min(len));
                i += 1;
            }
            b'\'' => {
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < len && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let width = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                    // 'x' is a character; 'a without a closing quote is a lifetime.
                    i += if b.get(i + 1 + width) == Some(&b'\'') {
                        2 + width
                    } else {
                        1
                    };
                }
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < len && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                let word = &source[start..i];
                if matches!(word, "r" | "br" | "cr") && i < len && matches!(b[i], b'"' | b'#') {
                    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                    if b.get(i + hashes) == Some(&b'"') {
                        let start = i + hashes + 1;
                        let closing = format!("\"{}", "#".repeat(hashes));
                        let end = source[start..].find(&closing).map_or(len, |at| start + at);
                        out.push(start..end);
                        i = (end + closing.len()).min(len);
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Statement keywords a SQL literal starts with.
const STATEMENTS: &[&str] = &["select", "insert", "update", "delete", "with"];

/// Whether the literal at `range` starts like a SQL statement or is the first argument of
/// `sqlx::query`, `query_as` or `query_scalar` (directly or through `&format!(`).
fn looks_like_sql(source: &str, range: &Range<usize>) -> bool {
    let content =
        source[range.clone()].trim_start_matches(|c: char| c.is_whitespace() || c == '\\');
    let first: String = content
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    if STATEMENTS.contains(&first.as_str())
        && content[first.len()..].starts_with(|c: char| c.is_whitespace() || c == '\\')
    {
        return true;
    }
    // Before the opening quote, and before `r#` of a raw string.
    let mut before = source[..range.start.saturating_sub(1)].trim_end_matches('#');
    before = before.strip_suffix('r').unwrap_or(before).trim_end();
    for prefix in ["format!(", "&"] {
        before = before.strip_suffix(prefix).unwrap_or(before).trim_end();
    }
    let Some(mut before) = before.strip_suffix('(') else {
        return false;
    };
    if before.ends_with('>')
        && let Some(open) = before.rfind("::<")
    {
        before = &before[..open];
    }
    ["query", "query_as", "query_scalar"]
        .iter()
        .any(|f| before.ends_with(&format!("::{f}")))
}

/// A type without its length, precision or array brackets, under one name per type
/// (`numeric(20,4)` → `numeric`, `bigint[]` → `bigint`, `integer` → `int`).
fn base_type(ty: &str) -> String {
    let base = ty
        .split(['(', '['])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "integer" | "int4" => "int".to_owned(),
        "int8" => "bigint".to_owned(),
        "character" | "bpchar" => "char".to_owned(),
        _ => base,
    }
}

/// The kinds of SQL token the mutator tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tk {
    /// A word: keyword, table, alias, column or function.
    Word,
    /// `$n`.
    Param(u32),
    /// A comparison operator (`<`, `<=`, `>`, `>=`, `=`, `<>`, `!=`).
    Op,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// `::`.
    Cast,
    /// A quoted string, a number, a `{placeholder}` of `format!` or another character.
    Other,
}

/// One SQL token, with its byte range in the Rust file.
#[derive(Debug, Clone)]
struct Token {
    /// Its kind.
    tk: Tk,
    /// Its bytes in the file.
    range: Range<usize>,
    /// Its text, lower case for words.
    text: String,
}

/// Splits the SQL in the literal at `range` into tokens; a backslash escape (a line
/// continuation, `\n`) counts as white space.
fn tokenize(source: &str, range: Range<usize>) -> Vec<Token> {
    let b = source.as_bytes();
    let end = range.end;
    let mut out = Vec::new();
    let mut i = range.start;
    while i < end {
        let c = b[i];
        let start = i;
        let tk = match c {
            b'\\' => {
                i += 2;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while i < end && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                Tk::Word
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                while i < end && b[i].is_ascii_digit() {
                    i += 1;
                }
                Tk::Param(source[start + 1..i].parse().unwrap_or(0))
            }
            b'\'' => {
                i += 1;
                while i < end {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(end);
                Tk::Other
            }
            b'{' => {
                while i < end && b[i] != b'}' {
                    i += 1;
                }
                i = (i + 1).min(end);
                Tk::Other
            }
            b'(' => {
                i += 1;
                Tk::Open
            }
            b')' => {
                i += 1;
                Tk::Close
            }
            b',' => {
                i += 1;
                Tk::Comma
            }
            b'.' => {
                i += 1;
                Tk::Dot
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 2;
                Tk::Cast
            }
            b'<' | b'>' | b'!' | b'=' => {
                i += 1;
                if i < end && (b[i] == b'=' || (c == b'<' && b[i] == b'>')) {
                    i += 1;
                }
                Tk::Op
            }
            _ => {
                i += source[i..].chars().next().map_or(1, char::len_utf8);
                Tk::Other
            }
        };
        let text = if tk == Tk::Word {
            source[start..i].to_ascii_lowercase()
        } else {
            source[start..i].to_owned()
        };
        out.push(Token {
            tk,
            range: start..i,
            text,
        });
    }
    out
}

/// Words that end a condition, looking left or right from inside it.
const BOUNDARIES: &[&str] = &[
    "and",
    "or",
    "where",
    "on",
    "when",
    "then",
    "else",
    "end",
    "select",
    "from",
    "join",
    "group",
    "order",
    "having",
    "limit",
    "returning",
    "set",
    "values",
    "case",
    "do",
];

/// Words that end a `where` or `on` clause.
const CLAUSE_ENDS: &[&str] = &[
    "group",
    "order",
    "having",
    "limit",
    "offset",
    "returning",
    "join",
    "left",
    "right",
    "inner",
    "full",
    "cross",
    "where",
    "on",
    "union",
    "except",
    "intersect",
    "window",
    "do",
    "for",
];

/// Words that are never a table alias.
const NOT_ALIASES: &[&str] = &[
    "where",
    "join",
    "on",
    "left",
    "right",
    "inner",
    "full",
    "cross",
    "group",
    "order",
    "limit",
    "returning",
    "set",
    "select",
    "values",
    "using",
    "union",
    "having",
    "default",
];

/// One literal's tokens and the file they came from.
struct Ctx<'a> {
    /// The whole file.
    source: &'a str,
    /// The literal's tokens.
    tokens: &'a [Token],
    /// The indexes of the `and` words of `between … and …`: not a boundary, never swapped.
    between: BTreeSet<usize>,
}

impl Ctx<'_> {
    /// Whether token `i` is the word `w`.
    fn is_word(&self, i: usize, w: &str) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| t.tk == Tk::Word && t.text == w)
    }

    /// The file's text of tokens `from..=to` on one line, runs of white space (and line
    /// continuations) squeezed to one space.
    fn text(&self, from: usize, to: usize) -> String {
        let raw = &self.source[self.tokens[from].range.start..self.tokens[to].range.end];
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        let mut space = false;
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
                space = true;
            } else if c.is_whitespace() {
                space = true;
            } else {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
        }
        out
    }

    /// The first token of the condition that ends at token `i`, walking left to a boundary
    /// (a boundary word or a comma outside parentheses, or an unmatched `(`).
    fn condition_start(&self, i: usize) -> usize {
        let mut level = 0;
        let mut j = i;
        loop {
            let t = &self.tokens[j];
            match t.tk {
                Tk::Close => level += 1,
                Tk::Open if level == 0 => return j + 1,
                Tk::Open => level -= 1,
                Tk::Comma if level == 0 => return j + 1,
                Tk::Word
                    if level == 0
                        && BOUNDARIES.contains(&t.text.as_str())
                        && !self.between.contains(&j) =>
                {
                    return j + 1;
                }
                _ => {}
            }
            if j == 0 {
                return 0;
            }
            j -= 1;
        }
    }

    /// The last token of the condition that starts at token `i`, walking right.
    fn condition_end(&self, i: usize) -> usize {
        let mut level = 0;
        let mut j = i;
        while j < self.tokens.len() {
            let t = &self.tokens[j];
            match t.tk {
                Tk::Open => level += 1,
                Tk::Close if level == 0 => return j.saturating_sub(1),
                Tk::Close => level -= 1,
                Tk::Comma if level == 0 => return j.saturating_sub(1),
                Tk::Word
                    if level == 0
                        && BOUNDARIES.contains(&t.text.as_str())
                        && !self.between.contains(&j) =>
                {
                    return j.saturating_sub(1);
                }
                _ => {}
            }
            j += 1;
        }
        self.tokens.len() - 1
    }

    /// The condition around token `i` (which is inside it), as text.
    fn around(&self, i: usize) -> String {
        let from = if i == 0 {
            0
        } else {
            self.condition_start(i - 1)
        };
        let to = self.condition_end(i + 1).max(i);
        self.text(from.min(i), to)
    }

    /// `<` ↔ `<=`, `>` ↔ `>=`.
    fn comparisons(&self, out: &mut Vec<SqlMutant>) {
        for (i, t) in self.tokens.iter().enumerate() {
            let new = match (t.tk, t.text.as_str()) {
                (Tk::Op, "<") => "<=",
                (Tk::Op, "<=") => "<",
                (Tk::Op, ">") => ">=",
                (Tk::Op, ">=") => ">",
                _ => continue,
            };
            out.push(SqlMutant {
                line: 0,
                kind: SqlKind::Comparison,
                description: format!("replace {} with {new} in `{}`", t.text, self.around(i)),
                edits: vec![Edit {
                    range: t.range.clone(),
                    text: new.to_owned(),
                }],
            });
        }
    }

    /// The indexes of the `and` words that belong to a `between … and …`.
    fn between_ands(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let mut pending: Vec<usize> = Vec::new();
        let mut level = 0usize;
        for (i, t) in self.tokens.iter().enumerate() {
            match t.tk {
                Tk::Open => level += 1,
                Tk::Close => level = level.saturating_sub(1),
                Tk::Word if t.text == "between" => pending.push(level),
                Tk::Word if t.text == "and" && pending.last() == Some(&level) => {
                    pending.pop();
                    out.insert(i);
                }
                _ => {}
            }
        }
        out
    }

    /// `and` ↔ `or`.
    fn logic(&self, out: &mut Vec<SqlMutant>) {
        for (i, t) in self.tokens.iter().enumerate() {
            let new = match (t.tk, t.text.as_str()) {
                (Tk::Word, "and") if !self.between.contains(&i) => "or",
                (Tk::Word, "or") => "and",
                _ => continue,
            };
            if i == 0 || i + 1 == self.tokens.len() {
                continue;
            }
            let from = self.condition_start(i - 1);
            let to = self.condition_end(i + 1);
            out.push(SqlMutant {
                line: 0,
                kind: SqlKind::Logic,
                description: format!("replace {} with {new} in `{}`", t.text, self.text(from, to)),
                edits: vec![Edit {
                    range: t.range.clone(),
                    text: new.to_owned(),
                }],
            });
        }
    }

    /// One condition of each `where` and `on` dropped.
    fn drop_conditions(&self, out: &mut Vec<SqlMutant>) {
        for (k, t) in self.tokens.iter().enumerate() {
            if t.tk != Tk::Word || !(t.text == "where" || t.text == "on") {
                continue;
            }
            if t.text == "on" && self.is_word(k + 1, "conflict") {
                continue;
            }
            let start = k + 1;
            let mut end = start;
            let mut level = 0;
            while end < self.tokens.len() {
                let u = &self.tokens[end];
                match u.tk {
                    Tk::Open => level += 1,
                    Tk::Close if level == 0 => break,
                    Tk::Close => level -= 1,
                    Tk::Comma if level == 0 => break,
                    Tk::Word if level == 0 && CLAUSE_ENDS.contains(&u.text.as_str()) => break,
                    _ => {}
                }
                end += 1;
            }
            if end == start {
                continue;
            }
            let clause = t.text.clone();
            let chain = self.conjuncts(start, end);
            if chain.len() == 1 {
                let (from, to) = chain[0];
                let condition = self.text(from, to);
                let edit = if clause == "where" {
                    Edit {
                        range: t.range.start..self.tokens[to].range.end,
                        text: String::new(),
                    }
                } else {
                    Edit {
                        range: self.tokens[from].range.start..self.tokens[to].range.end,
                        text: "true".to_owned(),
                    }
                };
                out.push(SqlMutant {
                    line: 0,
                    kind: SqlKind::DropCondition,
                    description: format!("drop condition `{condition}` from {clause}"),
                    edits: vec![edit],
                });
            }
            self.drop_in_chain(start, end, &clause, out);
        }
    }

    /// The `and`-separated conjuncts of tokens `start..end` as (first, last) token pairs: one
    /// pair for the whole range when it is not an `and` chain (an `or` outside parentheses).
    fn conjuncts(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut parts = Vec::new();
        let mut level = 0;
        let mut from = start;
        let mut has_or = false;
        for j in start..end {
            let u = &self.tokens[j];
            match u.tk {
                Tk::Open => level += 1,
                Tk::Close => level -= 1,
                Tk::Word if level == 0 && u.text == "or" => has_or = true,
                Tk::Word if level == 0 && u.text == "and" && !self.between.contains(&j) => {
                    if j > from {
                        parts.push((from, j - 1));
                    }
                    from = j + 1;
                }
                _ => {}
            }
        }
        if end > from {
            parts.push((from, end - 1));
        }
        if has_or || parts.is_empty() {
            vec![(start, end - 1)]
        } else {
            parts
        }
    }

    /// Drops each conjunct of the `and` chain `start..end` (when it has two or more) and
    /// recurses into the parenthesised conditions inside it, skipping subqueries, function
    /// arguments and `in (…)` lists.
    fn drop_in_chain(&self, start: usize, end: usize, clause: &str, out: &mut Vec<SqlMutant>) {
        let chain = self.conjuncts(start, end);
        if chain.len() >= 2 {
            for (n, &(from, to)) in chain.iter().enumerate() {
                let range = if n + 1 < chain.len() {
                    self.tokens[from].range.start..self.tokens[chain[n + 1].0].range.start
                } else {
                    self.tokens[chain[n - 1].1].range.end..self.tokens[to].range.end
                };
                out.push(SqlMutant {
                    line: 0,
                    kind: SqlKind::DropCondition,
                    description: format!("drop condition `{}` from {clause}", self.text(from, to)),
                    edits: vec![Edit {
                        range,
                        text: String::new(),
                    }],
                });
            }
        }
        let mut j = start;
        while j < end {
            if self.tokens[j].tk == Tk::Open {
                let close = self.matching_close(j).min(end);
                let condition_group = !(self.is_word(j + 1, "select")
                    || self.is_word(j + 1, "with"))
                    && (j == 0
                        || self.tokens[j - 1].tk != Tk::Word
                        || ["and", "or", "not", "where", "on", "when", "then", "else"]
                            .contains(&self.tokens[j - 1].text.as_str()));
                if condition_group && close > j + 1 {
                    self.drop_in_chain(j + 1, close, clause, out);
                }
                j = close;
            }
            j += 1;
        }
    }

    /// The index of the `)` matching the `(` at `open` (or the end).
    fn matching_close(&self, open: usize) -> usize {
        let mut level = 0;
        for j in open..self.tokens.len() {
            match self.tokens[j].tk {
                Tk::Open => level += 1,
                Tk::Close => {
                    level -= 1;
                    if level == 0 {
                        return j;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// The column each word token refers to (`token → (table, column)`), and which of them
    /// are written to (an insert's column list, a `set` target): those are not swapped, as the
    /// parameter swaps already swap the values written.
    fn resolve(&self, schema: &Schema) -> (BTreeMap<usize, (String, String)>, BTreeSet<usize>) {
        let tokens = self.tokens;
        let mut resolved = BTreeMap::new();
        let mut written = BTreeSet::new();
        let scopes = self.scopes();
        let named = self.tables(schema, &scopes);
        let mut seen_set = false;
        for (i, t) in tokens.iter().enumerate() {
            if t.tk == Tk::Word && t.text == "set" {
                seen_set = true;
            }
            if t.tk != Tk::Word || named.not_columns.contains(&i) {
                continue;
            }
            let prev = i.checked_sub(1).map(|p| &tokens[p]);
            let next = tokens.get(i + 1);
            if prev.is_some_and(|p| p.tk == Tk::Cast || (p.tk == Tk::Word && p.text == "as"))
                || next.is_some_and(|n| n.tk == Tk::Open || n.tk == Tk::Dot)
            {
                continue;
            }
            let table = if prev.is_some_and(|p| p.tk == Tk::Dot) {
                let Some(alias) = i.checked_sub(2).map(|a| &tokens[a]) else {
                    continue;
                };
                if alias.tk != Tk::Word {
                    continue;
                }
                let Some(table) = named.table_of_alias(&scopes, scopes.of[i], &alias.text) else {
                    continue;
                };
                table
            } else if named.insert_list.contains(&i) {
                written.insert(i);
                let Some(table) = named.insert_table.get(&i) else {
                    continue;
                };
                table.clone()
            } else {
                let Some(table) = named.table_having(&scopes, scopes.of[i], schema, &t.text) else {
                    continue;
                };
                table
            };
            if schema.column(&table, &t.text).is_none() {
                continue;
            }
            // `set a = …, b = …`: the columns written.
            if prev.is_some_and(|p| {
                (p.tk == Tk::Word && p.text == "set") || (p.tk == Tk::Comma && seen_set)
            }) && next.is_some_and(|n| n.tk == Tk::Op && n.text == "=")
            {
                written.insert(i);
            }
            resolved.insert(i, (table, t.text.clone()));
        }
        (resolved, written)
    }

    /// The scopes of the statement: the statement itself, then each parenthesised subquery.
    fn scopes(&self) -> Scopes {
        let tokens = self.tokens;
        let mut of = vec![0usize; tokens.len()];
        let mut parents: Vec<Option<usize>> = vec![None];
        let mut stack: Vec<usize> = Vec::new();
        let mut current = 0;
        for (i, t) in tokens.iter().enumerate() {
            match t.tk {
                Tk::Open => {
                    stack.push(current);
                    if self.is_word(i + 1, "select") || self.is_word(i + 1, "with") {
                        parents.push(Some(current));
                        current = parents.len() - 1;
                    }
                    of[i] = current;
                }
                Tk::Close => {
                    of[i] = current;
                    current = stack.pop().unwrap_or(0);
                }
                _ => of[i] = current,
            }
        }
        Scopes { of, parents }
    }

    /// The tables (with aliases) per scope, the tokens that name them, and insert column lists.
    fn tables(&self, schema: &Schema, scopes: &Scopes) -> Named {
        let tokens = self.tokens;
        let mut named = Named {
            tables: vec![Vec::new(); scopes.parents.len()],
            not_columns: BTreeSet::new(),
            insert_list: BTreeSet::new(),
            insert_table: HashMap::new(),
        };
        for (i, t) in tokens.iter().enumerate() {
            if t.tk != Tk::Word {
                continue;
            }
            if ["from", "join", "update", "into"].contains(&t.text.as_str())
                && let Some(name) = tokens.get(i + 1)
                && name.tk == Tk::Word
                && schema.has_table(&name.text)
            {
                named.not_columns.insert(i + 1);
                let mut alias = None;
                let mut a = i + 2;
                if self.is_word(a, "as") {
                    a += 1;
                }
                if let Some(al) = tokens.get(a)
                    && al.tk == Tk::Word
                    && !NOT_ALIASES.contains(&al.text.as_str())
                {
                    alias = Some(al.text.clone());
                    named.not_columns.insert(a);
                }
                named.tables[scopes.of[i + 1]].push((name.text.clone(), alias));
                if t.text == "into" && tokens.get(i + 2).is_some_and(|o| o.tk == Tk::Open) {
                    for j in i + 3..self.matching_close(i + 2) {
                        named.insert_list.insert(j);
                        named.insert_table.insert(j, name.text.clone());
                    }
                }
            }
            // `as x(a, b)`: names of a derived table's columns.
            if t.text == "as"
                && tokens.get(i + 1).is_some_and(|n| n.tk == Tk::Word)
                && tokens.get(i + 2).is_some_and(|o| o.tk == Tk::Open)
            {
                for j in i + 2..self.matching_close(i + 2) {
                    named.not_columns.insert(j);
                }
            }
        }
        named
    }

    /// Each column read swapped for its next sibling (same table, type and key-ness, in
    /// declaration order, wrapping): one mutant per column reference.
    fn columns(
        &self,
        schema: &Schema,
        resolved: &BTreeMap<usize, (String, String)>,
        written: &BTreeSet<usize>,
        out: &mut Vec<SqlMutant>,
    ) {
        for (&i, (table, column)) in resolved {
            if written.contains(&i) {
                continue;
            }
            let Some(sibling) = schema.next_sibling(table, column) else {
                continue;
            };
            let t = &self.tokens[i];
            let qualifier = if i >= 2 && self.tokens[i - 1].tk == Tk::Dot {
                format!("{}.", self.tokens[i - 2].text)
            } else {
                String::new()
            };
            out.push(SqlMutant {
                line: 0,
                kind: SqlKind::Column,
                description: format!(
                    "replace {qualifier}{} with {qualifier}{sibling} in `{}`",
                    t.text,
                    self.around(i)
                ),
                edits: vec![Edit {
                    range: t.range.clone(),
                    text: sibling.to_owned(),
                }],
            });
        }
    }

    /// The type of each parameter occurrence known from its context: its cast, the column it
    /// is compared with or assigned to, or the insert column it fills.
    fn parameter_types(
        &self,
        schema: &Schema,
        resolved: &BTreeMap<usize, (String, String)>,
    ) -> BTreeMap<u32, BTreeSet<String>> {
        let tokens = self.tokens;
        let column_type = |j: usize| {
            resolved
                .get(&j)
                .and_then(|(table, column)| schema.column(table, column))
                .map(|c| base_type(&c.ty))
        };
        let mut types: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        // Insert lists: the n-th value (or select item) fills the n-th column.
        let mut filled: HashMap<usize, String> = HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if !(t.tk == Tk::Word && t.text == "into")
                || tokens.get(i + 2).is_none_or(|o| o.tk != Tk::Open)
            {
                continue;
            }
            let close = self.matching_close(i + 2);
            let columns: Vec<Option<String>> = self
                .items(i + 3, close)
                .into_iter()
                .map(|(a, b)| if a == b { column_type(a) } else { None })
                .collect();
            let values = if self.is_word(close + 1, "values")
                && tokens.get(close + 2).is_some_and(|o| o.tk == Tk::Open)
            {
                self.items(close + 3, self.matching_close(close + 2))
            } else if self.is_word(close + 1, "select") {
                let mut end = close + 2;
                let mut level = 0;
                while end < tokens.len() {
                    match tokens[end].tk {
                        Tk::Open => level += 1,
                        Tk::Close if level == 0 => break,
                        Tk::Close => level -= 1,
                        Tk::Word if level == 0 && tokens[end].text == "from" => break,
                        _ => {}
                    }
                    end += 1;
                }
                self.items(close + 2, end)
            } else {
                Vec::new()
            };
            for ((first, _), column) in values.into_iter().zip(columns) {
                if let (Tk::Param(_), Some(ty)) = (tokens[first].tk, column) {
                    filled.insert(first, ty);
                }
            }
        }
        for (i, t) in tokens.iter().enumerate() {
            let Tk::Param(n) = t.tk else { continue };
            let cast = self.cast_after(i);
            let ty = if !cast.is_empty() {
                Some(base_type(&cast))
            } else if let Some(ty) = filled.get(&i) {
                Some(ty.clone())
            } else if i >= 2 && tokens[i - 1].tk == Tk::Op {
                column_type(i - 2)
            } else if tokens.get(i + 1).is_some_and(|o| o.tk == Tk::Op) {
                column_type(i + 2)
            } else {
                None
            };
            if let Some(ty) = ty {
                types.entry(n).or_default().insert(ty);
            }
        }
        types
    }

    /// The comma-separated items of tokens `start..end`, as (first, last) token pairs.
    fn items(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut level = 0;
        let mut from = start;
        for j in start..end.min(self.tokens.len()) {
            match self.tokens[j].tk {
                Tk::Open => level += 1,
                Tk::Close => level -= 1,
                Tk::Comma if level == 0 => {
                    if j > from {
                        out.push((from, j - 1));
                    }
                    from = j + 1;
                }
                _ => {}
            }
        }
        if end > from {
            out.push((from, end.min(self.tokens.len()) - 1));
        }
        out
    }

    /// The type that token `i` is cast to (`::bigint[]` → `bigint[]`), or empty.
    fn cast_after(&self, i: usize) -> String {
        let mut cast = String::new();
        if self.tokens.get(i + 1).is_some_and(|t| t.tk == Tk::Cast) {
            for t in &self.tokens[i + 2..] {
                match t.tk {
                    Tk::Word => cast.push_str(&t.text),
                    Tk::Other if t.text == "[" || t.text == "]" => cast.push_str(&t.text),
                    _ => break,
                }
            }
        }
        cast
    }

    /// `$k` ↔ `$k+1` for each pair that both appear in the literal, unless their types differ.
    fn parameters(&self, types: &BTreeMap<u32, BTreeSet<String>>, out: &mut Vec<SqlMutant>) {
        let present: BTreeSet<u32> = self
            .tokens
            .iter()
            .filter_map(|t| match t.tk {
                Tk::Param(n) => Some(n),
                _ => None,
            })
            .collect();
        if self.tokens.is_empty() {
            return;
        }
        let mut head = self.text(0, self.tokens.len() - 1);
        if let Some((cut, _)) = head.char_indices().nth(60) {
            head.truncate(cut);
            head.push('…');
        }
        for &k in &present {
            // Parameters of different types only make a type error: a mutant no test needs.
            let (a, b) = (types.get(&k), types.get(&(k + 1)));
            if !present.contains(&(k + 1)) || a.zip(b).is_some_and(|(a, b)| a.is_disjoint(b)) {
                continue;
            }
            let edits = self
                .tokens
                .iter()
                .filter_map(|t| match t.tk {
                    Tk::Param(n) if n == k => Some(Edit {
                        range: t.range.clone(),
                        text: format!("${}", k + 1),
                    }),
                    Tk::Param(n) if n == k + 1 => Some(Edit {
                        range: t.range.clone(),
                        text: format!("${k}"),
                    }),
                    _ => None,
                })
                .collect();
            out.push(SqlMutant {
                line: 0,
                kind: SqlKind::Parameters,
                description: format!("swap ${k} and ${} in `{head}`", k + 1),
                edits,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::parse(
            "create table billings (id bigint generated always as identity primary key, \
               subscription_id bigint not null, contract_id bigint not null, \
               base_fee numeric(20,4) not null, starts_on date not null, ends_on date);
             create table invoices (id bigint generated always as identity primary key, \
               subscription_id bigint not null, period date not null, \
               subtotal numeric(20,4) not null, total numeric(20,4) not null);
             create table month_closes (month date primary key, invoices int not null);",
        )
    }

    fn descriptions(source: &str) -> Vec<(usize, String)> {
        mutants(source, &schema())
            .into_iter()
            .map(|m| (m.line, m.description))
            .collect()
    }

    /// What `mutant` changed: the text it removed and the text it wrote, from the first to the
    /// last differing byte.
    fn changed(source: &str, mutant: &SqlMutant) -> (String, String) {
        let after = apply(source, mutant);
        let prefix = source
            .bytes()
            .zip(after.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let suffix = source
            .bytes()
            .rev()
            .zip(after.bytes().rev())
            .take_while(|(a, b)| a == b)
            .count()
            .min(source.len().min(after.len()) - prefix);
        (
            source[prefix..source.len() - suffix].to_owned(),
            after[prefix..after.len() - suffix].to_owned(),
        )
    }

    #[test]
    fn finds_sql_literals_only() {
        let source = r###"
// "select 1 from a where x < 1" in a comment
/* and "delete from t" in a block /* nested */ comment */
fn f<'a>(x: &'a str) -> char {
    let _ = "select b.id from billings b";
    let _ = r#"update billings set ends_on = $1"#;
    let _ = "not SQL: select";
    let _ = sqlx::query_scalar::<_, i64>("values (1)");
    let _ = sqlx::query_as(&format!("values ({X})"));
    let _ = "with \"quotes\" \
             inside";
    'x'
}
"###;
        let found: Vec<&str> = sql_literals(source)
            .into_iter()
            .map(|r| &source[r])
            .collect();
        assert_eq!(
            found,
            [
                "select b.id from billings b",
                "update billings set ends_on = $1",
                "values (1)",
                "values ({X})",
                "with \\\"quotes\\\" \\\n             inside",
            ]
        );
    }

    #[test]
    fn comparisons_flip_with_their_condition_and_line() {
        let source = "const Q: &str = \"select b.id from billings b \\\n     where b.starts_on < $2 and b.ends_on >= $1\";\n";
        let all = mutants(source, &schema());
        let flips: Vec<(usize, &str)> = all
            .iter()
            .filter(|m| m.kind == SqlKind::Comparison)
            .map(|m| (m.line, m.description.as_str()))
            .collect();
        assert_eq!(
            flips,
            [
                (2, "replace < with <= in `b.starts_on < $2`"),
                (2, "replace >= with > in `b.ends_on >= $1`"),
            ]
        );
        let flip = all.iter().find(|m| m.kind == SqlKind::Comparison).unwrap();
        assert_eq!(apply(source, flip), source.replacen(" < $2", " <= $2", 1));
        assert_eq!(flip.edits.len(), 1);
        assert_eq!(&source[flip.edits[0].range.clone()], "<");
    }

    #[test]
    fn and_or_swap_skips_between() {
        let source =
            "const Q: &str = \"select 1 from t where a = 1 and b between 2 and 3 or c = 4\";";
        let logic: Vec<String> = mutants(source, &schema())
            .into_iter()
            .filter(|m| m.kind == SqlKind::Logic)
            .map(|m| m.description)
            .collect();
        assert_eq!(
            logic,
            [
                "replace and with or in `a = 1 and b between 2 and 3`",
                "replace or with and in `b between 2 and 3 or c = 4`",
            ]
        );
    }

    #[test]
    fn drops_each_conjunct_and_nested_ones_but_not_subqueries_or_on_conflict() {
        let source = "const Q: &str = \"select b.id from billings b \
            where b.starts_on < $2 and (b.ends_on is null or (b.ends_on > $1 and b.ends_on > b.starts_on)) \
            and not exists (select 1 from invoices i where i.subscription_id = b.subscription_id)\";\n\
            const I: &str = \"insert into month_closes (month) values ($1) on conflict (month) do nothing\";";
        let all = mutants(source, &schema());
        let drops: Vec<&str> = all
            .iter()
            .filter(|m| m.kind == SqlKind::DropCondition)
            .map(|m| m.description.as_str())
            .collect();
        assert_eq!(
            drops,
            [
                "drop condition `b.starts_on < $2` from where",
                "drop condition `(b.ends_on is null or (b.ends_on > $1 and b.ends_on > b.starts_on))` from where",
                "drop condition `b.ends_on > $1` from where",
                "drop condition `b.ends_on > b.starts_on` from where",
                "drop condition `not exists (select 1 from invoices i where i.subscription_id = b.subscription_id)` from where",
                "drop condition `i.subscription_id = b.subscription_id` from where",
            ]
        );
        let first = all
            .iter()
            .find(|m| m.kind == SqlKind::DropCondition)
            .unwrap();
        assert_eq!(
            changed(source, first).0,
            "b.starts_on < $2 and ",
            "the first conjunct goes with its `and`"
        );
        let last_nested = all
            .iter()
            .filter(|m| m.kind == SqlKind::DropCondition)
            .nth(3)
            .unwrap();
        assert_eq!(
            changed(source, last_nested).0,
            " and b.ends_on > b.starts_on"
        );
        let lone = all
            .iter()
            .filter(|m| m.kind == SqlKind::DropCondition)
            .nth(5)
            .unwrap();
        assert_eq!(
            changed(source, lone).0,
            "where i.subscription_id = b.subscription_id"
        );
    }

    #[test]
    fn a_lone_join_condition_becomes_true() {
        let source = "const Q: &str = \"select 1 from billings b join invoices i on i.subscription_id = b.subscription_id\";";
        let all = mutants(source, &schema());
        let drop = all
            .iter()
            .find(|m| m.kind == SqlKind::DropCondition)
            .unwrap();
        assert_eq!(
            drop.description,
            "drop condition `i.subscription_id = b.subscription_id` from on"
        );
        assert_eq!(
            apply(source, drop),
            "const Q: &str = \"select 1 from billings b join invoices i on true\";"
        );
    }

    #[test]
    fn columns_swap_with_siblings_through_aliases_and_scopes_but_not_in_insert_lists() {
        let source = "const Q: &str = \"select b.starts_on, total::text as subtotal, i.period \
             from billings b join invoices i on i.subscription_id = b.subscription_id \
             where exists (select 1 from month_closes where month = i.period)\";\n\
             const I: &str = \"insert into invoices (subtotal, total) select s, t from unnest($1::numeric[]) as x(s, t)\";";
        let columns: Vec<(usize, String)> = descriptions(source)
            .into_iter()
            .filter(|(_, d)| d.starts_with("replace"))
            .collect();
        assert_eq!(
            columns,
            [
                (1, "replace b.starts_on with b.ends_on in `b.starts_on`".to_owned()),
                (1, "replace total with subtotal in `total::text as subtotal`".to_owned()),
                (
                    1,
                    "replace b.subscription_id with b.contract_id in `i.subscription_id = b.subscription_id`"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn adjacent_parameters_swap_everywhere_in_their_literal() {
        let source = "const Q: &str = \"update month_closes set invoices = invoices + $2 where month = $1 or month = $1\";";
        let all = mutants(source, &schema());
        let swap = all.iter().find(|m| m.kind == SqlKind::Parameters).unwrap();
        assert_eq!(
            swap.description,
            "swap $1 and $2 in `update month_closes set invoices = invoices + $2 where month…`",
            "the statement's first 60 characters"
        );
        assert_eq!(
            apply(source, swap),
            "const Q: &str = \"update month_closes set invoices = invoices + $1 where month = $2 or month = $2\";"
        );
    }

    #[test]
    fn parameters_cast_to_different_types_are_not_swapped() {
        let source = "const Q: &str = \"insert into invoices (subscription_id, period) \
            select s, p from unnest($1::bigint[], $2::bigint[], $3::date[], $4::numeric[]) as x(s, t, p, a)\";";
        let swaps: Vec<String> = mutants(source, &schema())
            .into_iter()
            .filter(|m| m.kind == SqlKind::Parameters)
            .map(|m| m.description)
            .collect();
        assert_eq!(swaps.len(), 1, "{swaps:?}");
        assert!(swaps[0].starts_with("swap $1 and $2 in `insert into invoices"));
    }

    #[test]
    fn written_columns_stay_and_parameters_swap_only_with_their_type() {
        let source = "const Q: &str = \"update billings set starts_on = $1, ends_on = $2 \
            where subscription_id = $3\";\n\
            const I: &str = \"insert into invoices (period, subtotal, total) values ($1, $2, $3)\";";
        let all: Vec<String> = mutants(source, &schema())
            .into_iter()
            .filter(|m| matches!(m.kind, SqlKind::Column | SqlKind::Parameters))
            .map(|m| m.description)
            .collect();
        assert_eq!(
            all,
            [
                "swap $1 and $2 in `update billings set starts_on = $1, ends_on = $2 where subsc…`",
                "replace subscription_id with contract_id in `subscription_id = $3`",
                "swap $2 and $3 in `insert into invoices (period, subtotal, total) values ($1, $…`",
            ]
        );
    }

    #[test]
    fn repeated_descriptions_are_numbered_and_every_mutant_changes_only_its_spot() {
        let source = "fn f() {\n    sqlx::query(\"select 1 from billings where starts_on < $1\");\n    sqlx::query(\"select 1 from billings where starts_on < $1\");\n}\n";
        let all = mutants(source, &schema());
        let flips: Vec<(usize, &str)> = all
            .iter()
            .filter(|m| m.kind == SqlKind::Comparison)
            .map(|m| (m.line, m.description.as_str()))
            .collect();
        assert_eq!(
            flips,
            [
                (2, "replace < with <= in `starts_on < $1`"),
                (3, "replace < with <= in `starts_on < $1` (#2)"),
            ]
        );
        for m in &all {
            let after = apply(source, m);
            assert_ne!(after, source, "{}", m.description);
            let (removed, written) = changed(source, m);
            let edit = &m.edits[0];
            assert!(
                removed.len() <= m.edits.last().unwrap().range.end - edit.range.start,
                "{}: {removed:?} → {written:?}",
                m.description
            );
            // Nothing outside the literal of the mutant moved.
            let line = after.lines().nth(m.line - 1).unwrap();
            let other = if m.line == 2 { 3 } else { 2 };
            assert_eq!(
                after.lines().nth(other - 1),
                source.lines().nth(other - 1),
                "{line}"
            );
        }
    }
}
