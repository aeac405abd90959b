//! Where confirmed calls are kept while they last, so that `relay-control` can continue
//! them after a restart or a SIGKILL (`relay_b2bua::PersistedCall`): one small JSON file per
//! call in a private directory (0700, files 0600), written whole and renamed into place,
//! removed when the call ends. No SRTP keys are ever in them.
//!
//! [`CallStore`] is the interface: a later change can back it with a replicated engine
//! (Redis or Valkey, as rtpengine does) for a standby appliance.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use relay_b2bua::PersistedCall;

/// Keeps the records of calls in progress.
pub trait CallStore: Send {
    /// Keeps (or replaces) `call`'s record.
    fn save(&mut self, call: &PersistedCall) -> std::io::Result<()>;
    /// Drops the record of the call with data-plane id `id`.
    fn forget(&mut self, id: &str) -> std::io::Result<()>;
    /// Every record kept (a record that cannot be read is dropped and reported).
    fn load(&mut self) -> std::io::Result<(Vec<PersistedCall>, Vec<String>)>;
}

/// Records as files in a directory.
#[derive(Debug)]
pub struct FileCallStore {
    dir: PathBuf,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FileCallStore {
    /// Opens (creating, mode 0700) `dir`; refuses a directory others can read.
    pub fn open(dir: &Path) -> std::io::Result<FileCallStore> {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "state directory {} is accessible to group or others (mode {:o}): run `chmod 700 {}`",
                dir.display(),
                mode & 0o777,
                dir.display()
            )));
        }
        Ok(FileCallStore {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

impl CallStore for FileCallStore {
    fn save(&mut self, call: &PersistedCall) -> std::io::Result<()> {
        if !valid_id(&call.dataplane_id) {
            return Err(std::io::Error::other("bad call id"));
        }
        let tmp = self.dir.join(format!(".{}.tmp", call.dataplane_id));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(call).map_err(std::io::Error::other)?)?;
        f.sync_data()?;
        std::fs::rename(&tmp, self.path(&call.dataplane_id))
    }

    fn forget(&mut self, id: &str) -> std::io::Result<()> {
        if !valid_id(id) {
            return Ok(());
        }
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn load(&mut self) -> std::io::Result<(Vec<PersistedCall>, Vec<String>)> {
        let (mut calls, mut bad) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<PersistedCall>(&b).ok())
            {
                Some(c) => calls.push(c),
                None => {
                    bad.push(path.display().to_string());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok((calls, bad))
    }
}
