//! Which module of a crate refers to which: every `use` tree and every path that starts at
//! `crate::`, `super::`, `self::`, a child module or a name the module imports, resolved through
//! the crate's modules and their `use` re-exports, in library code only (test code may reach
//! anywhere). The layering rules read these references.

use std::collections::{BTreeMap, BTreeSet};

use super::source::{Krate, Lines, SourceFile, is_ident, module_name};

/// One module's reference to another module of the same crate.
#[derive(Debug, Clone)]
pub(super) struct Reference {
    pub(super) from: Vec<String>,
    pub(super) to: Vec<String>,
    /// `file:line`.
    pub(super) at: String,
    /// The path as written.
    pub(super) path: String,
}

/// A path in code, split into segments, at a byte offset.
struct Path {
    segments: Vec<String>,
    at: usize,
    /// From a `use` declaration: it names an item to import.
    alias: Option<String>,
}

/// The names a module imports: `use a::b::C as D;` maps `D` to `a::b::C`, written from the
/// module that imports it.
type Imports = BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>;

/// Every reference between two modules of `krate`, from library code.
pub(super) fn references(krate: &Krate) -> Vec<Reference> {
    let modules = krate.modules();
    let mut imports: Imports = BTreeMap::new();
    let mut found: Vec<(&SourceFile, Vec<Path>)> = Vec::new();
    for file in krate.library() {
        let mut paths = use_paths(&file.code);
        for path in &paths {
            if let Some(alias) = &path.alias {
                imports
                    .entry(file.module.clone())
                    .or_default()
                    .insert(alias.clone(), path.segments.clone());
            }
        }
        paths.extend(code_paths(&file.code));
        found.push((file, paths));
    }
    let resolver = Resolver {
        modules: &modules,
        imports: &imports,
    };
    let mut references = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, paths) in found {
        let lines = Lines::of(&file.code);
        for path in paths {
            let Some(to) = resolver.resolve(&file.module, &path.segments, 0) else {
                continue;
            };
            let at = format!("{}:{}", file.path, lines.line(path.at));
            if to != file.module && seen.insert((to.clone(), at.clone())) {
                references.push(Reference {
                    from: file.module.clone(),
                    to,
                    at,
                    path: path.segments.join("::"),
                });
            }
        }
    }
    references
}

struct Resolver<'a> {
    modules: &'a BTreeSet<Vec<String>>,
    imports: &'a Imports,
}

impl Resolver<'_> {
    /// The module of this crate that `path`, written in module `base`, leads to: as deep as its
    /// segments name modules, through re-exports. `None` when it leaves the crate at once.
    fn resolve(&self, base: &[String], path: &[String], depth: usize) -> Option<Vec<String>> {
        let first = path.first()?;
        if depth > 8 {
            return None;
        }
        let (mut at, mut rest) = match first.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (base.to_vec(), &path[1..]),
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                let up = base.len().checked_sub(ups)?;
                (base[..up].to_vec(), &path[ups..])
            }
            _ => (base.to_vec(), path),
        };
        if at == base && rest.len() == path.len() {
            // A relative path: a child module, or a name this module imports.
            if let Some(import) = self.import(base, first) {
                let mut full = import.clone();
                full.extend_from_slice(&path[1..]);
                return self.resolve(base, &full, depth + 1);
            }
            if !self.modules.contains(&child(base, first)) {
                return None;
            }
        }
        while let Some(segment) = rest.first() {
            let next = child(&at, segment);
            if self.modules.contains(&next) {
                at = next;
            } else if let Some(import) = self.import(&at, segment) {
                let mut full = import.clone();
                full.extend_from_slice(&rest[1..]);
                return self.resolve(&at, &full, depth + 1).or(Some(at));
            } else {
                break;
            }
            rest = &rest[1..];
        }
        Some(at)
    }

    fn import(&self, module: &[String], name: &str) -> Option<&Vec<String>> {
        let import = self.imports.get(module)?.get(name)?;
        // `use x;` of an external crate imports itself: no loop.
        (import.len() > 1 || import[0] != name).then_some(import)
    }
}

fn child(module: &[String], name: &str) -> Vec<String> {
    let mut m = module.to_vec();
    m.push(name.to_owned());
    m
}

/// The paths of every `use` declaration, one per leaf of its tree.
fn use_paths(code: &str) -> Vec<Path> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("use") {
        let at = from + found;
        from = at + 3;
        let before = code[..at].trim_end();
        let starts = before.is_empty()
            || before.ends_with(['{', '}', ';', ']', ')'])
            || before.ends_with("pub")
                && !before[..before.len() - 3]
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let word = (at == 0 || !is_ident(bytes[at - 1]))
            && bytes.get(at + 3).is_some_and(u8::is_ascii_whitespace);
        if !(starts && word) {
            continue;
        }
        let Some(end) = code[at..].find(';').map(|e| at + e) else {
            break;
        };
        let tokens = tokens(&code[at + 3..end]);
        let mut leaves = Vec::new();
        tree(&tokens, &mut 0, &[], &mut leaves);
        paths.extend(leaves.into_iter().map(|(segments, alias)| Path {
            segments,
            at,
            alias,
        }));
        from = end;
    }
    paths
}

/// The tokens of a `use` tree: identifiers, `::`, `{`, `}`, `,` and `*`.
fn tokens(tree: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = tree.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_ident(b) {
            let end = (i..bytes.len())
                .find(|&j| !is_ident(bytes[j]))
                .unwrap_or(bytes.len());
            out.push(tree[i..end].to_owned());
            i = end;
        } else if tree[i..].starts_with("::") {
            out.push("::".to_owned());
            i += 2;
        } else {
            if matches!(b, b'{' | b'}' | b',' | b'*') {
                out.push((b as char).to_string());
            }
            i += 1;
        }
    }
    out
}

/// Reads one use tree from `tokens[*i..]` under `prefix`, pushing `(path, imported name)` per
/// leaf (`None` for a glob).
fn tree(
    tokens: &[String],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    while *i < tokens.len() {
        match tokens[*i].as_str() {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while *i < tokens.len() && tokens[*i] != "}" {
                    tree(tokens, i, &path, out);
                    if tokens.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((path, None));
                return;
            }
            "," | "}" => break,
            "as" => {
                let alias = tokens.get(*i + 1).cloned();
                *i += 2;
                out.push((path, alias.filter(|a| a != "_")));
                return;
            }
            // `a::{self}` imports `a`; a leading `self::` is resolved later.
            "self" if !path.is_empty() => *i += 1,
            segment => {
                path.push(segment.to_owned());
                *i += 1;
            }
        }
    }
    if !path.is_empty() {
        let name = path.last().cloned();
        out.push((path, name));
    }
}

/// Every path of two or more segments in code, outside `use` declarations too.
fn code_paths(code: &str) -> Vec<Path> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts =
            is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':');
        if !starts {
            i += 1;
            continue;
        }
        let at = i;
        let mut segments = Vec::new();
        loop {
            let end = (i..bytes.len())
                .find(|&j| !is_ident(bytes[j]))
                .unwrap_or(bytes.len());
            segments.push(code[i..end].to_owned());
            i = end;
            let rest = &code[i..];
            let gap = rest.len() - rest.trim_start().len();
            if !rest.trim_start().starts_with("::") {
                break;
            }
            let after = &code[i + gap + 2..];
            let next = i + gap + 2 + (after.len() - after.trim_start().len());
            if !bytes.get(next).copied().is_some_and(is_ident) {
                break;
            }
            i = next;
        }
        if segments.len() > 1 && !segments[0].starts_with(|c: char| c.is_ascii_digit()) {
            paths.push(Path {
                segments,
                at,
                alias: None,
            });
        }
    }
    paths
}

#[cfg(test)]
mod planted {
    use super::*;

    fn krate(files: &[(&str, &str)]) -> Krate {
        let files = files
            .iter()
            .map(|(p, t)| (format!("k/src/{p}"), (*t).to_owned()))
            .collect();
        Krate::new("k", "k/src", files)
    }

    fn targets(k: &Krate) -> Vec<(String, String)> {
        references(k)
            .into_iter()
            .map(|r| (module_name(&r.from), module_name(&r.to)))
            .collect()
    }

    #[test]
    fn use_trees_paths_super_and_re_exports_resolve_to_modules() {
        let k = krate(&[
            ("lib.rs", "mod a; mod b; mod c;\n"),
            ("a/mod.rs", "mod x; mod y;\npub use y::Thing;\n"),
            (
                "a/x.rs",
                "use super::Thing;\nuse crate::{b::{self, B as Bee}, c::*};\n",
            ),
            (
                "a/y.rs",
                "pub struct Thing;\nfn f() { super::super::c::run(); }\n",
            ),
            (
                "b.rs",
                "fn g() -> crate::a::Thing { todo!() }\n// crate::c::never\n",
            ),
            (
                "c.rs",
                "fn h() { let s = \"crate::b::never\"; }\n#[cfg(test)]\nmod tests { use crate::b; }\n",
            ),
        ]);
        let mut found = targets(&k);
        found.sort();
        found.dedup();
        let want = [
            ("a", "a::y"),
            ("a::x", "a::y"),
            ("a::x", "b"),
            ("a::x", "c"),
            ("a::y", "c"),
            ("b", "a::y"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect();
        assert_eq!(found, want);
    }
}
