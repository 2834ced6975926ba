//! Key issuance, as an operator does it with `sealrpc-keys`: a master secret and the
//! rotation state in a private directory, one bundle file per guest, each loaded back by
//! its guest (which never sees anything else).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealrpc_signers::{
    ControlPlaneKeys, GuestBundle, GuestKeys, MasterSecret, RotationFile, RotationTable,
};

use super::BoxError;

/// The control-plane services of the demo, recorded before any bundle is issued so that
/// every bundle pins their public signing keys.
pub const SERVICES: [&str; 3] = ["api", "taskmanager", "conductor"];

/// The operator's key directory and the control plane's view of the hierarchy.
#[derive(Debug)]
pub struct Operator {
    dir: PathBuf,
    table: Arc<RotationTable>,
    control: ControlPlaneKeys,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    sealrpc_core::rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh random instance id (8 hex digits: short enough to read in the output).
pub fn new_instance_id() -> String {
    random_hex(4)
}

/// A fresh random tag (for per-run names).
pub fn new_tag() -> String {
    random_hex(3)
}

impl Operator {
    /// `sealrpc-keys init`: a new master secret and rotation state in a new private
    /// temporary directory, and the control-plane services recorded.
    pub fn init() -> Result<Self, BoxError> {
        let dir = std::env::temp_dir().join(format!("sealrpc-trove-{}", random_hex(6)));
        create_private_dir(&dir)?;
        let master = MasterSecret::generate()?;
        master.save_new(&dir.join("master.key"))?;
        let master = Arc::new(MasterSecret::load(&dir.join("master.key"))?);
        let table = Arc::new(RotationTable::new());
        let control = ControlPlaneKeys::new(master, Arc::clone(&table), SERVICES[2])?;
        for s in SERVICES {
            control.for_service(s)?;
        }
        RotationFile::new(&dir).create(&table, || Ok(()))?;
        Ok(Self {
            dir,
            table,
            control,
        })
    }

    /// The keys of control-plane service `name` (sharing the master and the table).
    pub fn service(&self, name: &str) -> Result<ControlPlaneKeys, BoxError> {
        Ok(self.control.for_service(name)?)
    }

    /// The rotation table (rotate, revoke, grace).
    pub fn table(&self) -> &Arc<RotationTable> {
        &self.table
    }

    /// `sealrpc-keys issue-guest --out FILE`: writes guest `instance_id`'s bundle (mode 0600)
    /// and returns its path.
    pub fn issue_guest(&self, instance_id: &str) -> Result<PathBuf, BoxError> {
        let bundle = self.control.issue_guest_bundle(instance_id)?;
        let path = self.bundle_path(instance_id);
        bundle.save_new(&path)?;
        // The same registration in the key directory, under its lock.
        RotationTable::update(&self.dir, |t| t.register_guest(instance_id).map(|_| ()))?;
        Ok(path)
    }

    /// [`Operator::issue_guest`] for many guests: every bundle file, then one locked update
    /// of the key directory's rotation state for all of them (one update per guest
    /// rewrites the whole state each time: quadratic in the fleet).
    pub fn issue_guests(&self, instance_ids: &[String]) -> Result<Vec<PathBuf>, BoxError> {
        let mut paths = Vec::with_capacity(instance_ids.len());
        for id in instance_ids {
            let bundle = self.control.issue_guest_bundle(id)?;
            let path = self.bundle_path(id);
            bundle.save_new(&path)?;
            paths.push(path);
        }
        RotationTable::update(&self.dir, |t| {
            for id in instance_ids {
                t.register_guest(id)?;
            }
            Ok(())
        })?;
        Ok(paths)
    }

    /// Where guest `instance_id`'s bundle file is.
    pub fn bundle_path(&self, instance_id: &str) -> PathBuf {
        self.dir.join(format!("guest-{instance_id}.json"))
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a guest does at boot: loads its bundle file and builds its key store from it.
pub fn load_guest_keys(path: &Path) -> Result<(GuestBundle, GuestKeys), BoxError> {
    let bundle = GuestBundle::load(path)?;
    let keys = GuestKeys::from_bundle(&bundle)?;
    Ok((bundle, keys))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir(dir)
    }
}
