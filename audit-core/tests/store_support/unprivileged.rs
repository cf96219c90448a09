//! Running a program as an unprivileged user, to check what file permissions allow: root,
//! which tests may run as, ignores them. Shared by the store tests and the CLI's (which
//! includes this file).
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command running `program`: as it is when this process is not root; as root, through
/// `setpriv` as user and group 65534 (nobody), from a copy in a fresh directory under
/// `scratch` that anyone can enter (the original may sit where that user cannot).
pub(crate) fn command(program: &Path, scratch: &Path) -> Command {
    if !is_root() {
        return Command::new(program);
    }
    let dir = scratch.join("unprivileged-bin");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(program.file_name().unwrap());
    std::fs::copy(program, &copy).unwrap();
    for path in [&dir, &copy] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(copy);
    command
}
