//! [`DomainBuilder`]: which registered elements and handlers form a domain, where it
//! keeps its data and how it delivers events; and what building it may fail with
//! ([`BuildError`]). [`DomainBuilder::build`] itself is with [`Domain`](crate::runtime::Domain).

use std::fmt;
use std::sync::Arc;

use crate::registry::{registered, ElementDescriptor, MessageKind, Model, ModelError, ModelProblem};
use crate::runtime::engine::{DeliveryPolicy, Engine, HandlerDescriptor};
use crate::runtime::handler::registered_handlers;
use crate::runtime::policy::{DeliveryMode, RetryPolicy};
use crate::store::{MemoryStore, Store};

/// Chooses which registered elements and handlers form a domain, and where it keeps its data.
#[derive(Clone)]
pub struct DomainBuilder {
    modules: Vec<String>,
    store: Option<Arc<dyn Store>>,
    conflict_retries: u32,
    lease: std::time::Duration,
    snapshot_every: u64,
    mode: DeliveryMode,
    retry: RetryPolicy,
    per_handler: Vec<(String, RetryPolicy)>,
}

impl Default for DomainBuilder {
    fn default() -> Self {
        DomainBuilder {
            modules: Vec::new(),
            store: None,
            conflict_retries: 3,
            lease: std::time::Duration::from_secs(30),
            snapshot_every: 100,
            mode: DeliveryMode::Inline,
            retry: RetryPolicy::default(),
            per_handler: Vec::new(),
        }
    }
}

impl fmt::Debug for DomainBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainBuilder")
            .field("modules", &self.modules)
            .field("store", &self.store.as_ref().map(|_| "..."))
            .field("conflict_retries", &self.conflict_retries)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl DomainBuilder {
    /// Includes the elements declared in this module or below it (a `module_path!()`
    /// prefix, such as `"my_app::orders"`). With no module given, every registered
    /// element is included. A module in which (and below which) no element or handler
    /// is declared makes [`build`](Self::build) fail with [`BuildError::UnknownModule`].
    pub fn module(mut self, prefix: impl Into<String>) -> Self {
        self.modules.push(prefix.into());
        self
    }

    /// Keeps the domain's aggregates and events in `store` (by default a new
    /// [`MemoryStore`](crate::store::MemoryStore)).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Shares a store with other domains or with code that inspects it.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// How many times a handler runs again, in a fresh unit of work, when its commit
    /// meets a version conflict (default 3). With 0, the first conflict is returned.
    pub fn conflict_retries(mut self, retries: u32) -> Self {
        self.conflict_retries = retries;
        self
    }

    /// How long [`Domain::deliver_pending`](crate::runtime::Domain::deliver_pending) holds
    /// the undelivered events it claims before another relay may claim them (default
    /// 30 s): longer than delivering a batch takes.
    pub fn delivery_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Snapshots an event-sourced aggregate every `events` events (default 100; 0 never),
    /// so that loading replays at most that many events, however long the stream.
    pub fn snapshot_every(mut self, events: u64) -> Self {
        self.snapshot_every = events;
        self
    }

    /// When reactions run: [`DeliveryMode::Inline`] (the default) inside
    /// [`Domain::process`](crate::runtime::Domain::process), or
    /// [`DeliveryMode::Background`], by the delivery
    /// [workers](crate::runtime::Domain::workers) after `process` has returned.
    pub fn delivery(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// How delivery workers retry a failing handler, and what they do after its last
    /// attempt, for every handler without a policy of its own
    /// (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy of one event handler, named as in reports and dead letters
    /// (`"InventoryReactions::reserve"`). [`build`](Self::build) fails when no event
    /// handler of the domain has that name.
    pub fn handler_policy(mut self, handler: impl Into<String>, policy: RetryPolicy) -> Self {
        self.per_handler.push((handler.into(), policy));
        self
    }

    /// The checked model and the engine of a domain, once the modules are known to match
    /// ([`check_modules`](Self::check_modules)).
    pub(crate) fn checked_parts(self) -> Result<(Model, Arc<Engine>), ModelError> {
        let included = |path: &str| self.modules.is_empty() || self.modules.iter().any(|m| in_module(path, m));
        let elements: Vec<&'static ElementDescriptor> = registered().filter(|d| included(d.module_path)).collect();
        let mut handlers: Vec<&'static HandlerDescriptor> =
            registered_handlers().filter(|h| included(h.info.module_path)).collect();
        // Delivery follows this order: the same in every run, whatever the link order.
        handlers.sort_by(|a, b| {
            (a.info.handler, a.info.method, a.info.module_path).cmp(&(
                b.info.handler,
                b.info.method,
                b.info.module_path,
            ))
        });
        let model = Model::checked(elements, handlers.iter().map(|h| h.info).collect(), |aggregate, event| {
            crate::runtime::sourcing::applier(aggregate, event).is_some()
        })?;
        let mut per_handler = foldhash::HashMap::default();
        let mut problems = Vec::new();
        for (name, policy) in &self.per_handler {
            match handlers.iter().find(|h| h.info.id == name && h.info.kind == MessageKind::Event) {
                Some(handler) => {
                    per_handler.insert(handler.info.id, *policy);
                }
                None => problems.push(ModelProblem::new(
                    crate::registry::refusal::RETRY_POLICY_OF_UNKNOWN_HANDLER,
                    name.clone(),
                    "a retry policy names an event handler this domain does not have: name it as \
                     `Handler::method`, as in `DeliveryFailure` reports",
                )),
            }
        }
        if !problems.is_empty() {
            return Err(ModelError { problems });
        }
        let delivery = DeliveryPolicy { mode: self.mode, retry: self.retry, per_handler };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let engine =
            Arc::new(Engine::new(store, &handlers, self.conflict_retries, self.lease, self.snapshot_every, delivery));
        Ok((model, engine))
    }
}

impl DomainBuilder {
    /// Refuses the first module given that no registered element or handler is declared
    /// in or below.
    pub(crate) fn check_modules(&self) -> Result<(), BuildError> {
        let declared = || registered().map(|d| d.module_path).chain(registered_handlers().map(|h| h.info.module_path));
        let Some(unknown) = self.modules.iter().find(|m| !declared().any(|path| in_module(path, m))) else {
            return Ok(());
        };
        // Every module that declares something, and the modules above it: any of them
        // would have matched.
        let mut known: Vec<String> = declared()
            .flat_map(|path| path.match_indices("::").map(|(end, _)| &path[..end]).chain([path]))
            .map(str::to_owned)
            .collect();
        known.sort_unstable();
        known.dedup();
        known.sort_by_cached_key(|candidate| edit_distance(unknown, candidate));
        Err(BuildError::UnknownModule { module: unknown.clone(), known })
    }
}

fn in_module(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with("::"))
}

/// The Levenshtein distance between `a` and `b`, by characters: how many characters to
/// insert, delete or replace to make one the other.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != *cb);
            current[j + 1] = replace.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Why [`DomainBuilder::build`] refused to build a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A module given to [`DomainBuilder::module`] in which, and below which, no
    /// registered element or handler is declared: a misspelt path, or one that is not
    /// what `module_path!()` gives where the elements are declared (it starts with the
    /// crate's name, `my_app::orders`, not `crate::orders`).
    #[error("{}", unknown_module(module, known))]
    UnknownModule {
        /// The module given.
        module: String,
        /// The modules that declare registered elements or handlers, and the modules
        /// above them: what `module` may name. The closest to `module` (fewest characters
        /// to change) first.
        known: Vec<String>,
    },
    /// The chosen elements break rules of the model the compiler cannot see.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl BuildError {
    /// The model's problems, when that is what refused the domain.
    pub fn model(&self) -> Option<&ModelError> {
        match self {
            BuildError::Model(error) => Some(error),
            BuildError::UnknownModule { .. } => None,
        }
    }
}

/// How many known modules [`BuildError::UnknownModule`]'s message lists.
const MODULES_LISTED: usize = 8;

fn unknown_module(module: &str, known: &[String]) -> String {
    let mut message = format!(
        "no registered element or handler is declared in module `{module}` or below it: \
         `DomainBuilder::module` takes a `module_path!()` prefix"
    );
    if known.is_empty() {
        message.push_str(", and no element is registered in this program");
        return message;
    }
    let listed: Vec<String> = known.iter().take(MODULES_LISTED).map(|m| format!("`{m}`")).collect();
    message.push_str("; the modules that have some are, closest first: ");
    message.push_str(&listed.join(", "));
    if known.len() > MODULES_LISTED {
        message.push_str(&format!(" (and {} more)", known.len() - MODULES_LISTED));
    }
    message
}
