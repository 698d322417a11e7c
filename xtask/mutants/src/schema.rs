//! Columns of the platform's tables as the migrations declare them, and their siblings: other
//! columns of the same table with the same declared type, which a SQL mutant may swap in.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// Its name, lower case.
    pub(crate) name: String,
    /// Its declared type, lower case without spaces (`numeric(20,4)`, `date`, `bigint`).
    pub(crate) ty: String,
    /// A generated identity (a surrogate key): never swapped, in either direction.
    pub(crate) identity: bool,
    /// A foreign key (`references`): swapped only with other foreign keys, as a measure is
    /// swapped only with other measures.
    pub(crate) foreign: bool,
}

/// Every table's columns, in declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Schema {
    /// Table name to its columns.
    pub(crate) tables: BTreeMap<String, Vec<Column>>,
}

/// Words that end a column's type in a column definition.
const CONSTRAINT_WORDS: &[&str] = &[
    "not",
    "null",
    "default",
    "primary",
    "references",
    "check",
    "unique",
    "generated",
    "constraint",
    "collate",
];

/// Words that start a table constraint instead of a column definition.
const TABLE_CONSTRAINTS: &[&str] = &[
    "check",
    "primary",
    "unique",
    "foreign",
    "constraint",
    "exclude",
];

impl Schema {
    /// Reads every `*.sql` file of `dir` in name order.
    ///
    /// # Errors
    /// A file could not be read.
    pub(crate) fn from_migrations(dir: &Path) -> anyhow::Result<Schema> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        let mut text = String::new();
        for file in files {
            text.push_str(
                &std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?,
            );
            text.push('\n');
        }
        Ok(Schema::parse(&text))
    }

    /// Reads `create table` and `alter table … add column` statements from migration text.
    pub(crate) fn parse(sql: &str) -> Schema {
        let mut schema = Schema::default();
        let sql = strip_comments(sql);
        for statement in sql.split(';') {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
            if lower.len() > 2 && lower[0] == "create" && lower[1] == "table" {
                let Some(open) = statement.find('(') else {
                    continue;
                };
                let Some(close) = statement.rfind(')') else {
                    continue;
                };
                let name = statement[..open]
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let columns = split_top_level(&statement[open + 1..close])
                    .into_iter()
                    .filter_map(column_definition)
                    .collect();
                schema.tables.insert(name, columns);
            } else if lower.len() > 5
                && lower[0] == "alter"
                && lower[1] == "table"
                && lower[3] == "add"
                && lower[4] == "column"
            {
                let rest = words[5..].join(" ");
                if let Some(column) = column_definition(&rest) {
                    schema
                        .tables
                        .entry(lower[2].clone())
                        .or_default()
                        .push(column);
                }
            }
        }
        schema
    }

    /// The column `name` of `table`, if declared.
    pub(crate) fn column(&self, table: &str, name: &str) -> Option<&Column> {
        self.tables.get(table)?.iter().find(|c| c.name == name)
    }

    /// The sibling after `name` in declaration order, wrapping to the first.
    pub(crate) fn next_sibling(&self, table: &str, name: &str) -> Option<&str> {
        let siblings = self.siblings(table, name);
        let columns = self.tables.get(table)?;
        let position = |c: &str| columns.iter().position(|x| x.name == c);
        let own = position(name)?;
        siblings
            .iter()
            .copied()
            .find(|s| position(s) > Some(own))
            .or_else(|| siblings.first().copied())
    }

    /// Whether `table` is declared.
    pub(crate) fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// The other columns of `table` with the type of `name` and, like it, foreign keys or not;
    /// none for an identity column.
    pub(crate) fn siblings(&self, table: &str, name: &str) -> Vec<&str> {
        let Some(column) = self.column(table, name) else {
            return Vec::new();
        };
        if column.identity {
            return Vec::new();
        }
        self.tables[table]
            .iter()
            .filter(|c| {
                c.name != column.name
                    && c.ty == column.ty
                    && c.foreign == column.foreign
                    && !c.identity
            })
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// Removes `--` comments (outside quotes) from SQL text.
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        let mut quoted = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'\'' => quoted = !quoted,
                b'-' if !quoted && bytes.get(i + 1) == Some(&b'-') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// Splits `text` at the commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Reads `name type constraints…`; `None` for a table constraint.
fn column_definition(definition: &str) -> Option<Column> {
    let mut words = definition.split_whitespace();
    let name = words.next()?.to_ascii_lowercase();
    if TABLE_CONSTRAINTS.contains(&name.as_str()) {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    let end = rest
        .iter()
        .position(|w| CONSTRAINT_WORDS.contains(&w.to_ascii_lowercase().as_str()))
        .unwrap_or(rest.len());
    let ty: String = rest[..end].concat().to_ascii_lowercase();
    if ty.is_empty() {
        return None;
    }
    let lower = definition.to_ascii_lowercase();
    Some(Column {
        name,
        ty,
        identity: lower.contains("as identity"),
        foreign: lower.split_whitespace().any(|w| w == "references"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "\
-- a comment, with (parentheses), and; a semicolon
create table invoices (
    id        bigint generated always as identity primary key,
    tenant_id bigint not null references tenants,
    subscription_id bigint not null references subscriptions,
    quantity  bigint not null,
    included  bigint not null,
    subtotal  numeric(20,4) not null check (subtotal >= 0),
    tax       numeric(20, 4) not null,
    total     numeric(20,4) not null,
    status    text not null check (status in ('a', 'b')),
    starts_on date not null,
    ends_on   date,
    unique (tenant_id, starts_on),
    check (total = subtotal + tax)
);
alter table invoices add column note text not null default 'ok';
";

    #[test]
    fn reads_columns_with_types_and_skips_table_constraints() {
        let schema = Schema::parse(SQL);
        let names: Vec<&str> = schema.tables["invoices"]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "tenant_id",
                "subscription_id",
                "quantity",
                "included",
                "subtotal",
                "tax",
                "total",
                "status",
                "starts_on",
                "ends_on",
                "note"
            ]
        );
        assert_eq!(
            schema.column("invoices", "tax").unwrap().ty,
            "numeric(20,4)"
        );
        assert!(schema.column("invoices", "id").unwrap().identity);
    }

    #[test]
    fn siblings_share_table_and_type_and_skip_identities() {
        let schema = Schema::parse(SQL);
        assert_eq!(schema.siblings("invoices", "total"), ["subtotal", "tax"]);
        assert_eq!(schema.siblings("invoices", "starts_on"), ["ends_on"]);
        assert_eq!(
            schema.siblings("invoices", "tenant_id"),
            ["subscription_id"]
        );
        assert_eq!(schema.siblings("invoices", "quantity"), ["included"]);
        assert_eq!(schema.siblings("invoices", "status"), ["note"]);
        assert!(schema.siblings("invoices", "id").is_empty());
        assert!(schema.siblings("nothing", "id").is_empty());
        assert_eq!(schema.next_sibling("invoices", "subtotal"), Some("tax"));
        assert_eq!(schema.next_sibling("invoices", "total"), Some("subtotal"));
        assert_eq!(
            schema.next_sibling("invoices", "ends_on"),
            Some("starts_on")
        );
        assert_eq!(schema.next_sibling("invoices", "id"), None);
    }
}
