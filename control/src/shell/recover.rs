//! Taking calls back when relay-control starts: the calls kept in the state directory
//! (`state`) against the calls the data plane has. A kept call the data plane still has goes
//! on (its dialogs restored in the B2BUA); a kept call it no longer has ended while we were
//! away and its record is dropped; a data-plane call that no record names (relay-control
//! stopped between programming the call and keeping it) is removed, so that its ports and
//! streams are not held for ever.

use std::path::Path;

use relay_b2bua::{Action, B2bua};

use super::state::{CallStore, FileCallStore};

/// Restores the kept calls the data plane at `socket` still has and cleans up the rest; the
/// actions that continue the restored calls. An unreachable data plane restores nothing (its
/// calls are gone with it) and is logged.
pub async fn take_back_calls(
    b2bua: &mut B2bua,
    files: &mut FileCallStore,
    socket: &Path,
    epoch_ms_at_zero: i64,
    now_ns: &impl Fn() -> u64,
) -> std::io::Result<Vec<Action>> {
    let mut actions_out = Vec::new();
    let (kept, unreadable) = files.load()?;
    for path in unreadable {
        tracing::warn!(path, "an unreadable kept call record was removed");
    }
    let p = socket.to_owned();
    let live = match tokio::task::spawn_blocking(move || {
        relay_session::client::ControlClient::connect(&p).and_then(|mut c| c.list_calls())
    })
    .await
    {
        Ok(Ok(live)) => live,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the data plane's calls could not be listed at start-up");
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    let mut continued = std::collections::HashSet::new();
    for record in kept {
        let restored = live
            .contains(&record.dataplane_id)
            .then(|| b2bua.restore(&record, epoch_ms_at_zero, now_ns()))
            .flatten();
        match restored {
            Some(actions) => {
                tracing::info!(call = record.dataplane_id, "call continued after a restart");
                actions_out.extend(actions);
                continued.insert(record.dataplane_id);
            }
            None => {
                tracing::info!(
                    call = record.dataplane_id,
                    "kept call no longer in the data plane: dropped"
                );
                let _ = files.forget(&record.dataplane_id);
            }
        }
    }
    let unkept: Vec<String> = live
        .into_iter()
        .filter(|id| !continued.contains(id))
        .collect();
    if !unkept.is_empty() {
        let p = socket.to_owned();
        let removed = tokio::task::spawn_blocking(move || {
            let mut client = relay_session::client::ControlClient::connect(&p)?;
            let mut removed = Vec::new();
            for id in unkept {
                match client.remove_call(&id) {
                    Ok(_) => removed.push(id),
                    Err(e) => tracing::warn!(error = %e, call = id, "an unkept data-plane call could not be removed"),
                }
            }
            Ok::<_, relay_session::client::ClientError>(removed)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        for id in removed {
            tracing::warn!(
                call = id,
                "a data-plane call no kept record names was removed"
            );
        }
    }
    Ok(actions_out)
}
