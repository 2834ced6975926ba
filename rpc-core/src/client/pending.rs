//! The table of calls awaiting a reply, keyed by message id.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

use crate::principal::Principal;
use crate::security::Peer;
use crate::wire::{MessageId, ReplyBody};

#[derive(Debug)]
struct Entry {
    peer: Peer,
    tx: oneshot::Sender<ReplyBody>,
    /// Woken by each admitted heartbeat for the call (a monitored one: only it waits).
    beat: Option<Arc<Notify>>,
}

/// What a registered call waits on: its reply, and the heartbeats of a monitored call.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) reply: oneshot::Receiver<ReplyBody>,
    /// The heartbeats of a monitored call; `None` for a call that is not monitored.
    pub(crate) beat: Option<Arc<Notify>>,
}

/// Hashes the message ids of [`Pending`]: they are this client's own random ids (a peer
/// only looks them up, and cannot choose what the table holds), so they need no keyed,
/// DoS-resistant hash; a few multiplications spread them as well.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Calls = HashMap<MessageId, Entry, BuildHasherDefault<IdHasher>>;

/// Calls awaiting a reply. Its size is bounded by the client's in-flight semaphore.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    map: Mutex<Calls>,
    closed: AtomicBool,
}

/// Removes its entry when dropped: on reply, timeout, error or cancellation alike.
#[derive(Debug)]
pub(crate) struct PendingGuard {
    pending: Arc<Pending>,
    id: MessageId,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

/// Whether a reply proven to come from `principal` may answer a call made to `peer`.
///
/// An unauthenticated reply (`None`) got past the security pipeline only because policy
/// allows unauthenticated input, so it is accepted here too.
pub(crate) fn may_answer(peer: &Peer, principal: Option<&Principal>) -> bool {
    match principal {
        None => true,
        Some(p) => match peer {
            Peer::Guest(g) => p.guest_id() == Some(g.as_str()),
            Peer::ControlPlane => p.is_control_plane(),
            Peer::Guests => p.guest_id().is_some(),
        },
    }
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Calls> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a call (a `monitored` one is told of its heartbeats); `None` once the
    /// reply inbox has closed.
    pub(crate) fn register(
        self: &Arc<Self>,
        id: MessageId,
        peer: Peer,
        monitored: bool,
    ) -> Option<(PendingGuard, Waiting)> {
        let (tx, reply) = oneshot::channel();
        let beat = monitored.then(|| Arc::new(Notify::new()));
        let mut map = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let entry = Entry {
            peer,
            tx,
            beat: beat.clone(),
        };
        map.insert(id, entry);
        drop(map);
        Some((
            PendingGuard {
                pending: Arc::clone(self),
                id,
            },
            Waiting { reply, beat },
        ))
    }

    /// Records a heartbeat for the call `corr` if it is pending and `principal` may answer
    /// it (the same check as a reply's): a heartbeat from anyone else keeps nothing alive.
    pub(crate) fn heartbeat(&self, corr: MessageId, principal: Option<&Principal>) -> bool {
        let map = self.lock();
        match map.get(&corr) {
            Some(e) if may_answer(&e.peer, principal) => {
                if let Some(beat) = &e.beat {
                    beat.notify_one();
                }
                true
            }
            _ => false,
        }
    }

    /// Hands `body` to the call `corr` if it is pending and `principal` may answer it.
    /// A reply from the wrong principal leaves the call waiting for the right one.
    pub(crate) fn complete(
        &self,
        corr: MessageId,
        principal: Option<&Principal>,
        body: ReplyBody,
    ) -> bool {
        let mut map = self.lock();
        let allowed = map
            .get(&corr)
            .is_some_and(|e| may_answer(&e.peer, principal));
        if !allowed {
            return false;
        }
        match map.remove(&corr) {
            Some(entry) => entry.tx.send(body).is_ok(),
            None => false,
        }
    }

    /// The inbox closed: fail every pending call and refuse new ones.
    pub(crate) fn close(&self) {
        let mut map = self.lock();
        self.closed.store(true, Ordering::Release);
        map.clear();
    }

    /// Calls pending now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
