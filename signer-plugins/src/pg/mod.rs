//! The shared rotation store on PostgreSQL (cargo feature `postgres`): the rotation state
//! every replica of every control-plane service reads, with transactional writers and a
//! `NOTIFY` on every change.
//!
//! One row holds the state, as the same JSON as `rotation.json`, and a revision counter:
//!
//! ```sql
//! CREATE TABLE <table> (id smallint PRIMARY KEY CHECK (id = 1),
//!                       version bigint NOT NULL CHECK (version > 0),
//!                       state text NOT NULL, updated_at timestamptz NOT NULL)
//! ```
//!
//! - **Writers** ([`PgRotationStore::update`]) run one transaction: `SELECT ... FOR UPDATE`
//!   (concurrent writers queue on the row lock), apply the change, `UPDATE` with
//!   `version = version + 1`, `pg_notify`, `COMMIT`. No update is lost, versions only grow.
//! - **Readers** ([`RotationSource::fetch`]) read the row; a version lower than the one
//!   applied is refused (a restored old backup would silently undo revocations), and so is
//!   any unreadable state: the watcher keeps what it has, counts and logs it.
//! - **Propagation**: [`PgRotationStore::listen`] `LISTEN`s on the table's channel and
//!   wakes a [`crate::RotationWatcher`], which re-reads the row (the notification's payload
//!   is never trusted). The watcher's 1 s poll is the fallback bound.
//!
//! Why PostgreSQL rather than Redis: docs/key-bundle.md, "Shared rotation store".

mod conn;
mod listen;
mod txn;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Config;

use crate::error::Error;
use crate::rotation::RotationTable;
use crate::source::{Fetched, RotationSource, StateVersion};
use conn::{Runner, Session, db};

pub use listen::NotifyListener;

/// The default table (and notification channel) name.
pub const DEFAULT_TABLE: &str = "sealrpc_rotation";

/// Default bound on one store operation (connect included).
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Tag of the [`StateVersion`]s this store hands out (then the revision, 8 bytes BE).
const VERSION_TAG: &[u8] = b"pg:";

/// A rotation store in one PostgreSQL table. Cheap to share behind an `Arc`; every method
/// is synchronous and bounded in time (see the module docs).
pub struct PgRotationStore {
    session: Arc<Session>,
    table: String,
    describe: String,
    op_timeout: Duration,
    runner: Runner,
}

impl fmt::Debug for PgRotationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgRotationStore")
            .field("store", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be a table name here: `[a-z_][a-z0-9_]{0,62}` (always quoted too).
fn valid_table(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl PgRotationStore {
    /// A store at `url` (`postgres://user@host:port/db`, libpq key-value form also
    /// accepted) in table `table`. Connects lazily: nothing is contacted before the first
    /// operation, and a broken session is reopened by the next one.
    pub fn new(url: &str, table: &str) -> Result<Self, Error> {
        if !valid_table(table) {
            return Err(Error::invalid("store table name ([a-z_][a-z0-9_]*)", table));
        }
        let mut config: Config = url.parse().map_err(|e| Error::Store {
            store: "postgres".into(),
            reason: format!("bad store address: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_OP_TIMEOUT);
        }
        let describe = describe(&config, table);
        Ok(Self {
            session: Arc::new(Session::new(config)),
            table: table.to_owned(),
            describe,
            op_timeout: DEFAULT_OP_TIMEOUT,
            runner: Runner::new()?,
        })
    }

    /// Bounds every operation (connect, query, transaction) to `timeout`.
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn quoted(&self) -> String {
        format!("\"{}\"", self.table)
    }

    /// Creates the table and stores `table`'s state at version 1; refuses
    /// ([`Error::Store`], "already holds a state") if the store already has one, so an
    /// import never overwrites live revocations.
    pub fn create(&self, table: &RotationTable) -> Result<(), Error> {
        let (session, name, store) = self.parts();
        let state = table.to_json();
        self.runner
            .run(self.op_timeout, &store.clone(), async move {
                let mut guard = session.lock(&store).await?;
                let client = guard.client(&store)?;
                client
                    .batch_execute(&format!(
                        "CREATE TABLE IF NOT EXISTS {name} (\
                     id smallint PRIMARY KEY CHECK (id = 1), \
                     version bigint NOT NULL CHECK (version > 0), \
                     state text NOT NULL, \
                     updated_at timestamptz NOT NULL DEFAULT now())"
                    ))
                    .await
                    .map_err(|e| db(&store, &e))?;
                let inserted = client
                    .execute(
                        &format!(
                            "INSERT INTO {name} (id, version, state) VALUES (1, 1, $1) \
                         ON CONFLICT (id) DO NOTHING"
                        ),
                        &[&state],
                    )
                    .await
                    .map_err(|e| db(&store, &e))?;
                if inserted == 0 {
                    return Err(Error::Store {
                        store,
                        reason: "already holds a state; refusing to overwrite it".into(),
                    });
                }
                Ok(())
            })
    }

    /// Drops the table (tests, decommissioning). Irreversible.
    pub fn drop_table(&self) -> Result<(), Error> {
        let (session, name, store) = self.parts();
        self.runner
            .run(self.op_timeout, &store.clone(), async move {
                let mut guard = session.lock(&store).await?;
                guard
                    .client(&store)?
                    .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                    .await
                    .map_err(|e| db(&store, &e))
            })
    }

    /// The current state and its revision.
    pub fn load_versioned(&self) -> Result<(u64, RotationTable), Error> {
        match self.read_row(None)? {
            (version, Some(text)) => Ok((version, self.parse(&text)?)),
            (_, None) => Err(self.err("the state column is empty")),
        }
    }

    /// The row's revision, and its state unless the revision is `unless` (a poll that finds
    /// nothing new transfers a few bytes, not the whole state).
    fn read_row(&self, unless: Option<u64>) -> Result<(u64, Option<String>), Error> {
        let (session, name, store) = self.parts();
        let unless = unless.and_then(|v| i64::try_from(v).ok());
        self.runner
            .run(self.op_timeout, &store.clone(), async move {
                let mut guard = session.lock(&store).await?;
                let row = guard
                    .client(&store)?
                    .query_opt(
                        &format!(
                            "SELECT version, CASE WHEN version = $1 THEN NULL ELSE state END \
                             FROM {name} WHERE id = 1"
                        ),
                        &[&unless],
                    )
                    .await
                    .map_err(|e| db(&store, &e))?;
                let row = row.ok_or_else(|| no_state(&store))?;
                let bad = |e: tokio_postgres::Error| db(&store, &e);
                let version: i64 = row.try_get(0).map_err(bad)?;
                let text: Option<String> = row.try_get(1).map_err(bad)?;
                Ok((non_negative(&store, version)?, text))
            })
    }

    /// The current state.
    pub fn load(&self) -> Result<RotationTable, Error> {
        self.load_versioned().map(|(_, t)| t)
    }

    fn parse(&self, text: &str) -> Result<RotationTable, Error> {
        RotationTable::from_json(text).map_err(|why| self.err(format!("rotation state: {why}")))
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Store {
            store: self.describe.clone(),
            reason: reason.into(),
        }
    }

    fn parts(&self) -> (Arc<Session>, String, String) {
        (
            Arc::clone(&self.session),
            self.quoted(),
            self.describe.clone(),
        )
    }

    /// Changes the state in one transaction, like [`crate::RotationFile::update`]: the
    /// row is locked (`FOR UPDATE`), `change` runs on the state read under that lock, and
    /// the result is written with the next revision and announced (`NOTIFY`) on commit,
    /// only if it differs. If `change` fails, or the store fails, nothing is written.
    /// Returns `change`'s value; see [`Self::update_versioned`] for the revision.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&Arc<RotationTable>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.update_versioned(change).map(|(out, _)| out)
    }

    /// [`Self::update`], also returning the revision now stored.
    pub fn update_versioned<T>(
        &self,
        change: impl FnOnce(&Arc<RotationTable>) -> Result<T, Error>,
    ) -> Result<(T, u64), Error> {
        let handle = self.runner.handle().ok_or_else(|| self.err("stopped"))?;
        let tx = txn::begin(
            handle,
            Arc::clone(&self.session),
            self.quoted(),
            self.table.clone(),
            self.describe.clone(),
            self.op_timeout,
        )?;
        let (version, text) = tx.state()?;
        let table = Arc::new(self.parse(&text)?);
        let before = table.to_json();
        let out = change(&table)?;
        let after = table.to_json();
        let written = tx.finish((after != before).then_some(after))?;
        Ok((out, written.unwrap_or(version)))
    }

    /// Starts a `LISTEN` on this table's channel that wakes `waker` at every committed
    /// change (and once after each reconnect, in case one was missed). Stops when the
    /// returned listener is dropped. The payload is ignored: the watcher re-reads the row.
    pub fn listen(&self, waker: crate::RotationWaker) -> Result<NotifyListener, Error> {
        let handle = self.runner.handle().ok_or_else(|| self.err("stopped"))?;
        Ok(NotifyListener::start(
            handle,
            self.session.config().clone(),
            self.table.clone(),
            self.describe.clone(),
            waker,
        ))
    }
}

fn no_state(store: &str) -> Error {
    Error::Store {
        store: store.to_owned(),
        reason: "holds no state (run `sealrpc-keys import --dir D --store URL`)".into(),
    }
}

fn non_negative(store: &str, version: i64) -> Result<u64, Error> {
    u64::try_from(version).map_err(|_| Error::Store {
        store: store.to_owned(),
        reason: "negative version".into(),
    })
}

/// The locked row of a writer's transaction: revision and state.
fn row_parts(store: &str, row: Option<tokio_postgres::Row>) -> Result<(u64, String), Error> {
    let row = row.ok_or_else(|| no_state(store))?;
    let bad = |e: tokio_postgres::Error| db(store, &e);
    let version: i64 = row.try_get(0).map_err(bad)?;
    let text: String = row.try_get(1).map_err(bad)?;
    Ok((non_negative(store, version)?, text))
}

fn version_of(v: &StateVersion) -> Option<u64> {
    let rest = v.as_bytes().strip_prefix(VERSION_TAG)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

fn state_version(v: u64) -> StateVersion {
    let mut b = VERSION_TAG.to_vec();
    b.extend_from_slice(&v.to_be_bytes());
    StateVersion::from_bytes(b)
}

/// `postgres://user@host:port/db table` (no password: it must never reach a log).
fn describe(config: &Config, table: &str) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{} table {table}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl RotationSource for PgRotationStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn fetch(&self, applied: Option<&StateVersion>) -> Result<Fetched, Error> {
        let seen = applied.and_then(version_of);
        let (version, text) = self.read_row(seen)?;
        if let Some(seen) = seen {
            if version == seen {
                return Ok(Fetched::Unchanged);
            }
            if version < seen {
                return Err(self.err(format!(
                    "version went backwards (store at {version}, applied {seen}): refusing a \
                     state that could undo revocations; restart the service to accept it"
                )));
            }
        }
        let text = text.ok_or_else(|| self.err("the state column is empty"))?;
        Ok(Fetched::Changed(state_version(version), self.parse(&text)?))
    }
}
