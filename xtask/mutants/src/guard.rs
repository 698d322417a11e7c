//! Putting mutated source files back: a backup of each file's original text on disk before any
//! mutant is written, restored when the guard drops (a normal end, an error, a panic, Ctrl-C or
//! SIGTERM), and at the next start when a crashed or killed run left it behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The original text of the files being mutated, kept on disk until they are restored.
#[derive(Debug)]
pub(crate) struct Backup {
    /// The directory holding one `<n>.orig` copy per file and `manifest.txt` (one
    /// `<n>\t<path>` line per file).
    dir: PathBuf,
    /// The workspace root the paths are relative to.
    root: PathBuf,
    /// The files held, relative to `root`, with their backup number and original text.
    files: BTreeMap<PathBuf, (usize, String)>,
}

impl Backup {
    /// Restores what a previous run left in `dir`, then starts an empty backup there.
    /// Returns the guard and the files it restored.
    ///
    /// # Errors
    /// The directory or a file could not be read or written.
    pub(crate) fn start(root: &Path, dir: &Path) -> anyhow::Result<(Backup, Vec<PathBuf>)> {
        let restored = restore_leftovers(root, dir)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok((
            Backup {
                dir: dir.to_owned(),
                root: root.to_owned(),
                files: BTreeMap::new(),
            },
            restored,
        ))
    }

    /// Saves the current text of `file` (relative to the root) before it is mutated; saving a
    /// file already held does nothing.
    ///
    /// # Errors
    /// The file could not be read, or the backup written.
    pub(crate) fn hold(&mut self, file: &Path) -> anyhow::Result<&str> {
        if !self.files.contains_key(file) {
            let text = std::fs::read_to_string(self.root.join(file))
                .with_context(|| format!("reading {}", file.display()))?;
            let n = self.files.values().map(|(n, _)| n + 1).max().unwrap_or(0);
            write_atomic(&self.dir.join(format!("{n}.orig")), &text)?;
            self.files.insert(file.to_owned(), (n, text));
            self.write_manifest()?;
        }
        Ok(&self.files[file].1)
    }

    /// Writes the original text of every held file back.
    ///
    /// # Errors
    /// A file could not be written.
    pub(crate) fn restore_all(&self) -> anyhow::Result<()> {
        for (file, (_, text)) in &self.files {
            restore_file(&self.root.join(file), text)?;
        }
        Ok(())
    }

    /// Writes the original text of `file` back (it stays held).
    ///
    /// # Errors
    /// The file is not held, or could not be written.
    pub(crate) fn restore(&self, file: &Path) -> anyhow::Result<()> {
        let (_, text) = self
            .files
            .get(file)
            .with_context(|| format!("{} is not backed up", file.display()))?;
        restore_file(&self.root.join(file), text)
    }

    /// Restores every held file and removes the backup.
    ///
    /// # Errors
    /// A file could not be written; the backup then stays for the next run.
    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        self.restore_all()?;
        self.files.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// Records which backup belongs to which file, atomically.
    fn write_manifest(&self) -> anyhow::Result<()> {
        let manifest: String = self
            .files
            .iter()
            .map(|(file, (n, _))| format!("{n}\t{}\n", file.display()))
            .collect();
        write_atomic(&self.dir.join("manifest.txt"), &manifest)
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        if self.files.is_empty() {
            return;
        }
        match self.restore_all() {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            Err(e) => eprintln!(
                "mutants: could not restore the mutated files ({e:#}); the next `cargo xtask \
                 mutants` restores them from {}",
                self.dir.display()
            ),
        }
    }
}

/// Writes `text` to `file` unless it already holds it (so an unchanged file keeps its mtime).
fn restore_file(file: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(file).ok().as_deref() != Some(text) {
        write_atomic(file, text)?;
    }
    Ok(())
}

/// Restores the files a previous run's backup in `dir` lists, then removes it.
fn restore_leftovers(root: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let manifest = dir.join("manifest.txt");
    let Ok(listing) = std::fs::read_to_string(&manifest) else {
        let _ = std::fs::remove_dir_all(dir);
        return Ok(Vec::new());
    };
    let mut restored = Vec::new();
    for line in listing.lines() {
        let Some((n, file)) = line.split_once('\t') else {
            continue;
        };
        let original = std::fs::read_to_string(dir.join(format!("{n}.orig")))
            .with_context(|| format!("reading the backup of {file} in {}", dir.display()))?;
        let path = root.join(file);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(original.as_str()) {
            write_atomic(&path, &original)?;
            restored.push(PathBuf::from(file));
        }
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(restored)
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("mutants-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-mutants-guard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        dir
    }

    #[test]
    fn drop_restores_and_a_leftover_backup_is_restored_at_start() {
        let root = scratch("drop");
        let file = Path::new("src/a.rs");
        std::fs::write(root.join(file), "original").unwrap();
        let dir = root.join("backup");
        {
            let (mut backup, restored) = Backup::start(&root, &dir).unwrap();
            assert!(restored.is_empty());
            assert_eq!(backup.hold(file).unwrap(), "original");
            std::fs::write(root.join(file), "mutated").unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(root.join(file)).unwrap(),
            "original"
        );
        assert!(!dir.exists());

        // A run killed without unwinding leaves its backup: the next start restores it.
        let (mut backup, _) = Backup::start(&root, &dir).unwrap();
        backup.hold(file).unwrap();
        std::fs::write(root.join(file), "mutated").unwrap();
        std::mem::forget(backup);
        let (backup, restored) = Backup::start(&root, &dir).unwrap();
        assert_eq!(restored, [PathBuf::from("src/a.rs")]);
        assert_eq!(
            std::fs::read_to_string(root.join(file)).unwrap(),
            "original"
        );
        backup.finish().unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_panic_restores_the_file() {
        let root = scratch("panic");
        let file = Path::new("src/b.rs");
        std::fs::write(root.join(file), "original").unwrap();
        let dir = root.join("backup");
        let result = std::panic::catch_unwind(|| {
            let (mut backup, _) = Backup::start(&root, &dir).unwrap();
            backup.hold(file).unwrap();
            std::fs::write(root.join(file), "mutated").unwrap();
            panic!("a test of the guard");
        });
        assert!(result.is_err());
        assert_eq!(
            std::fs::read_to_string(root.join(file)).unwrap(),
            "original"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
