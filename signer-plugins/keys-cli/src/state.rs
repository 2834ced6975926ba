//! Where a command reads and writes the rotation state: the key directory's
//! `rotation.json` (under its lock), or a shared store given by `--store`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use sealrpc_signers::{Error, RotationFile, RotationTable};

/// The state a command works on.
#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// The key directory: its master secret, and its rotation.json unless --store is given.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A shared rotation store, `postgres://user@host:port/db` (built with the `postgres`
    /// feature). The master secret still comes from --dir.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The store's table (also its NOTIFY channel).
    #[arg(long, default_value = "sealrpc_rotation")]
    pub store_table: String,
}

/// An opened state target.
pub enum State {
    /// `D/rotation.json`.
    File(RotationFile),
    /// A PostgreSQL store.
    #[cfg(feature = "postgres")]
    Pg(sealrpc_signers::pg::PgRotationStore),
}

type Res<T> = Result<T, String>;

impl StateArgs {
    /// The key directory, which this command needs (for the master secret).
    pub fn dir(&self) -> Res<&Path> {
        self.dir
            .as_deref()
            .ok_or_else(|| "this command needs --dir (the key directory with master.key)".into())
    }

    /// The store if `--store` was given, else the directory's file.
    pub fn open(&self, lock_timeout: Duration) -> Res<State> {
        match &self.store {
            Some(url) => open_store(url, &self.store_table),
            None => Ok(State::File(
                RotationFile::new(self.dir()?).lock_timeout(lock_timeout),
            )),
        }
    }
}

#[cfg(feature = "postgres")]
pub fn open_store(url: &str, table: &str) -> Res<State> {
    sealrpc_signers::pg::PgRotationStore::new(url, table)
        .map(State::Pg)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "postgres"))]
pub fn open_store(_url: &str, _table: &str) -> Res<State> {
    Err("--store needs sealrpc-keys built with the `postgres` feature (on by default: cargo build -p sealrpc-keys)".into())
}

impl State {
    /// The current state.
    pub fn load(&self) -> Res<RotationTable> {
        match self {
            State::File(f) => f.load(),
            #[cfg(feature = "postgres")]
            State::Pg(s) => s.load(),
        }
        .map_err(|e| e.to_string())
    }

    /// A locked (file) or transactional (store) read-modify-write.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&Arc<RotationTable>) -> Result<T, Error>,
    ) -> Res<T> {
        match self {
            State::File(f) => f.update(change),
            #[cfg(feature = "postgres")]
            State::Pg(s) => s.update(change),
        }
        .map_err(|e| e.to_string())
    }

    /// Stores `table` as the store's first state (`import`); refuses if it has one.
    pub fn create_from(&self, table: &RotationTable) -> Res<()> {
        match self {
            State::File(_) => {
                let _ = table;
                Err("import needs --store".into())
            }
            #[cfg(feature = "postgres")]
            State::Pg(s) => s.create(table).map_err(|e| e.to_string()),
        }
    }
}
