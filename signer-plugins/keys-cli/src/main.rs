//! `sealrpc-keys`: create the control-plane master secret, issue guest bundles, rotate and
//! revoke keys, show the public state, and inspect envelopes.
//!
//! A key directory holds `master.key` (64 hex digits, mode 0600) and `rotation.json` (the
//! rotation state); see docs/key-bundle.md. Nothing this tool prints contains a secret.
//!
//! Every command that changes the state holds the directory's lock (`.rotation.lock`)
//! from reading the state to renaming the new one into place, so concurrent runs never
//! lose each other's updates; one that cannot get the lock within `--lock-timeout-secs`
//! fails and changes nothing.
//!
//! Exit codes: 0 success (for `inspect`: decoded, and accepted when keys were given),
//! 1 error, 2 usage error, 3 `inspect` rejected the envelope.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use sealrpc_core::Principal;
use sealrpc_core::wire::Limits;
use sealrpc_signers::rotation_file::MASTER_FILE;
use sealrpc_signers::{
    ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationFile, RotationTable, inspect,
};
use serde_json::json;

mod commands;
mod deliver;
mod state;
use deliver::DeliverArgs;
use state::StateArgs;

#[derive(Parser)]
#[command(
    name = "sealrpc-keys",
    version,
    about = "Manage sealrpc control-plane and guest keys"
)]
struct Cli {
    /// How long a command that changes the state waits for the key directory's lock.
    #[arg(long, global = true, default_value_t = 10)]
    lock_timeout_secs: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a key directory: a new master secret (mode 0600) and a fresh rotation state.
    /// Refuses to overwrite an existing master secret.
    Init {
        /// The key directory (created with mode 0700 if absent).
        #[arg(long)]
        dir: PathBuf,
        /// A control-plane service whose signing key guests pin (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        /// Grace window for the previous epoch after a rotation, in seconds.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
    /// Record a control-plane service whose signing key guests pin.
    AddService {
        /// Service name (the principal is `control:<name>`).
        name: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Write the key bundle of a guest instance (mode 0600; refuses to overwrite).
    IssueGuest {
        /// The guest's instance id.
        instance_id: String,
        #[command(flatten)]
        state: StateArgs,
        /// The bundle file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Move one key family to its next epoch.
    Rotate {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        which: Which,
        /// Then deliver the rotated guests' new bundles over the bus (`--amqp URL`).
        #[arg(long)]
        deliver: bool,
        #[command(flatten)]
        bus: DeliverArgs,
    },
    /// Deliver guests' current bundles over the bus (after `rotate`, or to retry the guests
    /// a `rotate --deliver` could not reach); a guest already current is skipped.
    Deliver {
        #[command(flatten)]
        state: StateArgs,
        /// A guest's instance id (repeatable).
        #[arg(long = "guest", value_name = "INSTANCE_ID")]
        guests: Vec<String>,
        /// Every guest that is not revoked.
        #[arg(long, conflicts_with = "guests")]
        all_guests: bool,
        #[command(flatten)]
        bus: DeliverArgs,
    },
    /// Revoke a guest instance: every key of `guest:<id>` is refused.
    Revoke {
        /// The guest's instance id.
        instance_id: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Lift a revocation.
    Unrevoke {
        /// The guest's instance id.
        instance_id: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print key ids, epochs, public keys and revocations as JSON (never secrets).
    Show {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Copy a key directory's rotation state into an empty shared store (`--store`);
    /// refuses if the store already holds a state.
    Import {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Decode an envelope file (raw bytes or hex text); with keys, run the receive pipeline.
    Inspect {
        /// The envelope file.
        file: PathBuf,
        /// A control-plane key directory: receive as the service given by --as.
        #[arg(long, requires = "as_principal")]
        keys: Option<PathBuf>,
        /// The receiving control-plane principal, e.g. `control:conductor`.
        #[arg(long = "as", value_name = "PRINCIPAL")]
        as_principal: Option<String>,
        /// A guest bundle file: receive as that guest.
        #[arg(long, conflicts_with = "keys")]
        bundle: Option<PathBuf>,
        /// The receiver's clock, unix milliseconds (default: now).
        #[arg(long)]
        now_ms: Option<u64>,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Which {
    /// A guest's k2, k3 and signing key.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub(crate) guest: Option<String>,
    /// The control plane's k1 and every service's signing key.
    #[arg(long)]
    pub(crate) control: bool,
    /// The guests' broadcast key kb (do it after revoking a guest).
    #[arg(long)]
    pub(crate) broadcast: bool,
    /// Every guest that is not revoked (bulk rotation).
    #[arg(long)]
    pub(crate) all_guests: bool,
}

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd, Duration::from_secs(cli.lock_timeout_secs)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealrpc-keys: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn load_state(dir: &Path) -> Res<RotationTable> {
    RotationFile::new(dir).load().map_err(|e| e.to_string())
}

fn load_master(dir: &Path) -> Res<Arc<MasterSecret>> {
    MasterSecret::load(&dir.join(MASTER_FILE))
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn print_json(v: &serde_json::Value) -> Res<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    // `sealrpc-keys show | head` closes the pipe early: that is the reader's choice, not an
    // error (println! would panic on it).
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn run(cmd: Cmd, lock_timeout: Duration) -> Res<ExitCode> {
    match cmd {
        Cmd::Init {
            dir,
            services,
            grace_secs,
        } => init(&dir, &services, grace_secs, lock_timeout)?,
        Cmd::AddService { name, state } => {
            state.open(lock_timeout)?.update(|t| t.add_service(&name))?;
            println!("service control:{name} recorded");
        }
        Cmd::IssueGuest {
            instance_id,
            state,
            out,
        } => issue_guest(&state, &instance_id, &out, lock_timeout)?,
        Cmd::Rotate {
            state,
            which,
            deliver,
            bus,
        } => commands::rotate(&state, &which, deliver, &bus, lock_timeout)?,
        Cmd::Deliver {
            state,
            guests,
            all_guests,
            bus,
        } => commands::deliver(&state, guests, all_guests, &bus, lock_timeout)?,
        Cmd::Show { state } => commands::show(&state, lock_timeout)?,
        Cmd::Revoke { instance_id, state } => {
            let fresh = state
                .open(lock_timeout)?
                .update(|t| t.revoke(&instance_id))?;
            println!(
                "guest:{instance_id} {}; it still holds the broadcast key: run `rotate --broadcast` and redistribute bundles",
                if fresh {
                    "revoked"
                } else {
                    "was already revoked"
                }
            );
        }
        Cmd::Unrevoke { instance_id, state } => {
            let was = state
                .open(lock_timeout)?
                .update(|t| Ok(t.unrevoke(&instance_id)))?;
            println!(
                "guest:{instance_id} {}",
                if was {
                    "no longer revoked"
                } else {
                    "was not revoked"
                }
            );
        }
        Cmd::Import { state } => {
            if state.store.is_none() {
                return Err("import needs --store URL".into());
            }
            let table = load_state(state.dir()?)?;
            state.open(lock_timeout)?.create_from(&table)?;
            println!(
                "imported the rotation state of {} into the store ({} guests, {} revoked)",
                state.dir()?.display(),
                table.guests().len(),
                table.revoked().len()
            );
        }
        Cmd::Inspect {
            file,
            keys,
            as_principal,
            bundle,
            now_ms,
        } => {
            return inspect_file(
                &file,
                keys.as_deref(),
                as_principal.as_deref(),
                bundle.as_deref(),
                now_ms,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn init(dir: &Path, services: &[String], grace_secs: u64, lock_timeout: Duration) -> Res<()> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let table = RotationTable::new();
    table.set_grace(Duration::from_secs(grace_secs));
    for s in services {
        table.add_service(s).map_err(|e| e.to_string())?;
    }
    let master = MasterSecret::generate().map_err(|e| e.to_string())?;
    // Under the lock: the master first (never overwritten), then the state.
    RotationFile::new(dir)
        .lock_timeout(lock_timeout)
        .create(&table, || master.save_new(&dir.join(MASTER_FILE)))
        .map_err(|e| e.to_string())?;
    println!("initialized {} (master secret mode 0600)", dir.display());
    Ok(())
}

fn issue_guest(
    state: &StateArgs,
    instance_id: &str,
    out: &Path,
    lock_timeout: Duration,
) -> Res<()> {
    const NO_SERVICE: &str =
        "no control-plane service recorded: run `sealrpc-keys add-service NAME --dir DIR` first";
    let dir = state.dir()?;
    let target = state.open(lock_timeout)?;
    if target.load()?.services().is_empty() {
        return Err(NO_SERVICE.into());
    }
    let master = load_master(dir)?;
    // Registering the guest and writing its bundle happen under the lock (or in the
    // store's transaction): the bundle's epochs are those of the state that is written.
    let bundle = target.update(|t| {
        let Some(service) = t.services().into_iter().next() else {
            return Err(sealrpc_signers::Error::Invalid {
                what: "key directory (no control-plane service recorded)",
                value: dir.display().to_string(),
            });
        };
        let keys = ControlPlaneKeys::new(master, Arc::clone(t), &service)?;
        let bundle = keys.issue_guest_bundle(instance_id)?;
        bundle.save_new(out)?;
        Ok(bundle)
    })?;
    println!(
        "wrote the bundle of {} (epoch {}) to {} (mode 0600)",
        bundle.principal(),
        bundle.epoch(),
        out.display()
    );
    Ok(())
}

fn read_envelope(file: &Path) -> Res<Vec<u8>> {
    let raw = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let trimmed = raw.trim_ascii();
    let looks_hex = !trimmed.is_empty()
        && trimmed.len() % 2 == 0
        && trimmed.iter().all(|c| c.is_ascii_hexdigit());
    Ok(if looks_hex {
        hex::decode(trimmed).map_err(|e| e.to_string())?
    } else {
        raw
    })
}

fn inspect_file(
    file: &Path,
    keys: Option<&Path>,
    as_principal: Option<&str>,
    bundle: Option<&Path>,
    now_ms: Option<u64>,
) -> Res<ExitCode> {
    let bytes = read_envelope(file)?;
    let envelope = inspect::describe_envelope(&bytes, &Limits::default())
        .unwrap_or_else(|e| json!({ "$error": e.to_string() }));
    let config = match (keys, bundle) {
        (Some(dir), _) => {
            let who = as_principal.unwrap_or_default();
            let service = Principal::parse(who)
                .filter(|p| p.is_control_plane())
                .and_then(|p| p.as_str().strip_prefix("control:").map(str::to_owned))
                .ok_or_else(|| format!("--as must be control:<service>, not {who:?}"))?;
            let table = Arc::new(load_state(dir)?);
            let cp = ControlPlaneKeys::new(load_master(dir)?, table, &service)
                .map_err(|e| e.to_string())?;
            Some(cp.security())
        }
        (None, Some(path)) => {
            let b = GuestBundle::load(path).map_err(|e| e.to_string())?;
            Some(
                GuestKeys::from_bundle(&b)
                    .map_err(|e| e.to_string())?
                    .security(),
            )
        }
        (None, None) => None,
    };
    let Some(config) = config else {
        print_json(&json!({ "envelope": envelope }))?;
        return Ok(ExitCode::SUCCESS);
    };
    // A one-shot verifier: an envelope stamped before this process started is no replay here.
    let security = config
        .restart_rule(sealrpc_core::security::RestartRule::Off)
        .build();
    let now = now_ms.map_or_else(SystemTime::now, |ms| UNIX_EPOCH + Duration::from_millis(ms));
    let result = security.admit_at(sealrpc_core::bytes::Bytes::from(bytes), &|_| true, now);
    let accepted = result.is_ok();
    print_json(&json!({
        "envelope": envelope,
        "receiver": security.principal().to_string(),
        "result": inspect::verdict_to_json(&result),
    }))?;
    Ok(if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
