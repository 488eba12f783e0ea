//! Who may reach the shared region: the control socket's directory and file
//! modes, and the peer checks on both ends of the socket.
//!
//! The region holds every endpoint's SRTP keys, so whoever can connect to
//! the control socket can read every call and redirect its media. Three
//! walls keep other local users out:
//! - the socket lives in a directory this user owns with mode 0700, made
//!   here; an existing one owned by someone else, a symlink, or one with
//!   any group/other bits is refused (whoever made it could swap the socket);
//! - the socket file itself is 0600;
//! - the dataplane asks the kernel who connected (`SO_PEERCRED`) and hands
//!   the region only to its own uid or root; the client does the same for
//!   the dataplane, and checks the memfd's seals before mapping it.

use super::AbiError;
use rustix::fd::AsFd;
use rustix::fs::{Mode, SealFlags};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Seals a region must carry: its size cannot change and no seal can be
/// removed, so a peer cannot truncate it under a mapping (SIGBUS).
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// This process's effective uid.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether a peer with `uid` may hold the region: this user, or root (who
/// could read our memory anyway).
pub fn trusted_uid(uid: u32) -> bool {
    uid == own_uid() || uid == 0
}

/// The uid of the process at the other end of a connected unix socket, as
/// the kernel recorded it at `connect`/`listen` time.
pub fn peer_uid(socket: impl AsFd) -> Result<u32, AbiError> {
    rustix::net::sockopt::socket_peercred(socket)
        .map(|cred| cred.uid.as_raw())
        .map_err(|e| AbiError::Io("SO_PEERCRED", e.into()))
}

/// Makes (or checks) the directory that holds the control socket: owned by
/// this user, mode 0700, not a symlink. Its ancestors are created with the
/// default mode when missing.
pub fn prepare_socket_dir(dir: &Path) -> Result<(), AbiError> {
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| AbiError::Io("creating socket dir", e))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask can only take bits away; set the mode exactly anyway.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| AbiError::Io("chmod socket dir", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(AbiError::Io("creating socket dir", e)),
    }
    check_socket_dir(dir)
}

/// Refuses a socket directory that another user could tamper with.
pub fn check_socket_dir(dir: &Path) -> Result<(), AbiError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| AbiError::Io("stat socket dir", e))?;
    let unsafe_dir = |reason: String| AbiError::UnsafeSocketDir {
        path: dir.display().to_string(),
        reason,
    };
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir("it is not a directory (a symlink?)".into()));
    }
    if meta.uid() != own_uid() {
        return Err(unsafe_dir(format!(
            "it belongs to uid {}, not to this user (uid {})",
            meta.uid(),
            own_uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "its mode is {mode:04o}; other users must have no access (0700)"
        )));
    }
    Ok(())
}

/// Restricts the bound socket file to this user.
pub fn restrict_socket_file(path: &Path) -> Result<(), AbiError> {
    rustix::fs::chmod(path, Mode::from_raw_mode(0o600))
        .map_err(|e| AbiError::Io("chmod control socket", e.into()))
}

/// Checks that a received region descriptor carries [`REQUIRED_SEALS`].
pub fn check_seals(fd: impl AsFd) -> Result<(), AbiError> {
    let seals =
        rustix::fs::fcntl_get_seals(fd).map_err(|e| AbiError::Io("F_GET_SEALS", e.into()))?;
    if seals.contains(REQUIRED_SEALS) {
        Ok(())
    } else {
        Err(AbiError::BadRegion(
            "the region is not sealed against resizing",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn tmp() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sy-access-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn makes_a_private_directory() {
        let base = tmp();
        let dir = base.join("a/b/switchyard");
        prepare_socket_dir(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        // a second start accepts what the first made
        prepare_socket_dir(&dir).unwrap();
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_a_wider_mode_or_a_symlink() {
        let base = tmp();
        let dir = base.join("switchyard-0");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare_socket_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("0777"), "{err}");
        let link = base.join("link");
        std::os::unix::fs::symlink(&base, &link).unwrap();
        let err = prepare_socket_dir(&link).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn peer_credentials_name_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let uid = peer_uid(&a).unwrap();
        assert_eq!(uid, own_uid());
        assert!(trusted_uid(uid));
    }

    #[test]
    fn unsealed_descriptors_are_refused() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        assert!(check_seals(&fd).is_err());
        rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).unwrap();
        check_seals(&fd).unwrap();
    }
}
