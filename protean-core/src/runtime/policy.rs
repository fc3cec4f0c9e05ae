//! How reactions are delivered: inline or by background workers ([`DeliveryMode`]), and
//! what happens when a handler fails ([`RetryPolicy`], [`WhenDead`]).

use std::time::Duration;

/// When the handlers reacting to a command's events run, chosen when the domain is built
/// ([`DomainBuilder::delivery`](crate::runtime::DomainBuilder::delivery)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// Inside [`Domain::process`](crate::runtime::Domain::process), after the commit,
    /// breadth first, before it returns (the default: tests, the test kit, scripts).
    /// What fails is reported in [`Processed::failures`](crate::runtime::Processed::failures).
    #[default]
    Inline,
    /// By [delivery workers](crate::runtime::Workers), in this process or in others:
    /// `process` returns once its unit of work is committed, and the events wait in the
    /// store's outbox (written in the same transaction) until a worker delivers them.
    /// What fails is retried, then dead-lettered, and logged by the workers, not reported
    /// to `process`'s caller: see [seeing failures](crate::runtime::Workers#seeing-failures).
    Background,
}

/// What a handler's failed delivery leads to once its last attempt has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenDead {
    /// The event becomes a dead letter, and the later events of its stream wait behind
    /// it for this handler (they are kept as *held*) until it is replayed or discarded:
    /// the handler sees each stream in order, with no gap (the default).
    #[default]
    HoldStream,
    /// The event becomes a dead letter, and the handler goes on with the later events of
    /// its stream: for handlers whose events do not depend on each other.
    Continue,
}

/// How often, and how far apart, a failing handler is given an event again in
/// background delivery, and what happens after the last attempt.
///
/// The wait before attempt *n + 1* is `initial_backoff × multiplier^(n − 1)`, at most
/// `max_backoff`, less a random part of up to `jitter` of it (so that handlers failing
/// together do not retry together).
///
/// ```
/// # extern crate protean_core as protean;
/// use std::time::Duration;
/// use protean::runtime::{RetryPolicy, WhenDead};
///
/// let policy = RetryPolicy::default().max_attempts(8).initial_backoff(Duration::from_millis(50));
/// assert_eq!(policy.when_dead, WhenDead::HoldStream);
/// assert!(policy.backoff(1) <= Duration::from_millis(50));
/// assert!(policy.backoff(30) <= policy.max_backoff);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5); at least 1.
    pub max_attempts: u32,
    /// The wait after the first failure (default 200 ms).
    pub initial_backoff: Duration,
    /// The longest wait (default 60 s).
    pub max_backoff: Duration,
    /// How much longer each wait is than the one before (default 2).
    pub multiplier: f64,
    /// The share of each wait that is random, from 0 (none) to 1 (default 0.2).
    pub jitter: f64,
    /// What happens after the last attempt (default [`WhenDead::HoldStream`]).
    pub when_dead: WhenDead,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
            when_dead: WhenDead::HoldStream,
        }
    }
}

impl RetryPolicy {
    /// This policy with `attempts` attempts in all (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// This policy waiting `wait` after the first failure.
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// This policy waiting at most `wait` between attempts.
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// This policy with each wait `factor` times the one before (at least 1).
    pub fn multiplier(mut self, factor: f64) -> Self {
        self.multiplier = if factor.is_finite() { factor.max(1.0) } else { 1.0 };
        self
    }

    /// This policy with `share` of each wait random (between 0 and 1).
    pub fn jitter(mut self, share: f64) -> Self {
        self.jitter = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// This policy doing `when_dead` after the last attempt.
    pub fn when_dead(mut self, when_dead: WhenDead) -> Self {
        self.when_dead = when_dead;
        self
    }

    /// The wait after the `failed`-th failed attempt (from 1), jitter included.
    pub fn backoff(&self, failed: u32) -> Duration {
        let exponent = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = grown.min(self.max_backoff.as_secs_f64());
        let jittered = capped * (1.0 - self.jitter.clamp(0.0, 1.0) * fastrand::f64());
        Duration::try_from_secs_f64(jittered).unwrap_or(self.max_backoff)
    }

    /// Whether the `attempts`-th failed attempt was the last one allowed.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts.max(1)
    }
}
