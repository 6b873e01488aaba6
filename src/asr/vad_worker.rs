//! The voice detector of the live server: one OS thread scoring the
//! 32 ms windows of every call, many in one run of the network.
//!
//! Silero used to run once per window per call from each call's task:
//! CPU-bound work on the async workers, under a process-wide lock. Here a
//! call hands over its window with its [`VadStream`] (recurrent state) and
//! awaits the probability; the thread takes whatever windows are waiting
//! (up to [`MAX_BATCH`]) and scores them together. Alone, a batch of 64
//! costs about half as much per window as one window (0.055 vs 0.10 ms);
//! beside the recogniser, whose weights evict Silero's from the cache, the
//! load bench measured ~0.11 ms a window either way (README, "Capacity").
//! When windows come from many calls the thread waits a few ms to gather
//! more; with few calls it scores each at once, so a lone call waits for
//! no one.
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::endpoint::Window;
use super::silero::{SileroModel, VadStream};

/// Most windows scored in one run of the network.
pub const MAX_BATCH: usize = 128;
/// How long a busy detector waits for more windows before a run: each
/// call's next window is 32 ms away anyway, so a few ms delay nobody's
/// answer noticeably and fill the batch.
const BATCH_WAIT: Duration = Duration::from_millis(4);
/// Windows a second (all calls) from which the detector counts as busy:
/// about 16 calls (31 windows a second each).
const BUSY_WINDOWS_PER_SECOND: usize = 500;

/// A scored window: its stream back, with the state after the window, and
/// the probability (or why the network failed).
pub struct Scored {
    pub stream: Box<VadStream>,
    pub probability: Result<f32, String>,
}

struct Job {
    window: Window,
    stream: Box<VadStream>,
    reply: oneshot::Sender<Scored>,
}

/// Why a window was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NotTaken {
    #[error("the voice detector is overloaded ({0} windows waiting)")]
    Full(usize),
    #[error("the voice detector stopped")]
    Stopped,
}

/// Handle to the detector thread; cloned into every call. The thread ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct VadWorker {
    jobs: SyncSender<Job>,
    capacity: usize,
}

impl VadWorker {
    /// Starts the thread, with room for `capacity` windows waiting.
    pub fn start(model: Arc<SileroModel>, capacity: usize) -> std::io::Result<VadWorker> {
        let capacity = capacity.max(1);
        let (jobs, rx) = sync_channel(capacity);
        std::thread::Builder::new().name("vad".into()).spawn(move || work(&model, &rx))?;
        Ok(VadWorker { jobs, capacity })
    }

    /// Queues `window` of the call whose stream is `stream`; the answer
    /// comes on the receiver. Refused at once when the queue is full (the
    /// stream comes back with the refusal), never blocking the caller.
    pub fn submit(
        &self,
        window: Window,
        stream: Box<VadStream>,
    ) -> Result<oneshot::Receiver<Scored>, (Box<VadStream>, NotTaken)> {
        let (reply, answer) = oneshot::channel();
        match self.jobs.try_send(Job { window, stream, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(job)) => Err((job.stream, NotTaken::Full(self.capacity))),
            Err(TrySendError::Disconnected(job)) => Err((job.stream, NotTaken::Stopped)),
        }
    }
}

fn work(model: &SileroModel, jobs: &Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut rate = ArrivalRate::default();
    while let Ok(first) = jobs.recv() {
        let started = Instant::now();
        batch.push(first);
        // Busy: wait a moment for other calls' windows, so one run of the
        // network serves them all. Quiet: score at once, nobody to wait for.
        let wait = if rate.per_second >= BUSY_WINDOWS_PER_SECOND { BATCH_WAIT } else { Duration::ZERO };
        while batch.len() < MAX_BATCH {
            let left = wait.saturating_sub(started.elapsed());
            let next = if left.is_zero() { jobs.try_recv().ok() } else { jobs.recv_timeout(left).ok() };
            match next {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        rate.count(batch.len(), started);
        crate::metrics::vad_batch(batch.len());
        let probabilities = {
            let mut rows: Vec<_> = batch.iter_mut().map(|j| (&j.window, &mut *j.stream)).collect();
            model.score(&mut rows).map_err(|e| e.to_string())
        };
        for (i, job) in batch.drain(..).enumerate() {
            let probability = probabilities.as_ref().map(|p| p[i]).map_err(Clone::clone);
            // A call that hung up meanwhile no longer listens: nothing to do.
            let _ = job.reply.send(Scored { stream: job.stream, probability });
        }
    }
}

/// Windows arriving per second (all calls), counted over whole seconds.
#[derive(Default)]
struct ArrivalRate {
    since: Option<Instant>,
    windows: usize,
    per_second: usize,
}

impl ArrivalRate {
    fn count(&mut self, windows: usize, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.windows += windows;
        let elapsed = now.duration_since(since);
        if elapsed >= Duration::from_secs(1) {
            self.per_second = (self.windows as f64 / elapsed.as_secs_f64()) as usize;
            (self.since, self.windows) = (Some(now), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_at_once_and_gives_the_stream_back() {
        // A worker whose thread is never started: nothing drains the queue.
        let (jobs, _rx) = sync_channel(1);
        let worker = VadWorker { jobs, capacity: 1 };
        let window = || Box::new([0.0; super::super::endpoint::WINDOW]);
        assert!(worker.submit(window(), Box::default()).is_ok());
        match worker.submit(window(), Box::default()) {
            Err((_, NotTaken::Full(1))) => {}
            other => panic!("expected a refusal, got {:?}", other.map(|_| ()).map_err(|(_, e)| e)),
        }
    }
}
