//! How much room a folder has, and byte counts for people. It knows no error type: the errors
//! (`error.rs`) use it to say how full a disk is.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The size of a file system and the room left on it for an unprivileged user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    /// Total size in bytes.
    pub(crate) size: u64,
    /// Bytes available to unprivileged users.
    pub(crate) free: u64,
}

/// The file system holding `path` (or its nearest existing ancestor), from POSIX `df -Pk`; `None`
/// when `df` is missing or says something unexpected.
pub(crate) fn space(path: &Path) -> Option<Space> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let output = Command::new("df")
        .arg("-Pk")
        .arg(existing)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_df(&String::from_utf8_lossy(&output.stdout))
}

/// Reads the size and available columns of `df -Pk` (1024-byte blocks).
fn parse_df(text: &str) -> Option<Space> {
    let line = text.lines().nth(1)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // Filesystem, 1024-blocks, Used, Available, Capacity, Mounted on (which may hold spaces).
    let size: u64 = fields.get(1)?.parse().ok()?;
    let free: u64 = fields.get(3)?.parse().ok()?;
    Some(Space {
        size: size * 1024,
        free: free * 1024,
    })
}

/// Bytes that the files under `path` occupy on disk (sparse files count what they use).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    own + std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| disk_usage(&entry.path()))
        .sum::<u64>()
}

/// `bytes` for people: `812 kB`, `48 MB`, `1.5 GB` (powers of 1024, as `df -h` and tmpfs's
/// `size=64m` count).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KB * KB {
        format!("{:.0} kB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.0} MB", b / (KB * KB))
    } else {
        format!("{:.1} GB", b / (KB * KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read_in_kilobytes() {
        let text = "Filesystem     1024-blocks  Used Available Capacity Mounted on\n\
                    tmpfs                65536  1024     64512       2% /dev/shm\n";
        assert_eq!(
            parse_df(text),
            Some(Space {
                size: 64 * 1024 * 1024,
                free: 63 * 1024 * 1024
            })
        );
        assert_eq!(parse_df("garbage"), None);
    }

    #[test]
    fn sizes_read_like_df_h() {
        assert_eq!(human_bytes(800 * 1024), "800 kB");
        assert_eq!(human_bytes(48 * 1024 * 1024), "48 MB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GB");
    }
}
