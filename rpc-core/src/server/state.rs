//! Shared application state for handlers (axum's `State`): set once with
//! [`ServerBuilder::with_state`], handed to every handler as its first argument, so that
//! handlers need no clone-then-move boilerplate.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ServerBuilder;
use super::error::HandlerError;
use super::method::Method;
use crate::context::Context;
use crate::descriptor::MethodSig;

/// The state of a [`ServerBuilder`] after [`ServerBuilder::with_state`]: its handlers take a
/// clone of `S` first.
#[derive(Debug, Clone)]
pub struct State<S>(pub S);

impl<L, S> ServerBuilder<L, State<S>>
where
    S: Clone + Send + Sync + 'static,
{
    /// Registers a handler for `method` (a descriptor or a name, as for a server without
    /// state) that gets a clone of the state, then the context and the arguments.
    ///
    /// ```
    /// # fn demo(b: sealrpc_core::ServerBuilder) {
    /// use std::sync::Arc;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Status { instance_id: String }
    /// struct Ledger;
    /// impl Ledger { fn record(&self, _id: &str) {} }
    /// sealrpc_core::rpc!(struct UpdateStatus = "update_status"(Status) -> ());
    /// let b = b.with_state(Arc::new(Ledger)).handler(UpdateStatus, |ledger, _ctx, s| async move {
    ///     ledger.record(&s.instance_id);
    ///     Ok(())
    /// });
    /// # }
    /// ```
    pub fn handler<M, A, F, Fut, R>(self, method: M, handler: F) -> Self
    where
        M: MethodSig<A, R>,
        A: DeserializeOwned + Send + 'static,
        F: Fn(S, Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
        R: Serialize + Send + 'static,
    {
        let state = self.state.0.clone();
        self.method(Method::new(method, move |ctx, args| {
            handler(state.clone(), ctx, args)
        }))
    }

    /// The shared state.
    pub fn state(&self) -> &S {
        &self.state.0
    }
}
