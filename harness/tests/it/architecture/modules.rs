//! Which module of a crate refers to which: every `use` tree and every path that starts at
//! `crate::`, `super::`, `self::`, a child module or a name the module imports, resolved through
//! the crate's modules and their `use` re-exports, in library code only (test code may reach
//! anywhere). The layering rules and the cycle check read these references.

use std::collections::{BTreeMap, BTreeSet};

use super::source::{Krate, Lines, SourceFile, Violation, is_ident, module_name};

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

impl Reference {
    /// `file:line: \`path\``.
    pub(super) fn evidence(&self) -> String {
        format!("{} `{}`", self.at, self.path)
    }
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

/// One import cycle: sibling modules of a crate (children of its root or of one folder) that
/// reach each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cycle {
    pub(super) krate: String,
    /// The cycle's modules, full paths, sorted.
    pub(super) modules: Vec<String>,
    /// One reference per edge inside the cycle, as `a -> b: file:line \`path\``.
    pub(super) edges: Vec<String>,
}

/// Every import cycle of `krate`: for the crate root and every folder, the strongly connected
/// groups of its child modules, where a child refers to another when any file of its subtree
/// refers into the other's.
pub(super) fn cycles(krate: &Krate) -> Vec<Cycle> {
    let references = references(krate);
    let modules = krate.modules();
    let mut cycles = Vec::new();
    for parent in &modules {
        let children: Vec<&Vec<String>> = modules
            .iter()
            .filter(|m| m.len() == parent.len() + 1 && m.starts_with(parent))
            .collect();
        let mut edges: BTreeMap<(usize, usize), &Reference> = BTreeMap::new();
        for r in &references {
            let from = children.iter().position(|c| r.from.starts_with(c));
            let to = children.iter().position(|c| r.to.starts_with(c));
            if let (Some(from), Some(to)) = (from, to)
                && from != to
            {
                edges.entry((from, to)).or_insert(r);
            }
        }
        for group in strongly_connected(children.len(), &edges.keys().copied().collect::<Vec<_>>())
        {
            cycles.push(Cycle {
                krate: krate.name.clone(),
                modules: group.iter().map(|&m| module_name(children[m])).collect(),
                edges: edges
                    .iter()
                    .filter(|((a, b), _)| group.contains(a) && group.contains(b))
                    .map(|((a, b), r)| {
                        format!(
                            "{} -> {}: {}",
                            module_name(children[*a]),
                            module_name(children[*b]),
                            r.evidence()
                        )
                    })
                    .collect(),
            });
        }
    }
    cycles
}

/// The cycles of `found` that `known` does not list, and the entries of `known` that match no
/// cycle found.
pub(super) fn cycles_against(found: &[Cycle], known: &[(&str, &[&str])]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for cycle in found {
        let listed = known.iter().any(|(k, m)| {
            *k == cycle.krate
                && m.iter()
                    .copied()
                    .eq(cycle.modules.iter().map(String::as_str))
        });
        if !listed {
            violations.push(Violation {
                at: cycle.edges.first().cloned().unwrap_or_default(),
                what: format!(
                    "an import cycle in {} between {}:\n      {}",
                    cycle.krate,
                    cycle.modules.join(", "),
                    cycle.edges.join("\n      ")
                ),
                rule: "no import cycle between the modules of a crate",
                fix: "break one edge: move what both need into one of them, or down into a module \
                      both use (do not add the cycle to KNOWN_CYCLES)"
                    .to_owned(),
            });
        }
    }
    for (krate, modules) in known {
        let still = found.iter().any(|c| {
            c.krate == *krate
                && modules
                    .iter()
                    .copied()
                    .eq(c.modules.iter().map(String::as_str))
        });
        if !still {
            violations.push(Violation {
                at: "harness/tests/it/architecture.rs".to_owned(),
                what: format!(
                    "KNOWN_CYCLES lists {krate}: {}, which is no longer a cycle",
                    modules.join(", ")
                ),
                rule: "KNOWN_CYCLES only shrinks",
                fix: "remove the entry, or replace it with the smaller cycle this test reports"
                    .to_owned(),
            });
        }
    }
    violations
}

/// The groups of two or more of `n` nodes that reach each other over `edges`, each sorted.
fn strongly_connected(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut reach = vec![vec![false; n]; n];
    for &(a, b) in edges {
        reach[a][b] = true;
    }
    for k in 0..n {
        let via = reach[k].clone();
        for row in &mut reach {
            if row[k] {
                for (cell, hop) in row.iter_mut().zip(&via) {
                    *cell |= *hop;
                }
            }
        }
    }
    let mut seen = vec![false; n];
    let mut groups = Vec::new();
    for a in 0..n {
        if seen[a] {
            continue;
        }
        let group: Vec<usize> = (0..n)
            .filter(|&b| b == a || reach[a][b] && reach[b][a])
            .collect();
        for &m in &group {
            seen[m] = true;
        }
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
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

    #[test]
    fn a_two_module_cycle_is_reported_with_its_edges() {
        let k = krate(&[
            ("lib.rs", "mod a; mod b; mod c;\n"),
            ("a.rs", "use crate::b::B;\npub struct A;\n"),
            ("b.rs", "pub struct B(crate::a::A);\n"),
            ("c.rs", "use crate::a::A;\n"),
        ]);
        let cycles = cycles(&k);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].modules, ["a", "b"]);
        assert_eq!(
            cycles[0].edges,
            [
                "a -> b: k/src/a.rs:1 `crate::b::B`",
                "b -> a: k/src/b.rs:1 `crate::a::A`"
            ]
        );
    }

    #[test]
    fn a_cycle_inside_a_folder_is_reported_and_a_parent_child_pair_is_not() {
        let k = krate(&[
            ("lib.rs", "mod f;\n"),
            (
                "f/mod.rs",
                "mod p; mod q;\npub use p::P;\npub struct Shared;\n",
            ),
            (
                "f/p.rs",
                "use super::q::Q;\nuse super::Shared;\npub struct P;\n",
            ),
            ("f/q.rs", "pub struct Q(super::P);\n"),
        ]);
        let cycles = cycles(&k);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].modules, ["f::p", "f::q"]);
    }

    fn cycle(krate: &str, modules: &[&str]) -> Cycle {
        Cycle {
            krate: krate.to_owned(),
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
            edges: vec!["a -> b: k/src/a.rs:1 `crate::b`".to_owned()],
        }
    }

    #[test]
    fn a_cycle_not_listed_fails_and_a_listed_one_that_is_gone_fails_too() {
        let found = [cycle("k", &["a", "b"]), cycle("k", &["f::p", "f::q"])];
        let known: &[(&str, &[&str])] = &[("k", &["a", "b"]), ("k", &["c", "d"])];
        let rules: Vec<&str> = cycles_against(&found, known)
            .iter()
            .map(|v| v.rule)
            .collect();
        assert_eq!(
            rules,
            [
                "no import cycle between the modules of a crate",
                "KNOWN_CYCLES only shrinks"
            ]
        );
        assert!(cycles_against(&found[..1], &known[..1]).is_empty());
    }
}
