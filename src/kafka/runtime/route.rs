//! Routing look-ups across the group: the members table is started here (the topic is
//! checked or created, then tailed on its own thread), each partition this instance
//! installs is claimed in it, and [`ServiceHandle::route`] says where a customer this
//! instance does not hold can be answered.

use crate::kafka::members::{self, Members};

use super::*;

/// Where a look-up of a customer not in this instance's state goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This instance holds the customer's partition and it is restored: the customer does
    /// not exist (404).
    Absent,
    /// The holder is another instance, at this URL.
    Forward(String),
    /// Nobody can answer right now (a rebalance is moving the partition, or its holder is
    /// unknown): 503 with `Retry-After`. The text says why.
    Unavailable(&'static str),
    /// Routing is off (no members topic): this instance answers for its own customers only.
    Local,
}

impl Service {
    /// Makes sure the members topic exists (creating it when `kafka.create_topics` allows)
    /// and tails it; returns the reader thread, or `None` with routing left off.
    pub(super) fn start_members(
        &self,
        k: &KafkaSettings,
        input_partitions: i32,
    ) -> Option<std::thread::JoinHandle<()>> {
        let members = Arc::clone(&lock(&self.engines[0]).members);
        let members_off = |m: &Members| {
            m.disable();
            None
        };
        if members.topic.is_empty() {
            return members_off(&members);
        }
        let exists = self
            .base
            .create::<BaseConsumer>()
            .ok()
            .and_then(|c| {
                c.fetch_metadata(Some(&members.topic), k.broker_timeout)
                    .ok()
            })
            .is_some_and(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.error().is_none() && !t.partitions().is_empty())
            });
        if !exists {
            if !k.create_topics {
                tracing::warn!(topic = %members.topic, "the members topic does not exist: each instance answers look-ups for its own customers only; create it (compacted, 1 partition) or set kafka.create_topics = true so any instance answers for any customer");
                return members_off(&members);
            }
            if let Err(e) = self.create_topics(k, &[(members.topic.as_str(), true)], 1) {
                tracing::warn!(error = %e, "cannot create the members topic; look-ups are answered for this instance's own customers only");
                return members_off(&members);
            }
        }
        members.enable(input_partitions);
        let base = self.base.clone();
        let status = Arc::clone(&self.status);
        std::thread::Builder::new()
            .name("churnwatch-members".into())
            .spawn(move || members::tail(&base, members, || status.shutting_down()))
            .ok()
    }
}

impl Engine {
    /// Announces that this instance now serves partition `p` (after its restore).
    pub(super) fn claim(&self, p: i32) {
        if !self.members.enabled() {
            return;
        }
        if let Some((key, value)) = self.members.claim_record(p, (self.clock)()) {
            self.submitter
                .send_detached(&self.members.topic, &key, &value);
        }
    }
}

impl ServiceHandle {
    /// Where a look-up of `customer_id`, not found in this instance's state, goes.
    /// `forwarded`: the request already came from another instance (never forwarded
    /// twice, so a stale table cannot make a loop).
    pub fn route(&self, customer_id: &str, forwarded: bool) -> Route {
        // Held by any of this instance's workers.
        let members = Arc::clone(&lock(&self.engines[0]).members);
        let held = self.with_instance(|i| i.held());
        if !members.decided() {
            return Route::Unavailable("this instance is starting");
        }
        if !members.enabled() {
            return Route::Local;
        }
        let Some(p) = members.partition_of(customer_id) else {
            return Route::Unavailable("the input's partition count is not known yet");
        };
        if held.contains(&p) {
            return Route::Absent;
        }
        if forwarded {
            return Route::Unavailable("the customer's partition is moving between instances");
        }
        match members.holder(p) {
            Some(c) if c.instance != members.instance && !c.url.is_empty() => Route::Forward(c.url),
            Some(_) => Route::Unavailable("this instance is taking the customer's partition over"),
            None => Route::Unavailable("no instance has claimed the customer's partition yet"),
        }
    }

    /// Whether look-ups are routed ("on", "off", "starting") and the members table as
    /// this instance sees it (for `/v1/status`).
    pub fn routing(&self) -> (&'static str, Vec<crate::kafka::members::Claim>) {
        let m = Arc::clone(&lock(&self.engines[0]).members);
        let state = match (m.decided(), m.enabled()) {
            (false, _) => "starting",
            (true, true) => "on",
            (true, false) => "off",
        };
        (state, m.claims())
    }
}
