//! The attack rows added after the red-team review (issue 11): each is a class of attack
//! that once got through, run live by guest A against the cluster.

use sealrpc_core::security::{ClassPolicy, Policy, RejectReason};
use sealrpc_core::wire::Kind;

use super::BoxError;
use super::api::method;
use super::attack_kit::{Attack, status};
use super::forge::{Forge, ForgeSeal};

/// The control plane migrating to signing: guests already enforced, the control-plane
/// class still Permissive (or Off) — the step per-class modes exist for.
fn migrating(control: ClassPolicy) -> Policy {
    Policy {
        control_plane: control,
        ..Policy::default()
    }
}

/// Runs the review's rows. Leaves every policy as it found it.
pub(crate) async fn run(t: &mut Attack<'_>) -> Result<(), BoxError> {
    let a = &t.cluster.guests[0];
    let pa = a.principal.clone();
    let cond_dst = t.conductor().dst();
    let b_dst = t.b_queue().dst();
    let conductor = &t.cluster.conductor.security;
    let saved = conductor.policy();

    // An unproven `src` must not pick the looser class: unsigned, unsealed, "from" the
    // task manager, while the control-plane class is Permissive.
    let claim = Forge {
        sign: false,
        seal: false,
        ..Forge::cast(
            "control:taskmanager",
            &cond_dst,
            method::UPDATE_STATUS,
            &status(&t.b.id, "SHUTDOWN"),
        )?
    };
    conductor.set_policy(migrating(ClassPolicy::permissive()));
    let bytes = t.forger.build(&claim)?;
    let row = t
        .raw_row(
            "unsigned, claims src=control (control Permissive)",
            true,
            bytes,
            RejectReason::Unauthenticated,
            "unproven src: the strictest class applies",
        )
        .await;
    conductor.set_policy(saved);
    row?;

    // A present signature of a known algorithm is verified even when the class its claim
    // names is Off.
    let garbage = Forge {
        garbage_signature_by: Some("sig/control:taskmanager/1".into()),
        ..claim
    };
    conductor.set_policy(migrating(ClassPolicy::off()));
    let bytes = t.forger.build(&garbage)?;
    let row = t
        .raw_row(
            "garbage signature by sig/control:tm (control Off)",
            true,
            bytes,
            RejectReason::BadSignature,
            "a known signature is always verified",
        )
        .await;
    conductor.set_policy(saved);
    row?;

    // kb is held by every guest: only a fanout may be sealed under it.
    let kb_cast = Forge {
        sign: false,
        seal_key: ForgeSeal::Broadcast,
        ..Forge::cast(
            "control:taskmanager",
            &b_dst,
            method::CREATE_DATABASE,
            &super::api::CreateDatabase {
                instance_id: t.b.id.clone(),
                name: "backdoor".into(),
            },
        )?
    };
    let bytes = t.forger.build(&kb_cast)?;
    t.raw_row(
        "seal a cast to B under kb (the broadcast key)",
        false,
        bytes,
        RejectReason::WrongDirection,
        "kb seals fanout only",
    )
    .await?;

    // A reply must name the call it answers.
    let orphan = Forge {
        kind: Kind::Reply,
        ..Forge::cast(
            &pa,
            &cond_dst,
            method::UPDATE_STATUS,
            &status(&a.id, "ACTIVE"),
        )?
    };
    let bytes = t.forger.build(&orphan)?;
    t.raw_row(
        "send a reply without corr",
        true,
        bytes,
        RejectReason::Malformed,
        "corr is required on replies",
    )
    .await?;

    super::attack_review_hops::secret_in_child_context(t).await?;
    super::attack_review_broker::dead_letter_route_to_b(t).await?;
    super::attack_review_broker::park_unbounded(t).await?;
    // Last: A's quota stays full for the rest of the window.
    super::attack_review_hops::fill_the_replay_guard(t).await?;
    Ok(())
}
