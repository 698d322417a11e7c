//! The product-mock image: the `harness-product-mock` binary, its shared libraries and the dynamic
//! loader on an otherwise empty root file system, imported with `docker import` (no registry, no
//! base image) and named `billing-harness/product-mock:<hash of those files>`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The image's repository; the tag is the content hash.
pub(crate) const REPOSITORY: &str = "billing-harness/product-mock";

/// Builds the binary and imports the image unless an image of the same content exists; returns
/// the image's name. `docker` is the client to run (it honours `DOCKER_HOST`); progress goes to
/// standard error.
pub(crate) fn build(docker: &str) -> anyhow::Result<String> {
    let binary = build_binary()?;
    let root = workspace_root().join("target").join("product-mock-rootfs");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
    }
    let files = populate(&root, &binary)?;
    let name = format!("{REPOSITORY}:{}", content_hash(&root, &files)?);
    let exists = Command::new(docker)
        .args(["image", "inspect", "--format", "{{.Id}}", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("run `{docker} image inspect`"))?
        .success();
    if exists {
        eprintln!("product-mock: {name} exists, skipped");
    } else {
        import(docker, &root, &name)?;
        eprintln!("product-mock: imported {name} ({} files)", files.len());
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(name)
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// `cargo build -p xtask -p billing-harness --bin harness-product-mock`; the executable's path.
/// Selecting xtask too builds the library with the features `cargo xtask` itself uses: alone,
/// billing-harness gets other features, and each of the two builds undoes the other's.
fn build_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("product-mock: cargo build --bin harness-product-mock");
    let mut command = Command::new(cargo);
    // `cargo xtask` runs us with the variables cargo sets for a package; ring's build script
    // reruns when CARGO_MANIFEST_DIR changes, so inheriting them would rebuild it each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            command.env_remove(&*name);
        }
    }
    let mut child = command
        .args([
            "build",
            "-p",
            "xtask",
            "-p",
            "billing-harness",
            "--bin",
            "harness-product-mock",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .context("run cargo build")?;
    let mut executable = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("read cargo's output")?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(path) = message["executable"].as_str()
                && message["target"]["name"] == "harness-product-mock"
            {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    if !child.wait().context("wait for cargo build")?.success() {
        bail!("cargo build of harness-product-mock failed");
    }
    executable.context("cargo build named no harness-product-mock executable")
}

/// Puts the binary (stripped) at `/harness-product-mock` and every library `ldd` names, the
/// loader included, at its own path; the files' paths inside the root, sorted.
fn populate(root: &Path, binary: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut files = BTreeSet::new();
    let target = root.join("harness-product-mock");
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    let status = Command::new("strip")
        .arg("-o")
        .arg(&target)
        .arg(binary)
        .status()
        .context("run strip (binutils)")?;
    if !status.success() {
        bail!("strip failed on {}", binary.display());
    }
    files.insert(PathBuf::from("harness-product-mock"));
    for library in libraries(binary)? {
        let inside = library.strip_prefix("/").unwrap_or(&library).to_owned();
        let to = root.join(&inside);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::copy(&library, &to)
            .with_context(|| format!("copy {} into the image", library.display()))?;
        files.insert(inside);
    }
    Ok(files)
}

/// The absolute paths `ldd` prints for `binary`: its libraries and the loader.
fn libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("run ldd")?;
    if !output.status.success() {
        bail!("ldd failed on {}", binary.display());
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the loader's
            // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The first 16 hex digits of the SHA-256 of every file's path and content.
fn content_hash(root: &Path, files: &BTreeSet<PathBuf>) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.to_string_lossy().as_bytes());
        hash.update([0]);
        let bytes =
            std::fs::read(root.join(file)).with_context(|| format!("read {}", file.display()))?;
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let digest = hash.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// `tar -C root -c . | docker import --change ... - name`.
fn import(docker: &str, root: &Path, name: &str) -> anyhow::Result<()> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["--owner=0", "--group=0", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("run tar")?;
    let archive = tar.stdout.take().context("tar's output")?;
    let status = Command::new(docker)
        .args([
            "import",
            "--change",
            r#"ENTRYPOINT ["/harness-product-mock"]"#,
            "--change",
            "EXPOSE 8080",
            "--change",
            "LABEL billing-harness.image=product-mock",
            "-",
            name,
        ])
        .stdin(archive)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("run `{docker} import`"))?;
    let tar_status = tar.wait().context("wait for tar")?;
    if !tar_status.success() || !status.success() {
        bail!("`tar | {docker} import` of {name} failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6a)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f6a)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}
