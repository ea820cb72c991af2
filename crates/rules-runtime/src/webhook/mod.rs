//! Webhook delivery, apart from the rules that feed it: each HTTP action
//! has a bounded queue and a task that POSTs what it holds, a few at a
//! time, retrying transient failures with exponential backoff. Whoever
//! queues a call learns at once if the queue is full, and later, through
//! the call's `done`, how delivery ended.

mod client;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::actions::{HttpCall, WebhookSettings};

pub(crate) use client::client_config;
use client::{PostError, post};

/// How a queued call ended: `Ok` once delivered, else the last error.
pub(crate) type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

pub(crate) struct Job {
    pub call: HttpCall,
    pub done: Done,
}

/// The sending side of one HTTP action's queue. Dropping it lets the
/// delivery task finish what is queued and stop.
#[derive(Debug, Clone)]
pub(crate) struct WebhookQueue {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("call", &self.call).finish()
    }
}

impl WebhookQueue {
    /// Starts the delivery task (on the current Tokio runtime).
    pub(crate) fn start(settings: WebhookSettings) -> WebhookQueue {
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        tokio::spawn(deliver_all(rx, Arc::new(settings)));
        WebhookQueue { tx }
    }

    /// Queues `job` without waiting; gives it back when the queue is full
    /// (or the delivery task is gone).
    pub(crate) fn offer(&self, job: Job) -> Result<(), Job> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => job,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}

async fn deliver_all(mut rx: mpsc::Receiver<Job>, settings: Arc<WebhookSettings>) {
    let slots = Arc::new(Semaphore::new(settings.max_in_flight));
    while let Some(job) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let settings = settings.clone();
        tokio::spawn(async move {
            let result = deliver(&settings, &job.call).await;
            (job.done)(result);
            drop(slot);
        });
    }
}

/// POSTs `call` until it is delivered, fails permanently or runs out of
/// attempts.
pub(crate) async fn deliver(settings: &WebhookSettings, call: &HttpCall) -> Result<(), String> {
    let mut backoff = settings.initial_backoff;
    let mut attempt = 1;
    loop {
        match post(&settings.tls, call, settings.timeout).await {
            Ok(_) => return Ok(()),
            Err(PostError::Permanent(e)) => return Err(e),
            Err(PostError::Transient(e)) if attempt >= settings.max_attempts => {
                return Err(format!("{e} (gave up after {attempt} attempts)"));
            }
            Err(PostError::Transient(e)) => {
                tracing::debug!(url = %call.url, attempt, error = %e, "webhook delivery failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(settings.max_backoff);
                attempt += 1;
            }
        }
    }
}
