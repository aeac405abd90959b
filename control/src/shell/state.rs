//! Where confirmed calls are kept while they last, so that `relay-control` can continue
//! them after a restart or a SIGKILL (`relay_b2bua::PersistedCall`): one small JSON file per
//! call in a private directory (0700, files 0600), written whole and renamed into place,
//! removed when the call ends. No SRTP keys are ever in them.
//!
//! [`CallStore`] is the interface: a later change can back it with a replicated engine
//! (Redis or Valkey, as rtpengine does) for a standby appliance. [`BackgroundCallStore`]
//! moves the writes (one `fdatasync` per confirmed call) off the event loop onto a thread of
//! their own, in order: the loop never waits for the disk (bench/RESULTS.md, issue 11).

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

enum StoreOp {
    Save(Box<PersistedCall>),
    Forget(String),
}

/// A [`CallStore`] whose writes happen on a thread of its own; `save` and `forget` return at
/// once, and a failure is logged by that thread. Requests for one call are carried out in
/// order, and of those queued together only the last (see `spawn`). `load` is
/// refused: load from the inner store before handing it over. Dropping it finishes the
/// queued writes first.
pub struct BackgroundCallStore {
    tx: Option<std::sync::mpsc::Sender<StoreOp>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundCallStore {
    /// Starts the writer thread, which owns `inner`.
    pub fn spawn(mut inner: impl CallStore + 'static) -> std::io::Result<BackgroundCallStore> {
        let (tx, rx) = std::sync::mpsc::channel::<StoreOp>();
        let writer = std::thread::Builder::new()
            .name("call-store".into())
            .spawn(move || {
                // What is queued when the thread gets to it is taken at once, and only each
                // call's last request is carried out: a call that ended meanwhile is never
                // written, so the disk's sync rate does not bound the call rate and the
                // queue cannot grow beyond the calls in progress.
                let mut batch: std::collections::HashMap<String, StoreOp> =
                    std::collections::HashMap::new();
                while let Ok(first) = rx.recv() {
                    for op in std::iter::once(first).chain(rx.try_iter()) {
                        let id = match &op {
                            StoreOp::Save(call) => call.dataplane_id.clone(),
                            StoreOp::Forget(id) => id.clone(),
                        };
                        batch.insert(id, op);
                    }
                    for (_, op) in batch.drain() {
                        match op {
                            StoreOp::Save(call) => {
                                if let Err(e) = inner.save(&call) {
                                    tracing::error!(error = %e, call = call.dataplane_id, "call not kept for a restart");
                                }
                            }
                            StoreOp::Forget(id) => {
                                if let Err(e) = inner.forget(&id) {
                                    tracing::error!(error = %e, call = id, "kept call record not removed");
                                }
                            }
                        }
                    }
                }
            })?;
        Ok(BackgroundCallStore {
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    fn send(&self, op: StoreOp) -> std::io::Result<()> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(op).ok())
            .ok_or_else(|| std::io::Error::other("the call-store thread has stopped"))
    }
}

impl CallStore for BackgroundCallStore {
    fn save(&mut self, call: &PersistedCall) -> std::io::Result<()> {
        self.send(StoreOp::Save(Box::new(call.clone())))
    }

    fn forget(&mut self, id: &str) -> std::io::Result<()> {
        self.send(StoreOp::Forget(id.to_owned()))
    }

    fn load(&mut self) -> std::io::Result<(Vec<PersistedCall>, Vec<String>)> {
        Err(std::io::Error::other(
            "load from the inner store before it is moved to the background",
        ))
    }
}

impl Drop for BackgroundCallStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_b2bua::core::persist::{PersistedDialog, PERSIST_VERSION};

    fn call(id: &str, cseq: u32) -> PersistedCall {
        let dialog = PersistedDialog {
            trunk: "t".into(),
            call_id: "cid".into(),
            local_tag: "l".into(),
            local: "<sip:a@198.18.0.1>".into(),
            remote: "<sip:b@198.18.0.2>;tag=r".into(),
            remote_target: None,
            cseq,
        };
        PersistedCall {
            version: PERSIST_VERSION,
            dataplane_id: id.into(),
            a: dialog.clone(),
            b: dialog,
            b_peer: 0,
            ports: Vec::new(),
            caller: String::new(),
            callee: String::new(),
            setup_unix_ms: 0,
            answer_unix_ms: None,
            suites: Vec::new(),
            held: false,
        }
    }

    /// Counts the files written.
    struct Counting(
        FileCallStore,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    );

    impl CallStore for Counting {
        fn save(&mut self, call: &PersistedCall) -> std::io::Result<()> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.save(call)
        }
        fn forget(&mut self, id: &str) -> std::io::Result<()> {
            self.0.forget(id)
        }
        fn load(&mut self) -> std::io::Result<(Vec<PersistedCall>, Vec<String>)> {
            self.0.load()
        }
    }

    #[test]
    fn background_writes_end_in_each_calls_last_state_and_finish_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let saves = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut store = BackgroundCallStore::spawn(Counting(
            FileCallStore::open(&state).unwrap(),
            saves.clone(),
        ))
        .unwrap();
        // 2000 short calls (saved, then forgotten) and 3 that stay, one saved twice.
        for i in 0..2000 {
            let id = format!("s{i}");
            store.save(&call(&id, 1)).unwrap();
            store.forget(&id).unwrap();
        }
        store.save(&call("k0", 1)).unwrap();
        store.save(&call("k1", 1)).unwrap();
        store.save(&call("k1", 7)).unwrap();
        store.forget("k2").unwrap();
        store.save(&call("k2", 1)).unwrap();
        drop(store);
        let (mut kept, bad) = FileCallStore::open(&state).unwrap().load().unwrap();
        kept.sort_by(|x, y| x.dataplane_id.cmp(&y.dataplane_id));
        let got: Vec<(&str, u32)> = kept
            .iter()
            .map(|c| (c.dataplane_id.as_str(), c.a.cseq))
            .collect();
        assert_eq!(got, [("k0", 1), ("k1", 7), ("k2", 1)]);
        assert!(bad.is_empty());
        // Calls that ended while queued were not all written (the first may have been).
        let written = saves.load(std::sync::atomic::Ordering::Relaxed);
        assert!(written < 2000, "{written} files written for 2003 saves");
    }
}
