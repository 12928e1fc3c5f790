//! Which handler runs which kind of job, and with which retry policy.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use crate::{JobContext, JobError, RetryPolicy};

/// Runs one kind of job. The payload is decoded from the job's JSON before the call; a payload
/// that does not decode fails the job permanently without calling the handler.
pub trait Handler: Send + Sync + 'static {
    type Payload: DeserializeOwned + Send + 'static;

    fn run(
        &self,
        ctx: JobContext,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A handler made of an async closure: `handler_fn(|ctx, payload: MyPayload| async move { … })`.
pub fn handler_fn<P, F, Fut>(f: F) -> FnHandler<P, F>
where
    P: DeserializeOwned + Send + 'static,
    F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    FnHandler {
        f,
        _payload: PhantomData,
    }
}

/// See [`handler_fn`].
pub struct FnHandler<P, F> {
    f: F,
    _payload: PhantomData<fn(P)>,
}

impl<P, F, Fut> Handler for FnHandler<P, F>
where
    P: DeserializeOwned + Send + 'static,
    F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    type Payload = P;

    fn run(
        &self,
        ctx: JobContext,
        payload: P,
    ) -> impl Future<Output = Result<(), JobError>> + Send {
        (self.f)(ctx, payload)
    }
}

/// A handler with its payload type erased, as the registry keeps it.
trait ErasedHandler: Send + Sync {
    fn call(&self, ctx: JobContext, payload: &str) -> BoxFuture<'static, Result<(), JobError>>;
}

struct Typed<H>(Arc<H>);

impl<H: Handler> ErasedHandler for Typed<H> {
    fn call(&self, ctx: JobContext, payload: &str) -> BoxFuture<'static, Result<(), JobError>> {
        let decoded = serde_json::from_str::<H::Payload>(payload).map_err(|e| {
            JobError::permanent(format!(
                "the payload does not parse as {}: {e}",
                std::any::type_name::<H::Payload>()
            ))
        });
        let handler = self.0.clone();
        Box::pin(async move { handler.run(ctx, decoded?).await })
    }
}

#[derive(Clone)]
struct Entry {
    handler: Arc<dyn ErasedHandler>,
    policy: RetryPolicy,
}

/// Kind → handler + retry policy. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    entries: HashMap<String, Entry>,
    default_policy: RetryPolicy,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy of kinds registered without one, and of jobs whose kind is unknown here.
    pub fn with_default_policy(mut self, policy: RetryPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Registers `handler` for `kind` with the default policy.
    pub fn register(self, kind: impl Into<String>, handler: impl Handler) -> Self {
        let policy = self.default_policy;
        self.register_with(kind, policy, handler)
    }

    /// Registers `handler` for `kind` with its own retry policy.
    pub fn register_with(
        mut self,
        kind: impl Into<String>,
        policy: RetryPolicy,
        handler: impl Handler,
    ) -> Self {
        let handler: Arc<dyn ErasedHandler> = Arc::new(Typed(Arc::new(handler)));
        self.entries.insert(kind.into(), Entry { handler, policy });
        self
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.entries.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    pub fn policy(&self, kind: &str) -> RetryPolicy {
        self.entries
            .get(kind)
            .map_or(self.default_policy, |e| e.policy)
    }

    /// Starts the handler of `kind` on `payload`; `None` when the kind is unknown.
    pub(crate) fn call(
        &self,
        kind: &str,
        ctx: JobContext,
        payload: &str,
    ) -> Option<BoxFuture<'static, Result<(), JobError>>> {
        Some(self.entries.get(kind)?.handler.call(ctx, payload))
    }
}
