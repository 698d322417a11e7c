//! The length of every function of library code: the lines of its body, from the line of its
//! opening `{` to the line of its closing `}`. Test code is left out (`#[cfg(test)]` modules and
//! `tests.rs` files).

use super::source::{Krate, Lines, SourceFile, Violation, is_ident, item_end, matching_brace};

/// The most lines a function body may have.
pub(super) const MAX_LINES: usize = 120;

/// One function of library code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Function {
    /// The file, from the workspace root.
    pub(super) path: String,
    /// `name`, or `Type::name` inside an `impl` or a `trait`.
    pub(super) name: String,
    /// The line of `fn`.
    pub(super) line: usize,
    /// The lines of its body.
    pub(super) lines: usize,
}

/// The functions of `krate` whose body is over [`MAX_LINES`] lines.
pub(super) fn long(krate: &Krate) -> Vec<Function> {
    krate
        .library()
        .flat_map(functions)
        .filter(|f| f.lines > MAX_LINES)
        .collect()
}

/// The long functions of `found` that `known` does not list, and the entries of `known` that are
/// no longer long.
pub(super) fn long_against(found: &[Function], known: &[(&str, &str)]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for f in found {
        if !known.contains(&(f.path.as_str(), f.name.as_str())) {
            violations.push(Violation {
                at: format!("{}:{}", f.path, f.line),
                what: format!("`{}` has a body of {} lines", f.name, f.lines),
                rule: "no function over 120 lines outside tests",
                fix: "split it into named steps, each a function of its own (do not add it to \
                      KNOWN_LONG)"
                    .to_owned(),
            });
        }
    }
    for (path, name) in known {
        if !found.iter().any(|f| f.path == *path && f.name == *name) {
            violations.push(Violation {
                at: "harness/tests/it/architecture.rs".to_owned(),
                what: format!(
                    "KNOWN_LONG lists `{name}` of {path}, which is no longer over 120 lines"
                ),
                rule: "KNOWN_LONG only shrinks",
                fix: "remove the entry".to_owned(),
            });
        }
    }
    violations
}

/// Every function with a body in `file`'s library code.
pub(super) fn functions(file: &SourceFile) -> Vec<Function> {
    let code = &file.code;
    let owners = owners(code);
    let lines = Lines::of(code);
    let mut found = Vec::new();
    for at in words(code, "fn") {
        let rest = code[at + 2..].trim_start();
        let name: String = rest
            .bytes()
            .take_while(|&b| is_ident(b))
            .map(char::from)
            .collect();
        if name.is_empty() {
            continue; // `fn(u8) -> u8`, a function pointer type
        }
        let (end, body) = item_end(code, at);
        if !body {
            continue;
        }
        let open = code[at..end].find('{').map_or(at, |o| at + o);
        let owner = owners
            .iter()
            .filter(|(from, to, _)| *from < at && at < *to)
            .max_by_key(|(from, _, _)| *from);
        found.push(Function {
            path: file.path.clone(),
            name: match owner {
                Some((_, _, ty)) => format!("{ty}::{name}"),
                None => name,
            },
            line: lines.line(at),
            lines: lines.line(end - 1) - lines.line(open) + 1,
        });
    }
    found
}

/// The offsets of `word` as a whole word in `code`.
fn words<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word)
        .map(|(at, _)| at)
        .filter(move |&at| {
            let bytes = code.as_bytes();
            (at == 0 || !is_ident(bytes[at - 1]))
                && bytes.get(at + word.len()).is_none_or(|&b| !is_ident(b))
        })
}

/// Whether the keyword at `at` starts an item (after another item, a block's start, an attribute
/// or a visibility), not a type in a signature.
fn at_item(code: &str, at: usize) -> bool {
    let before = code[..at].trim_end();
    before.is_empty()
        || before.ends_with(['{', '}', ';', ']', ')'])
        || ["pub", "unsafe"].iter().any(|w| {
            before.ends_with(w)
                && !before[..before.len() - w.len()]
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Every `impl` and `trait` block: its body's span and the type (or trait) it belongs to.
fn owners(code: &str) -> Vec<(usize, usize, String)> {
    let mut owners = Vec::new();
    let impls = words(code, "impl").map(|a| ("impl", a));
    for (keyword, at) in impls.chain(words(code, "trait").map(|a| ("trait", a))) {
        if !at_item(code, at) {
            continue; // `-> impl Trait`, `(x: impl Trait)`
        }
        let Some(open) = code[at..]
            .find(['{', ';', '(', ')', ',', '='])
            .map(|o| at + o)
        else {
            continue;
        };
        if code.as_bytes()[open] != b'{' {
            continue; // `impl Trait` in a signature, or a trait alias
        }
        let mut head = code[at + keyword.len()..open].to_owned();
        if keyword == "impl" && head.trim_start().starts_with('<') {
            let start = head.find('<').expect("a `<`");
            let close = super::source::close_of(&head, start, b'<', b'>');
            head = head[close + 1..].to_owned();
        }
        let head = head.split(" where ").next().unwrap_or_default();
        let ty = head.rsplit(" for ").next().unwrap_or_default().trim();
        let ty = ty.split('<').next().unwrap_or_default();
        let ty = ty
            .rsplit("::")
            .next()
            .unwrap_or_default()
            .trim()
            .trim_start_matches('&');
        owners.push((open, matching_brace(code, open), ty.to_owned()));
    }
    owners
}

#[cfg(test)]
mod planted {
    use super::*;

    fn file(text: &str) -> Krate {
        Krate::new(
            "k",
            "k/src",
            vec![("k/src/lib.rs".to_owned(), text.to_owned())],
        )
    }

    fn body(lines: usize) -> String {
        let mut f = String::from("{\n");
        for n in 0..lines - 2 {
            f.push_str(&format!("    let x{n} = {n};\n"));
        }
        f.push_str("}\n");
        f
    }

    #[test]
    fn a_function_of_121_lines_is_reported_and_one_of_120_is_not() {
        let k = file(&format!(
            "//! k\nfn short() {}impl<T: Clone> Lane<T> where T: Copy {{\n    fn marks(&self) {}}}\nfn long()\n    -> u8\n{{\n}}\n",
            body(120),
            body(121)
        ));
        let all: Vec<(String, usize)> = functions(&k.files[0])
            .into_iter()
            .map(|f| (f.name, f.lines))
            .collect();
        assert_eq!(
            all,
            [
                ("short".to_owned(), 120),
                ("Lane::marks".to_owned(), 121),
                ("long".to_owned(), 2)
            ]
        );
        let long: Vec<String> = long(&k)
            .into_iter()
            .map(|f| format!("{} {}", f.name, f.line))
            .collect();
        assert_eq!(long, ["Lane::marks 123"]);
    }

    #[test]
    fn test_code_and_trait_declarations_are_not_counted() {
        let k = file(&format!(
            "//! k\ntrait T {{\n    fn declared(&self);\n    fn given(&self) {}\n}}\nimpl fmt::Display for Thing {{ fn fmt(&self) {{}} }}\n#[cfg(test)]\nmod tests {{\n    fn long() {}\n}}\n",
            body(121),
            body(200)
        ));
        let all: Vec<(String, usize)> = functions(&k.files[0])
            .into_iter()
            .map(|f| (f.name, f.lines))
            .collect();
        assert_eq!(
            all,
            [("T::given".to_owned(), 121), ("Thing::fmt".to_owned(), 1)]
        );
    }

    #[test]
    fn a_long_function_not_listed_fails_and_a_listed_one_now_short_fails_too() {
        let f = |name: &str| Function {
            path: "k/src/a.rs".to_owned(),
            name: name.to_owned(),
            line: 3,
            lines: 121,
        };
        let known = [("k/src/a.rs", "Lane::marks"), ("k/src/a.rs", "gone")];
        let found = [f("Lane::marks"), f("play")];
        let violations = long_against(&found, &known);
        let at: Vec<String> = violations
            .iter()
            .map(|v| format!("{} {}", v.at, v.rule))
            .collect();
        assert_eq!(
            at,
            [
                "k/src/a.rs:3 no function over 120 lines outside tests",
                "harness/tests/it/architecture.rs KNOWN_LONG only shrinks"
            ]
        );
    }
}
