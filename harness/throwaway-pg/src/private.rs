//! State folders private to their user: created `0700`, and checked on every use (a real folder,
//! owned by this user, writable by nobody else), so that no other local user can plant a server
//! record, hold a lock, or read a password in them. A folder that fails the check is refused with
//! an error that names it, its owner and the fix; nothing in it is read.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use super::EnvError;
use super::os;

/// Creates `dir` (and any missing folder above it) with mode `0700` if it does not exist, then
/// checks it as [`check`] does.
pub(crate) fn ensure(dir: &Path) -> Result<(), EnvError> {
    let created = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    // A file or another user's folder in the way is refused as such, not as a failed create.
    check(dir)?;
    created.map_err(EnvError::io(format!("create {}", dir.display())))
}

/// The file inside every folder the harness created (a state folder, a backend's folder): only a
/// folder that holds it is ever removed whole. A folder that was there before, such as a
/// `HARNESS_STATE_DIR` of the user's own, never holds it.
pub(crate) const MARKER: &str = ".billing-harness";

/// [`ensure`], and when `dir` is new (or holds nothing but `ours`, the names the harness puts in
/// such a folder: one an older harness made, before the marker), marks it as the harness's
/// ([`MARKER`]).
pub(crate) fn ensure_marked(dir: &Path, ours: &[&str]) -> Result<(), EnvError> {
    let existed = std::fs::symlink_metadata(dir).is_ok();
    ensure(dir)?;
    let only_ours = || {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| ours.iter().any(|o| e.file_name() == **o))
        })
    };
    if !is_marked(dir) && (!existed || (!ours.is_empty() && only_ours())) {
        write(
            &dir.join(MARKER),
            b"made by billing-harness, which removes this folder when its server stops\n",
        )?;
    }
    Ok(())
}

/// Whether the harness made `dir` (it holds the [`MARKER`] file).
pub(crate) fn is_marked(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file())
}

/// Refuses `dir` unless it is a folder owned by this process's user that neither its group nor
/// others may write in. A symbolic link is followed only if it is this user's own.
pub(crate) fn check(dir: &Path) -> Result<(), EnvError> {
    let me = os::current_uid();
    let read = |meta: std::io::Result<std::fs::Metadata>| {
        meta.map_err(EnvError::io(format!("read {}", dir.display())))
    };
    let link = read(std::fs::symlink_metadata(dir))?;
    if link.file_type().is_symlink() && link.uid() != me {
        return Err(refusal(dir, &link, "it is a symbolic link of another user"));
    }
    let meta = read(std::fs::metadata(dir))?;
    let problem = if !meta.is_dir() {
        "it is not a folder"
    } else if meta.uid() != me {
        "it is not this user's"
    } else if meta.mode() & 0o022 != 0 {
        "its group or other users may write in it"
    } else {
        return Ok(());
    };
    Err(refusal(dir, &meta, problem))
}

/// Writes `bytes` to the file `path`, readable and writable by this user only (`0600`, whatever
/// mode the file had before).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), EnvError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = || EnvError::io(format!("write {}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail())?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(bytes))
        .map_err(fail())
}

/// The error for `dir`, which fails the check for `problem`.
fn refusal(dir: &Path, meta: &std::fs::Metadata, problem: &str) -> EnvError {
    let shown = dir.display();
    let owner = os::user_name(meta.uid());
    let fix = if meta.uid() == os::current_uid() && meta.is_dir() {
        format!(
            "`chmod 700 {shown}`, or remove it, or set HARNESS_STATE_DIR to a folder of your own"
        )
    } else {
        format!(
            "remove it (as {owner} or root: `rm -rf {shown}`), or set HARNESS_STATE_DIR to a folder of your own"
        )
    };
    EnvError::NotPrivate {
        folder: dir.to_owned(),
        owner,
        mode: meta.mode() & 0o7777,
        problem: problem.to_owned(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_folder_is_made_0700_and_passes() {
        let dir = crate::scratch_dir("private-new");
        ensure(&dir.join("local")).unwrap();
        for made in [&dir, &dir.join("local")] {
            let mode = std::fs::metadata(made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_others_may_write_in_is_refused_by_name_with_its_owner_and_the_fix() {
        let dir = crate::scratch_dir("private-open");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let me = os::user_name(os::current_uid());
        assert!(me.contains("(uid "), "{me}");
        assert!(
            err.starts_with(&format!("the state folder {} ", dir.display())),
            "{err}"
        );
        assert!(err.contains(&format!("it belongs to {me}")), "{err}");
        assert!(err.contains("mode 777"), "{err}");
        assert!(
            err.contains(&format!("fix: `chmod 700 {}`", dir.display())),
            "{err}"
        );
    }

    #[test]
    fn a_folder_that_only_its_group_may_enter_passes() {
        let dir = crate::scratch_dir("private-traverse");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).unwrap();
        let checked = check(&dir);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o720)).unwrap();
        let group_writes = check(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(checked.is_ok(), "{checked:?}");
        assert!(group_writes.is_err());
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_refused() {
        let dir = crate::scratch_dir("private-file");
        std::fs::write(&dir, b"").unwrap();
        let err = check(&dir).unwrap_err().to_string();
        std::fs::remove_file(&dir).unwrap();
        assert!(err.contains("it is not a folder"), "{err}");
    }
}
