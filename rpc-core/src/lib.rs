//! # sealrpc-core
//!
//! A transport-agnostic RPC layer (call, cast, fanout, targets, versions, deadlines,
//! context) whose every message can be signed and sealed through hooks that a consumer
//! registers (see [`security`]). The wire format is in [`wire`] and, normatively, in
//! `docs/wire-format.md`.
//!
//! Methods are declared once with [`rpc!`] (see [`descriptor`]): the client's call, the
//! server's handler and its `authorize` checks all take the descriptor, so their argument and
//! reply types cannot disagree. A [`Node`] builds a process's clients and servers on one
//! transport and one [`Security`] runtime; handlers share application state through
//! [`ServerBuilder::with_state`].
#![forbid(unsafe_code)]

pub use bytes;

pub mod client;
pub mod context;
pub mod descriptor;
pub mod error;
pub mod layer;
pub mod node;
pub mod payload;
pub mod principal;
pub mod rand;
pub mod secret;
pub mod security;
pub mod server;
pub mod target;
pub mod transport;
pub mod version;
pub mod wire;

pub use client::{CallRequest, CallResponse, Client, ClientBuilder, ClientService, Prepared};
pub use context::Context;
pub use descriptor::{MethodArgs, MethodRef, MethodSig, Rpc};
pub use error::{Error, ErrorCode};
pub use node::{IntoTransport, Node};
pub use principal::Principal;
pub use secret::Secret;
pub use security::{Peer, Security, SecurityConfig};
pub use server::{
    Access, Caller, HandlerError, IncomingRequest, Method, Server, ServerBuilder, ServerHandle,
    State,
};
pub use target::Target;
pub use transport::memory::MemoryTransport;
pub use transport::{Address, Transport};
pub use version::Version;
