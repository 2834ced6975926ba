//! Typed RPC descriptors: a method declared once, with its name, namespace, version,
//! argument type and reply type, so that the client, the handler and `authorize` cannot
//! disagree on any of them.
//!
//! Declare descriptors with [`rpc!`](crate::rpc) (or implement [`Rpc`] by hand), then pass
//! the descriptor where a method name would go:
//!
//! ```
//! use sealrpc_core::{Client, Context, Error, ServerBuilder, Target, rpc};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Resize { instance_id: String, gb: u32 }
//!
//! rpc! {
//!     /// Task manager -> guest: resize the volume; the reply is the new size.
//!     struct ResizeVolume = "resize_volume"(Resize) -> u32, namespace = "db", version = 1.2;
//! }
//!
//! fn serve(b: ServerBuilder) -> ServerBuilder {
//!     // Argument and reply types come from the descriptor: no annotations.
//!     b.handler(ResizeVolume, |_ctx, r| async move { Ok(r.gb) })
//!         .authorize(ResizeVolume, |caller, r| caller.is_guest(&r.instance_id))
//! }
//!
//! async fn resize(client: &Client, target: &Target) -> Result<u32, Error> {
//!     let args = Resize { instance_id: "7f3a".into(), gb: 20 };
//!     client.call(&Context::new(), target, ResizeVolume, &args).await
//! }
//! ```
//!
//! A mismatch is a compile error: the wrong argument type...
//!
//! ```compile_fail,E0308
//! # use sealrpc_core::{Client, Context, Error, Target, rpc};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { gb: u32 }
//! # rpc!(struct ResizeVolume = "resize_volume"(Resize) -> u32);
//! async fn resize(client: &Client, target: &Target) -> Result<u32, Error> {
//!     client.call(&Context::new(), target, ResizeVolume, &20u32).await
//! }
//! ```
//!
//! ...the wrong reply type (the handler would otherwise run before the client fails to
//! decode its result)...
//!
//! ```compile_fail,E0308
//! # use sealrpc_core::{Client, Context, Error, Target, rpc};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { gb: u32 }
//! # rpc!(struct ResizeVolume = "resize_volume"(Resize) -> u32);
//! async fn resize(client: &Client, target: &Target) -> Result<String, Error> {
//!     client.call(&Context::new(), target, ResizeVolume, &Resize { gb: 1 }).await
//! }
//! ```
//!
//! ...a handler that returns something else...
//!
//! ```compile_fail,E0271
//! # use sealrpc_core::{HandlerError, ServerBuilder, rpc};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { gb: u32 }
//! # rpc!(struct ResizeVolume = "resize_volume"(Resize) -> u32);
//! fn serve(b: ServerBuilder) -> ServerBuilder {
//!     b.handler(ResizeVolume, |_ctx, _r| async move { Ok::<_, HandlerError>("done") })
//! }
//! ```
//!
//! ...or an `authorize` check written for another argument type:
//!
//! ```compile_fail,E0631
//! # use sealrpc_core::{Caller, ServerBuilder, rpc};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { gb: u32 }
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Status { instance_id: String }
//! # rpc!(struct ResizeVolume = "resize_volume"(Resize) -> u32);
//! fn serve(b: ServerBuilder) -> ServerBuilder {
//!     b.authorize(ResizeVolume, |caller: &Caller, s: &Status| caller.is_guest(&s.instance_id))
//! }
//! ```
//!
//! The string form stays for dynamic use (`client.call::<_, u32>(&ctx, &t, "resize_volume",
//! &args)`); both forms put the same bytes on the wire.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::version::Version;

/// One RPC method, declared once: its wire name, namespace, version, argument type and
/// reply type. Usually declared with [`rpc!`](crate::rpc); the descriptor is a unit struct
/// passed by value wherever a method name would go ([`Client::call`](crate::Client::call),
/// [`Client::cast`](crate::Client::cast), [`ServerBuilder::handler`](crate::ServerBuilder),
/// [`ServerBuilder::authorize`](crate::ServerBuilder::authorize), [`Method::new`](crate::Method::new)).
///
/// A call through a descriptor carries the descriptor's namespace and version, whatever its
/// [`Target`](crate::Target) says (the target says where, the descriptor says what); a server
/// registering it serves at least that version in that namespace.
pub trait Rpc: Send + Sync + 'static {
    /// The method name on the wire.
    const METHOD: &'static str;
    /// The namespace (`None`: the default namespace).
    const NAMESPACE: Option<&'static str> = None;
    /// The interface version the method needs (default `1.0`).
    const VERSION: Version = Version::new(1, 0);
    /// The arguments: a struct with named fields or a map (the wire's `args` is a map), or
    /// `()` for none.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The reply (`()` for none, e.g. a method meant to be cast).
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares [`Rpc`] descriptors: each is a unit struct (doc comments and attributes pass
/// through) implementing [`Rpc`].
///
/// ```
/// use sealrpc_core::{Rpc, Version, rpc};
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Status;
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Resize;
/// rpc! {
///     /// Guest -> conductor: my instance's status changed.
///     pub struct UpdateStatus = "update_status"(Status) -> ();
///     /// In a namespace, added in 1.2 of its interface.
///     pub struct ResizeVolume = "resize_volume"(Resize) -> u32, namespace = "db", version = 1.2;
/// }
/// assert_eq!(UpdateStatus::METHOD, "update_status");
/// assert_eq!(ResizeVolume::NAMESPACE, Some("db"));
/// assert_eq!(ResizeVolume::VERSION, Version::new(1, 2));
/// ```
///
/// The version is `major.minor` written as a number (`1.2`, `2.10`); anything else, an
/// empty method name or an empty namespace, is a compile error:
///
/// ```compile_fail,E0080
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Status;
/// sealrpc_core::rpc!(struct Bad = "update_status"(Status) -> (), version = 1);
/// ```
///
/// ```compile_fail,E0080
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Status;
/// sealrpc_core::rpc!(struct Bad = "update_status"(Status) -> (), namespace = "");
/// ```
#[macro_export]
macro_rules! rpc {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident = $method:literal ($args:ty) -> $reply:ty
            $(, namespace = $ns:literal)? $(, version = $ver:literal)? $(,)?
    );+ $(;)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        $vis struct $name;

        impl $crate::Rpc for $name {
            const METHOD: &'static str = $method;
            $(const NAMESPACE: ::core::option::Option<&'static str> =
                ::core::option::Option::Some($ns);)?
            $(const VERSION: $crate::Version =
                match $crate::__private::parse_version(::core::stringify!($ver)) {
                    ::core::option::Option::Some(v) => v,
                    ::core::option::Option::None => ::core::panic!(
                        "rpc!: a version is written major.minor without leading zeros, e.g. 1.2"
                    ),
                };)?
            type Args = $args;
            type Reply = $reply;
        }

        // Checked when the descriptor is declared, not when it is first used.
        const _: () = $crate::__private::check::<$name>();
    )+};
}

/// Parses a `major.minor` version at compile time (for [`rpc!`](crate::rpc)): two
/// canonical decimals, else `None`.
#[doc(hidden)]
pub const fn parse_version(text: &str) -> Option<Version> {
    let bytes = text.as_bytes();
    let mut parts = [0u32; 2];
    let (mut part, mut digits, mut i) = (0, 0, 0);
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'.' && part == 0 && digits > 0 {
            (part, digits) = (1, 0);
        } else if c.is_ascii_digit() && !(digits > 0 && parts[part] == 0) {
            parts[part] = match parts[part].checked_mul(10) {
                Some(v) => match v.checked_add((c - b'0') as u32) {
                    Some(v) => v,
                    None => return None,
                },
                None => return None,
            };
            digits += 1;
        } else {
            // Not a digit or a single dot, or a leading zero.
            return None;
        }
        i += 1;
    }
    if part != 1 || digits == 0 {
        return None;
    }
    Some(Version::new(parts[0], parts[1]))
}

/// Compile-time checks of a descriptor (for [`rpc!`](crate::rpc)): a method name, and no
/// empty namespace (the wire has no `""` namespace; absent means the default one).
#[doc(hidden)]
pub const fn check<D: Rpc>() {
    assert!(!D::METHOD.is_empty(), "rpc!: empty method name");
    if let Some(ns) = D::NAMESPACE {
        assert!(
            !ns.is_empty(),
            "rpc!: empty namespace (leave it out for the default)"
        );
    }
    let _ = D::VERSION;
}

mod sealed {
    use super::Rpc;
    use crate::version::Version;

    /// What every way of naming a method gives: a name, and for a descriptor the namespace
    /// and version it pins. Sealed: only names and descriptors are methods.
    pub trait Sealed {
        /// The method name.
        fn method_name(&self) -> &str;
        /// The namespace and version a descriptor pins; `None` for a bare name.
        fn pinned(&self) -> Option<(Option<&'static str>, Version)>;
    }

    impl Sealed for &str {
        fn method_name(&self) -> &str {
            self
        }
        fn pinned(&self) -> Option<(Option<&'static str>, Version)> {
            None
        }
    }

    impl Sealed for String {
        fn method_name(&self) -> &str {
            self
        }
        fn pinned(&self) -> Option<(Option<&'static str>, Version)> {
            None
        }
    }

    impl Sealed for &String {
        fn method_name(&self) -> &str {
            self
        }
        fn pinned(&self) -> Option<(Option<&'static str>, Version)> {
            None
        }
    }

    impl<D: Rpc> Sealed for D {
        fn method_name(&self) -> &str {
            D::METHOD
        }
        fn pinned(&self) -> Option<(Option<&'static str>, Version)> {
            Some((D::NAMESPACE, D::VERSION))
        }
    }
}

pub(crate) use sealed::Sealed;

/// A method as the framework takes it: an [`Rpc`] descriptor, or a name (`&str`, `String`)
/// for dynamic use. Sealed.
pub trait MethodRef: Sealed + Send {}

impl<T: Sealed + Send> MethodRef for T {}

/// A method taking arguments of type `A`: a descriptor whose `Args` is `A`, or a name (any
/// `A`). What [`Client::cast`](crate::Client::cast) and
/// [`ServerBuilder::authorize`](crate::ServerBuilder::authorize) take.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take `{A}` as its arguments",
    label = "this method's arguments are not `{A}`",
    note = "a descriptor fixes the argument type: pass `&<{Self} as Rpc>::Args`"
)]
pub trait MethodArgs<A: ?Sized>: MethodRef {}

impl<A: ?Sized> MethodArgs<A> for &str {}
impl<A: ?Sized> MethodArgs<A> for String {}
impl<A: ?Sized> MethodArgs<A> for &String {}
impl<D: Rpc> MethodArgs<D::Args> for D {}

/// A method taking `A` and replying `R`: a descriptor with those types, or a name (any
/// types). What [`Client::call`](crate::Client::call) and
/// [`ServerBuilder::handler`](crate::ServerBuilder) take.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take `{A}` and reply `{R}`",
    label = "the arguments or the reply type differ from this method's",
    note = "a descriptor fixes both: `<{Self} as Rpc>::Args` and `<{Self} as Rpc>::Reply`"
)]
pub trait MethodSig<A: ?Sized, R>: MethodArgs<A> {}

impl<A: ?Sized, R> MethodSig<A, R> for &str {}
impl<A: ?Sized, R> MethodSig<A, R> for String {}
impl<A: ?Sized, R> MethodSig<A, R> for &String {}
impl<D: Rpc> MethodSig<D::Args, D::Reply> for D {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_at_compile_time() {
        const V: Option<Version> = parse_version("2.10");
        assert_eq!(V, Some(Version::new(2, 10)));
        assert_eq!(parse_version("0.0"), Some(Version::new(0, 0)));
        assert_eq!(parse_version("10.0"), Some(Version::new(10, 0)));
    }

    #[test]
    fn bad_versions_are_refused() {
        for bad in [
            "1",
            "1.",
            ".1",
            "01.1",
            "1.01",
            "00.1",
            "1.2.3",
            "a.b",
            "",
            "-1.0",
            "1.0e3",
            "99999999999.1",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        /// Agrees with the runtime parser on every input.
        #[test]
        fn agrees_with_version_parse(s in "[0-9.]{0,12}") {
            proptest::prop_assert_eq!(parse_version(&s), Version::parse(&s));
        }
    }
}
