//! One writer's transaction, split across two threads: the database side runs as a task on
//! the store's runtime and holds the row lock; the caller's thread runs the (synchronous,
//! possibly borrowing) change between reading the row and writing it back.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::conn::{Session, db, timed_out};
use crate::error::Error;

/// The caller's end of an open transaction.
pub(crate) struct Txn {
    store: String,
    wait: Duration,
    state: mpsc::Receiver<Result<(u64, String), Error>>,
    decision: Option<oneshot::Sender<Option<String>>>,
    done: mpsc::Receiver<Result<Option<u64>, Error>>,
}

/// Opens a transaction on `session` and locks the state row of `quoted` (the quoted table
/// name); `channel` is the `NOTIFY` channel announced on commit.
pub(crate) fn begin(
    rt: &tokio::runtime::Handle,
    session: Arc<Session>,
    quoted: String,
    channel: String,
    store: String,
    wait: Duration,
) -> Result<Txn, Error> {
    let (state_tx, state) = mpsc::sync_channel(1);
    let (decision, decision_rx) = oneshot::channel::<Option<String>>();
    let (done_tx, done) = mpsc::sync_channel(1);
    let name = store.clone();
    rt.spawn(async move {
        // The whole transaction, the caller's change included, is bounded by `wait`
        // (twice: once to lock and read, once to decide and commit).
        let work = async {
            let mut guard = session.lock(&name).await?;
            let client = guard.client(&name)?;
            let tx = client.transaction().await.map_err(|e| db(&name, &e))?;
            let row = tx
                .query_opt(
                    &format!("SELECT version, state FROM {quoted} WHERE id = 1 FOR UPDATE"),
                    &[],
                )
                .await
                .map_err(|e| db(&name, &e))?;
            let read = super::row_parts(&name, row);
            let failed = read.is_err();
            let _ = state_tx.send(read);
            if failed {
                return Ok(None);
            }
            let new_state = match tokio::time::timeout(wait, decision_rx).await {
                // The caller's change took too long: roll back and say so (never report
                // a change as written that was not).
                Err(_) => return Err(timed_out(&name, wait)),
                // No change, the change failed, or the caller went away: roll back.
                Ok(Err(_) | Ok(None)) => return Ok(None),
                Ok(Ok(Some(state))) => state,
            };
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE {quoted} SET version = version + 1, state = $1, \
                         updated_at = now() WHERE id = 1 RETURNING version"
                    ),
                    &[&new_state],
                )
                .await
                .map_err(|e| db(&name, &e))?;
            let version: i64 = row.try_get(0).map_err(|e| db(&name, &e))?;
            // Delivered to listeners on commit, never before.
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&channel, &version.to_string()],
            )
            .await
            .map_err(|e| db(&name, &e))?;
            tx.commit().await.map_err(|e| db(&name, &e))?;
            Ok(u64::try_from(version).ok())
        };
        let out = match tokio::time::timeout(wait * 2, work).await {
            Ok(r) => r,
            Err(_) => Err(timed_out(&name, wait)),
        };
        if let Err(e) = &out {
            tracing::debug!(error = %e, "rotation store transaction failed");
        }
        let _ = done_tx.send(out);
    });
    Ok(Txn {
        store,
        wait,
        state,
        decision: Some(decision),
        done,
    })
}

impl Txn {
    /// The locked row: revision and state text.
    pub(crate) fn state(&self) -> Result<(u64, String), Error> {
        match self.state.recv_timeout(self.wait + Duration::from_secs(1)) {
            Ok(r) => r,
            // The task ended before reading the row: its error is in `done`.
            Err(mpsc::RecvTimeoutError::Disconnected) => match self.done.recv() {
                Ok(Err(e)) => Err(e),
                _ => Err(timed_out(&self.store, self.wait)),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => Err(timed_out(&self.store, self.wait)),
        }
    }

    /// Writes `new_state` (None: roll back) and commits; the new revision if written.
    pub(crate) fn finish(mut self, new_state: Option<String>) -> Result<Option<u64>, Error> {
        if let Some(tx) = self.decision.take() {
            let _ = tx.send(new_state);
        }
        self.done
            .recv_timeout(self.wait * 2 + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(timed_out(&self.store, self.wait)))
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        // A caller that returns early (its change failed) rolls back at once.
        if let Some(tx) = self.decision.take() {
            let _ = tx.send(None);
        }
    }
}
