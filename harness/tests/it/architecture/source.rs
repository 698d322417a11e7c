//! The workspace as the architecture rules read it: its crates from `cargo metadata`, and every
//! `.rs` file under each crate's `src/` with its module path and a code-only view of its text
//! (comments and the insides of literals blanked, test code blanked), at the same line numbers.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// One broken rule: the file (or manifest), what is wrong, which rule, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Violation {
    pub(super) at: String,
    pub(super) what: String,
    pub(super) rule: &'static str,
    pub(super) fix: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n    rule: {}\n    fix: {}",
            self.at, self.what, self.rule, self.fix
        )
    }
}

/// Panics with every violation, one paragraph each, unless there is none.
pub(super) fn assert_none(violations: &[Violation]) {
    let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        violations.is_empty(),
        "{} architecture violation(s) (ARCHITECTURE.md, \"Architecture invariants\"):\n{}",
        violations.len(),
        text.join("\n")
    );
}

/// The workspace: `cargo metadata` and the sources of every member.
pub(super) struct Workspace {
    pub(super) metadata: Value,
    pub(super) crates: Vec<Krate>,
}

/// One crate's source files.
pub(super) struct Krate {
    pub(super) name: String,
    pub(super) files: Vec<SourceFile>,
}

/// One `.rs` file of a crate.
pub(super) struct SourceFile {
    /// Relative to the workspace root, with `/`.
    pub(super) path: String,
    /// Its module path in the crate: `[]` for `lib.rs` and `main.rs`, `["a", "b"]` for `a/b.rs`
    /// and `a/b/mod.rs`.
    pub(super) module: Vec<String>,
    pub(super) text: String,
    /// The text with comments, literals and test code blanked.
    pub(super) code: String,
    /// A file of tests: `tests.rs`, or a module its parent declares under `#[cfg(test)]`.
    pub(super) test: bool,
    /// The children this file declares under `#[cfg(test)]`.
    test_children: Vec<String>,
}

impl SourceFile {
    /// The module path as written in Rust, `crate` for the root.
    pub(super) fn module_name(&self) -> String {
        module_name(&self.module)
    }
}

/// `a::b`, or `crate` for the root.
pub(super) fn module_name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

impl Krate {
    /// A crate from its files, as `(path from the workspace root, text)`; `src` is the crate's
    /// `src/` folder from the workspace root, which module paths are taken from.
    pub(super) fn new(name: &str, src: &str, files: Vec<(String, String)>) -> Self {
        let mut files: Vec<SourceFile> = files
            .into_iter()
            .map(|(path, text)| {
                let module = module_of(&path, src);
                let lexed = code_of(&text);
                let (code, test_children) = without_tests(&lexed);
                SourceFile {
                    test: path.ends_with("/tests.rs"),
                    path,
                    module,
                    text,
                    code,
                    test_children,
                }
            })
            .collect();
        let declared: BTreeSet<Vec<String>> = files
            .iter()
            .flat_map(|f| {
                f.test_children.iter().map(|c| {
                    let mut m = f.module.clone();
                    m.push(c.clone());
                    m
                })
            })
            .collect();
        for file in &mut files {
            let under_test = declared.iter().any(|t| file.module.starts_with(t));
            file.test = file.test || under_test;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Krate {
            name: name.to_owned(),
            files,
        }
    }

    /// The files that are not tests.
    pub(super) fn library(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().filter(|f| !f.test)
    }

    /// Every module of the crate (each file's, and their ancestors), the root included.
    pub(super) fn modules(&self) -> BTreeSet<Vec<String>> {
        let mut all = BTreeSet::new();
        for file in &self.files {
            for n in 0..=file.module.len() {
                all.insert(file.module[..n].to_vec());
            }
        }
        all
    }
}

/// The module path of the file at `path` in a crate whose sources are under `src`.
fn module_of(path: &str, src: &str) -> Vec<String> {
    let Some(inside) = path
        .strip_prefix(src)
        .and_then(|p| p.strip_prefix('/'))
        .and_then(|p| p.strip_suffix(".rs"))
    else {
        return Vec::new(); // a crate root outside `src/`, such as harness-tests' `lib.rs`
    };
    let mut module: Vec<String> = inside.split('/').map(str::to_owned).collect();
    if module.last().is_some_and(|m| m == "mod") {
        module.pop();
    }
    if module.len() == 1 && (module[0] == "lib" || module[0] == "main") {
        module.clear();
    }
    module
}

/// The workspace, read once per test process.
pub(super) fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(load)
}

/// Runs `cargo metadata --no-deps` (the workspace's own packages only).
pub(super) fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("run `{cargo} metadata`: {e}"));
    assert!(
        out.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("`cargo metadata` prints JSON")
}

fn load() -> Workspace {
    let metadata = cargo_metadata();
    let root = metadata["workspace_root"]
        .as_str()
        .expect("workspace_root")
        .to_owned();
    let relative = |p: &Path| {
        p.strip_prefix(&root)
            .expect("a member lies in the workspace")
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut crates = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
        let dir = manifest.parent().expect("a manifest's folder");
        let mut paths = Vec::new();
        rs_files(&dir.join("src"), &mut paths);
        for target in package["targets"].as_array().expect("targets") {
            let kinds = target["kind"].as_array().expect("kind");
            let code = kinds
                .iter()
                .any(|k| k != "test" && k != "bench" && k != "example");
            let src = Path::new(target["src_path"].as_str().expect("src_path"));
            if code && !paths.iter().any(|p| p == src) {
                paths.push(src.to_path_buf());
            }
        }
        let files = paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)
                    .unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                (relative(p), text)
            })
            .collect();
        let name = package["name"].as_str().expect("name");
        crates.push(Krate::new(name, &relative(&dir.join("src")), files));
    }
    Workspace { metadata, crates }
}

/// Every `.rs` file under `dir`, recursively.
fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// 1-based line of byte offset `at` in `text`.
pub(super) fn line_of(text: &str, at: usize) -> usize {
    Lines::of(text).line(at)
}

/// Where the lines of a text start, to find the line of many offsets.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn of(text: &str) -> Self {
        Lines(text.match_indices('\n').map(|(at, _)| at).collect())
    }

    /// 1-based line of byte offset `at`.
    pub(super) fn line(&self, at: usize) -> usize {
        self.0.partition_point(|&newline| newline < at) + 1
    }
}

pub(super) fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `text` with every comment and the inside of every string and character literal replaced by
/// spaces (newlines kept), so that a rule matches code only, at the same lines. The result is
/// ASCII wherever it is code.
pub(super) fn code_of(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in &mut out[from..to.min(c.len())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let ident = |i: usize| c[i].is_alphanumeric() || c[i] == '_';
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            let end = block_comment_end(&c, i);
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == 'r'
            && (i == 0
                || !ident(i - 1)
                || (i == 1 || !ident(i - 2)) && matches!(c[i - 1], 'b' | 'c'))
            && matches!(next, Some('"' | '#'))
        {
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            if c.get(i + 1 + hashes) != Some(&'"') {
                i += 1;
                continue;
            }
            let open = i + 1 + hashes;
            let close = (open + 1..c.len())
                .find(|&j| {
                    c[j] == '"'
                        && c[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                })
                .unwrap_or(c.len());
            blank(&mut out, open + 1, close);
            i = close + 1 + hashes;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if c[i] == '\'' && next == Some('\\') {
            let end = (i + 3..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len());
            blank(&mut out, i + 1, end);
            i = end + 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            blank(&mut out, i + 1, i + 2);
            i += 3;
        } else {
            i += 1;
        }
    }
    out.into_iter()
        .map(|ch| if ch.is_ascii() { ch } else { ' ' })
        .collect()
}

/// Where the (nested) block comment that opens at `from` ends, just past its `*/`.
fn block_comment_end(c: &[char], from: usize) -> usize {
    let mut depth = 0;
    let mut i = from;
    while i + 1 < c.len() {
        if c[i] == '/' && c[i + 1] == '*' {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c[i + 1] == '/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    c.len()
}

/// The offset of the `}` that closes the `{` at `open`, in code.
pub(super) fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

/// Where the item that starts at `from` ends (just past its `;` or closing `}`), and whether it
/// has a body.
pub(super) fn item_end(code: &str, from: usize) -> (usize, bool) {
    let bytes = code.as_bytes();
    let mut depth = 0i32;
    for (i, b) in bytes.iter().enumerate().skip(from) {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b';' if depth == 0 => return (i + 1, false),
            b'{' if depth == 0 => return (matching_brace(code, i) + 1, true),
            _ => {}
        }
    }
    (bytes.len(), false)
}

/// The code with every item under `#[cfg(test)]` or `#[cfg(doctest)]` blanked, and the names of
/// the modules declared so in other files (`#[cfg(test)] mod tests;`).
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut out = code.as_bytes().to_vec();
    let mut children = Vec::new();
    let mut from = 0;
    while let Some(found) = ["#[cfg(test)]", "#[cfg(doctest)]"]
        .iter()
        .filter_map(|a| code[from..].find(a).map(|at| (from + at, a.len())))
        .min()
    {
        let (start, len) = found;
        let mut item = start + len;
        // Further attributes of the same item.
        loop {
            let rest = &code[item..];
            let skipped = rest.len() - rest.trim_start().len();
            item += skipped;
            if !code[item..].starts_with("#[") {
                break;
            }
            item = close_of(code, item + 1, b'[', b']') + 1;
        }
        let (end, body) = item_end(code, item);
        let head: Vec<&str> = code[item..end].split_whitespace().collect();
        let declared = head
            .iter()
            .position(|w| *w == "mod")
            .and_then(|at| head.get(at + 1));
        if let (false, Some(name)) = (body, declared) {
            children.push(name.trim_end_matches(';').to_owned());
        }
        for b in &mut out[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8(out).expect("ASCII code"), children)
}

/// The offset of the `close` matching the `open` at `at`.
pub(super) fn close_of(code: &str, at: usize, open: u8, close: u8) -> usize {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate().skip(at) {
        if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    code.len().saturating_sub(1)
}

mod planted {
    use super::*;

    #[test]
    fn comments_and_literals_are_blanked_lines_kept() {
        let text = "use a; // use b;\n/* use c;\n */ let s = \"use d;\";\nlet r = r#\"use \"e\"\"#; let c = '\"'; fn f<'a>() {}\n";
        let code = code_of(text);
        assert_eq!(code.lines().count(), text.lines().count());
        for gone in ["use b", "use c", "use d", "use \"e"] {
            assert!(!code.contains(gone), "{gone} in {code}");
        }
        assert!(
            code.contains("use a;") && code.contains("fn f<'a>() {}"),
            "{code}"
        );
    }

    #[test]
    fn test_modules_are_blanked_and_test_files_known() {
        let krate = Krate::new(
            "k",
            "k/src",
            vec![
                (
                    "k/src/lib.rs".into(),
                    "//! k\nmod a;\n#[cfg(test)]\nmod checks;\n#[cfg(test)]\n#[allow(x)]\nmod t {\n    use crate::b;\n}\n".into(),
                ),
                ("k/src/checks.rs".into(), "//! c\n".into()),
                ("k/src/a/tests.rs".into(), "//! t\n".into()),
                ("k/src/a/b.rs".into(), "//! b\n".into()),
            ],
        );
        let test: Vec<(&str, bool)> = krate
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.test))
            .collect();
        assert_eq!(
            test,
            [
                ("k/src/a/b.rs", false),
                ("k/src/a/tests.rs", true),
                ("k/src/checks.rs", true),
                ("k/src/lib.rs", false)
            ]
        );
        let lib = &krate.files[3];
        assert!(
            !lib.code.contains("crate::b") && lib.code.contains("mod a;"),
            "{}",
            lib.code
        );
        assert_eq!(krate.files[0].module, ["a", "b"]);
    }
}
