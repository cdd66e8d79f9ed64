//! Blocking work (readers, store submissions, retention) off the async executor.
//!
//! Not `smol::unblock`: the `blocking` pool behind it keeps each idle thread alive,
//! waking every 500 ms forever, which would cost an idle device four wakeups a second.
//! These workers block on their queue without a timeout, so an idle daemon sleeps.

use smol::channel::{Receiver, Sender};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Threads in the pool: enough that a slow reader (gpsd's timeout) does not hold up
/// event submissions.
const WORKERS: usize = 2;

fn queue() -> &'static Sender<Job> {
    static QUEUE: OnceLock<Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = smol::channel::unbounded();
        for n in 0..WORKERS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("assent-worker-{n}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv_blocking() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                log::error!("cannot start a worker thread: {e}");
            }
        }
        tx
    })
}

/// Runs `f` on a worker thread and waits for its result without blocking the executor.
/// A panic in `f` is caught on the worker (the pool stays whole) and resumed here.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = smol::channel::bounded(1);
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send_blocking(outcome);
    });
    let outcome = match queue().send(job).await {
        // The queue's receivers live in the workers for the whole process, and each job
        // answers exactly once, so both waits end.
        Ok(()) => rx.recv().await,
        Err(smol::channel::SendError(job)) => {
            // No worker could be started: run it here rather than never.
            job();
            rx.recv().await
        }
    };
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => std::panic::resume_unwind(Box::new("worker job dropped without an answer")),
    }
}
