//! `images`: the container images the harness needs, built on this machine from files already
//! installed (no registry is needed): PostgreSQL from Debian's server packages, and the product
//! mock. Each is named by the hash of its content, and skipped when the engine has it.

mod postgres;
mod product_mock;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// `cargo xtask images`: builds what is missing and prints each image's name.
pub(crate) fn run(output: crate::format::Output) -> anyhow::Result<ExitCode> {
    docker(&["version", "--format", "{{.Server.Version}}"])
        .context("no Docker engine answers (start dockerd, or set DOCKER_HOST)")?;
    let work = crate::workspace_root().join("target/images");
    let postgres = postgres::build(&work)?;
    let product_mock = product_mock::build(&work)?;
    let images = serde_json::json!({"postgres": postgres, "product_mock": product_mock});
    output.emit(&images, |_| {
        format!("HARNESS_POSTGRES_IMAGE={postgres}\nHARNESS_PRODUCT_MOCK_IMAGE={product_mock}\n")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A root file system being assembled for `docker import`.
pub(crate) struct RootFs {
    dir: PathBuf,
    /// Every file copied, for the content hash.
    files: BTreeSet<PathBuf>,
    /// Extra text put into the image (scripts, /etc files), for the hash too.
    texts: Vec<(PathBuf, String)>,
}

impl RootFs {
    /// An empty root under `dir` (removed first).
    pub(crate) fn new(dir: &Path) -> anyhow::Result<RootFs> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        Ok(RootFs {
            dir: dir.to_owned(),
            files: BTreeSet::new(),
            texts: Vec::new(),
        })
    }

    /// Copies a file or a whole folder of this machine to the same path in the image.
    pub(crate) fn copy(&mut self, path: &Path) -> anyhow::Result<()> {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("{} is not on this machine", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.copy(&entry?.path())?;
            }
            return Ok(());
        }
        let target = self.dir.join(path.strip_prefix("/").unwrap_or(path));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(path)?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target)?;
            // The link's target is needed too.
            let resolved = path.parent().unwrap_or(Path::new("/")).join(&link);
            if resolved.exists() && !self.files.contains(&resolved) {
                self.copy(&resolved)?;
            }
        } else {
            std::fs::copy(path, &target)
                .with_context(|| format!("copy {} into the image", path.display()))?;
        }
        self.files.insert(path.to_owned());
        Ok(())
    }

    /// Copies `binary` and every shared library it loads (read with `ldd`), with the loader.
    pub(crate) fn copy_with_libraries(&mut self, binary: &Path) -> anyhow::Result<()> {
        self.copy(binary)?;
        self.copy_libraries(binary)
    }

    /// Copies the file `from` of this machine to `to` in the image.
    pub(crate) fn place(&mut self, from: &Path, to: &str) -> anyhow::Result<()> {
        let target = self.dir.join(to.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, &target)
            .with_context(|| format!("copy {} into the image", from.display()))?;
        self.texts.push((PathBuf::from(to), String::new()));
        self.files.insert(from.to_owned());
        Ok(())
    }

    /// Copies every shared library `binary` loads (read with `ldd`), with the loader.
    pub(crate) fn copy_libraries(&mut self, binary: &Path) -> anyhow::Result<()> {
        let out = Command::new("ldd")
            .arg(binary)
            .output()
            .context("run ldd (Debian's libc-bin)")?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux... (0x...)"
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                let path = PathBuf::from(path);
                if !self.files.contains(&path) {
                    self.copy(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Writes `text` at `path` in the image with `mode`.
    pub(crate) fn write(&mut self, path: &str, text: &str, mode: u32) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let target = self.dir.join(path.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        self.texts.push((PathBuf::from(path), text.to_owned()));
        Ok(())
    }

    /// Makes `path` in the image a symbolic link to `target`.
    pub(crate) fn link(&mut self, path: &str, target: &str) -> anyhow::Result<()> {
        let at = self.dir.join(path.trim_start_matches('/'));
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::symlink_metadata(&at).is_err() {
            std::os::unix::fs::symlink(target, &at)?;
        }
        self.texts
            .push((PathBuf::from(path), format!("-> {target}")));
        Ok(())
    }

    /// Makes an empty folder in the image.
    pub(crate) fn mkdir(&self, path: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.dir.join(path.trim_start_matches('/')))?;
        Ok(())
    }

    /// The hash of everything in the image and of `recipe` (the import's settings): the same
    /// files and settings give the same name.
    pub(crate) fn hash(&self, recipe: &str) -> anyhow::Result<String> {
        let mut h = Sha256::new();
        h.update(recipe.as_bytes());
        for file in &self.files {
            h.update(file.to_string_lossy().as_bytes());
            let meta = std::fs::symlink_metadata(file)?;
            if meta.file_type().is_symlink() {
                h.update(std::fs::read_link(file)?.to_string_lossy().as_bytes());
            } else {
                h.update(std::fs::read(file)?);
            }
        }
        for (path, text) in &self.texts {
            h.update(path.to_string_lossy().as_bytes());
            h.update(text.as_bytes());
        }
        Ok(format!("{:x}", h.finalize())[..12].to_owned())
    }

    /// Imports the root as `name` with the Dockerfile-like `changes` (`ENTRYPOINT [...]`, ...).
    pub(crate) fn import(&self, name: &str, changes: &[&str]) -> anyhow::Result<()> {
        let mut args: Vec<String> = vec!["import".into()];
        for change in changes {
            args.push("--change".into());
            args.push((*change).into());
        }
        args.push("-".into());
        args.push(name.into());
        let tar = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&self.dir)
            .args(["-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .context("run tar")?;
        let out = Command::new("docker")
            .args(&args)
            .stdin(tar.stdout.context("tar's output")?)
            .output()
            .context("run docker import")?;
        if !out.status.success() {
            bail!(
                "docker import {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Whether the engine has `image`.
pub(crate) fn present(image: &str) -> bool {
    docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_ok()
}

/// Runs `docker ARGS`; its stdout, or its stderr as the error.
pub(crate) fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .context("run the docker client")?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim())
    }
}
