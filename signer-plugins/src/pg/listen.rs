//! `LISTEN` on the store's channel: every committed change wakes the watcher at once.

use std::time::Duration;

use futures_util::future::poll_fn;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::watcher::RotationWaker;

/// First and longest pause before reconnecting a broken listening session.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LONGEST_BACKOFF: Duration = Duration::from_secs(5);

/// A running `LISTEN`; see [`super::PgRotationStore::listen`]. Stops when dropped.
#[derive(Debug)]
pub struct NotifyListener {
    task: JoinHandle<()>,
}

impl NotifyListener {
    pub(crate) fn start(
        rt: &tokio::runtime::Handle,
        config: Config,
        channel: String,
        store: String,
        waker: RotationWaker,
    ) -> Self {
        let task = rt.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                match listen_once(&config, &channel, &waker).await {
                    Ok(()) => {
                        tracing::warn!(%store, "rotation store notifications ended; reconnecting (the poll still bounds propagation)");
                        backoff = FIRST_BACKOFF;
                    }
                    Err(e) => {
                        tracing::warn!(%store, error = %e, "rotation store notifications unavailable; retrying (the poll still bounds propagation)");
                    }
                }
                if waker.wake() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(LONGEST_BACKOFF);
                } else {
                    return; // the watcher is gone
                }
            }
        });
        Self { task }
    }
}

impl Drop for NotifyListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One listening session: returns when it ends.
async fn listen_once(
    config: &Config,
    channel: &str,
    waker: &RotationWaker,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message
                && tx.send(()).is_err()
            {
                return;
            }
        }
    });
    // `channel` is a validated identifier ([a-z_][a-z0-9_]*), quoted besides.
    let listening = client.batch_execute(&format!("LISTEN \"{channel}\"")).await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e);
    }
    // Caught up: anything committed before the LISTEN took effect is read now.
    waker.wake();
    while rx.recv().await.is_some() {
        if !waker.wake() {
            break;
        }
    }
    driver.abort();
    drop(client);
    Ok(())
}
