//! Health of the service (`Status`), shared with the HTTP endpoints and the signal
//! handler, and how client errors move it.

use super::*;

/// Health of the service, shared with the HTTP endpoints and the signal handler.
#[derive(Debug, Default)]
pub struct Status {
    pub(super) started: AtomicBool,
    pub(super) restoring: AtomicUsize,
    pub(super) broker_down: AtomicBool,
    /// One bit per worker waiting for the brokers to acknowledge its interval: a worker
    /// that is fine must not clear another's stall (`kafka.workers` ≤ 64 for this).
    pub(super) stalled: AtomicU64,
    /// Workers that have not yet started consuming (the service is ready once all have).
    pub(super) workers_starting: AtomicUsize,
    pub(super) shutdown: AtomicBool,
    /// Input events handled (applied, duplicate, rejected or skipped).
    pub events: AtomicU64,
    /// Commit intervals made durable.
    pub commits: AtomicU64,
    /// Partitions held.
    pub partitions: AtomicUsize,
}

impl Status {
    /// A new status (not ready).
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    /// Asks the service to stop (SIGTERM/SIGINT).
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// `None` when ready to serve, or why not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.shutting_down() {
            Some("shutting down")
        } else if !self.started.load(Ordering::SeqCst)
            || self.workers_starting.load(Ordering::SeqCst) > 0
        {
            Some("starting: waiting for the brokers and the topics")
        } else if self.restoring.load(Ordering::SeqCst) > 0 {
            Some("restoring partition state from the changelog")
        } else if self.broker_down.load(Ordering::SeqCst) {
            Some("brokers unreachable; retrying")
        } else if self.stalled.load(Ordering::SeqCst) != 0 {
            Some("waiting for the brokers to acknowledge the current interval")
        } else {
            None
        }
    }
}

impl Status {
    /// Marks worker `w`'s interval as waiting for the brokers (or not).
    pub(super) fn set_stalled(&self, w: usize, stalled: bool) {
        let bit = 1u64 << (w % 64);
        if stalled {
            self.stalled.fetch_or(bit, Ordering::SeqCst);
        } else {
            self.stalled.fetch_and(!bit, Ordering::SeqCst);
        }
    }
}

pub(super) fn note_client_error(status: &Status, client: &str, error: &KafkaError, reason: &str) {
    if status.shutting_down() {
        // Connections close as the process stops; not news.
        tracing::debug!(client, error = %error, reason, "client error during shutdown");
        return;
    }
    if matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AllBrokersDown)
    ) {
        if !status.broker_down.swap(true, Ordering::SeqCst) {
            tracing::warn!(client, "all brokers are down; retrying with backoff");
        }
    } else {
        tracing::debug!(client, error = %error, reason, "client error");
    }
}
