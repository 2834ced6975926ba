//! Applying [`GuestCredentials`] to a broker with `rabbitmqctl` (run where the operator
//! can administer RabbitMQ): the user, its vhost and topic permissions, its connection
//! and channel limits, and the guest topic's operator policy. Passwords go through stdin,
//! never on a command line. The guest's queues are declared over AMQP by the operator's
//! transport ([`AmqpTransport::provision_guest`](crate::AmqpTransport::provision_guest)):
//! `rabbitmqctl` cannot declare queues.
//!
//! One `rabbitmqctl` per command takes most of a second: for many guests use the bulk
//! path, [`crate::fleet::FleetProvisioner`] (the management API, one import per batch).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::credentials::GuestCredentials;

/// A failed `rabbitmqctl` invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rabbitmqctl {args} failed (exit {code:?}): {output}")]
pub struct AdminError {
    /// The arguments (never a password).
    pub args: String,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// What it printed.
    pub output: String,
}

/// Runs `rabbitmqctl` (optionally against a given node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rabbitmqctl {
    /// The program (default `rabbitmqctl`).
    pub program: String,
    /// `-n <node>` when set.
    pub node: Option<String>,
}

impl Default for Rabbitmqctl {
    fn default() -> Self {
        Self {
            program: "rabbitmqctl".to_owned(),
            node: None,
        }
    }
}

/// Exit code of `rabbitmqctl add_user` for an existing user.
const USER_EXISTS: i32 = 70;
/// Exit code of `rabbitmqctl delete_user` for a missing user.
const NO_SUCH_USER: i32 = 67;

impl Rabbitmqctl {
    /// The commands [`Rabbitmqctl::apply`] runs for `creds` (each after `rabbitmqctl`; the
    /// password is read from stdin by `add_user` / `change_password`).
    pub fn commands(creds: &GuestCredentials) -> Vec<Vec<String>> {
        let p = &creds.permissions;
        let mut cmds = vec![
            vec!["add_user".into(), creds.user.clone()],
            vec![
                "set_permissions".into(),
                "-p".into(),
                creds.vhost.clone(),
                creds.user.clone(),
                p.configure.clone(),
                p.write.clone(),
                p.read.clone(),
            ],
        ];
        let l = &creds.limits;
        cmds.push(vec![
            "set_user_limits".into(),
            creds.user.clone(),
            format!(
                "{{\"max-connections\":{},\"max-channels\":{}}}",
                l.max_connections, l.max_channels
            ),
        ]);
        let op = &creds.operator_policy;
        cmds.push(vec![
            "set_operator_policy".into(),
            "-p".into(),
            creds.vhost.clone(),
            "--priority".into(),
            op.priority.to_string(),
            "--apply-to".into(),
            "queues".into(),
            op.name.clone(),
            op.pattern.clone(),
            op.definition.clone(),
        ]);
        for t in &creds.topic_permissions {
            cmds.push(vec![
                "set_topic_permissions".into(),
                "-p".into(),
                creds.vhost.clone(),
                creds.user.clone(),
                t.exchange.clone(),
                t.write.clone(),
                t.read.clone(),
            ]);
        }
        cmds
    }

    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<(), AdminError> {
        let mut cmd = Command::new(&self.program);
        if let Some(node) = &self.node {
            cmd.arg("-n").arg(node);
        }
        cmd.arg("-q")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let err = |code, output: String| AdminError {
            args: args.join(" "),
            code,
            output,
        };
        let mut child = cmd.spawn().map_err(|e| err(None, e.to_string()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .and_then(|_| pipe.write_all(b"\n"))
                .map_err(|e| err(None, e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| err(None, e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Err(err(out.status.code(), text.trim().to_owned()))
        }
    }

    /// Creates (or re-keys) the user and sets its vhost and topic permissions.
    /// Blocking: call it from `spawn_blocking` in async code (see [`Rabbitmqctl::apply_async`]).
    pub fn apply(&self, creds: &GuestCredentials) -> Result<(), AdminError> {
        let cmds = Self::commands(creds);
        for (i, args) in cmds.iter().enumerate() {
            if i == 0 {
                match self.run(args, Some(&creds.password)) {
                    Err(e) if e.code == Some(USER_EXISTS) => self.run(
                        &["change_password".into(), creds.user.clone()],
                        Some(&creds.password),
                    )?,
                    r => r?,
                }
            } else {
                self.run(args, None)?;
            }
        }
        Ok(())
    }

    /// Deletes `user` (and with it its permissions); a missing user is not an error.
    pub fn delete_user(&self, user: &str) -> Result<(), AdminError> {
        match self.run(&["delete_user".into(), user.to_owned()], None) {
            Err(e) if e.code == Some(NO_SUCH_USER) => Ok(()),
            r => r,
        }
    }

    /// Removes the operator policy `name` (shared by a guest topic's guests: clear it when
    /// the last one is gone); a missing policy is not an error.
    pub fn clear_operator_policy(&self, vhost: &str, name: &str) -> Result<(), AdminError> {
        let args = [
            "clear_operator_policy".into(),
            "-p".into(),
            vhost.to_owned(),
            name.to_owned(),
        ];
        match self.run(&args, None) {
            Err(e) if e.output.contains("does not exist") || e.output.contains("not found") => {
                Ok(())
            }
            r => r,
        }
    }

    /// [`Rabbitmqctl::clear_operator_policy`] on tokio's blocking pool.
    pub async fn clear_operator_policy_async(
        &self,
        vhost: &str,
        name: &str,
    ) -> Result<(), AdminError> {
        let (me, v, n) = (self.clone(), vhost.to_owned(), name.to_owned());
        tokio::task::spawn_blocking(move || me.clear_operator_policy(&v, &n))
            .await
            .map_err(|e| AdminError {
                args: "clear_operator_policy".into(),
                code: None,
                output: e.to_string(),
            })?
    }

    /// [`Rabbitmqctl::apply`] on tokio's blocking pool.
    pub async fn apply_async(&self, creds: &GuestCredentials) -> Result<(), AdminError> {
        let (me, c) = (self.clone(), creds.clone());
        tokio::task::spawn_blocking(move || me.apply(&c))
            .await
            .map_err(|e| AdminError {
                args: "apply".into(),
                code: None,
                output: e.to_string(),
            })?
    }

    /// [`Rabbitmqctl::delete_user`] on tokio's blocking pool.
    pub async fn delete_user_async(&self, user: &str) -> Result<(), AdminError> {
        let (me, u) = (self.clone(), user.to_owned());
        tokio::task::spawn_blocking(move || me.delete_user(&u))
            .await
            .map_err(|e| AdminError {
                args: "delete_user".into(),
                code: None,
                output: e.to_string(),
            })?
    }
}
