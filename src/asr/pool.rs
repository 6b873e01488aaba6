//! A bounded pool of OS threads for recognition.
//!
//! Decoding is CPU-bound and blocking, so it never runs on async workers.
//! Jobs wait in a bounded queue; when it is full, [`RecognizerPool::submit`]
//! fails at once with [`PoolError::Overloaded`] and the call degrades (DTMF
//! prompt, then a human) instead of stalling.
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{AsrError, Grammar, Recognition, Recognizer};

pub type Reply = oneshot::Receiver<Result<Recognition, AsrError>>;

struct Job {
    samples: Arc<Vec<f32>>,
    grammar: Arc<Grammar>,
    reply: oneshot::Sender<Result<Recognition, AsrError>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PoolError {
    #[error("recogniser overloaded: {0} utterances already waiting")]
    Overloaded(usize),
    #[error("recogniser pool has shut down")]
    Closed,
}

pub struct RecognizerPool {
    queue: Option<SyncSender<Job>>,
    capacity: usize,
    workers: Vec<JoinHandle<()>>,
}

impl RecognizerPool {
    /// `threads` workers (0 = number of cores) sharing one recogniser, and
    /// room for `queue` waiting utterances.
    pub fn new(recognizer: Arc<dyn Recognizer>, threads: usize, queue: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|i| {
                let rx = Arc::clone(&rx);
                let rec = Arc::clone(&recognizer);
                std::thread::Builder::new()
                    .name(format!("asr-{i}"))
                    .spawn(move || loop {
                        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(j) => j,
                            Err(_) => return, // pool dropped
                        };
                        // A panic inside the engine must not take the worker
                        // (and with it every later call) down.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            rec.recognize(&job.samples, &job.grammar)
                        }))
                        .unwrap_or_else(|_| Err(AsrError::Failed("recogniser panicked".into())));
                        let _ = job.reply.send(result);
                    })
                    .expect("spawning a recognition thread")
            })
            .collect();
        RecognizerPool { queue: Some(tx), capacity: queue, workers }
    }

    /// Queues one utterance; the answer arrives on the returned channel.
    pub fn submit(&self, samples: Arc<Vec<f32>>, grammar: Arc<Grammar>) -> Result<Reply, PoolError> {
        let (reply, rx) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or(PoolError::Closed)?;
        match queue.try_send(Job { samples, grammar, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(PoolError::Overloaded(self.capacity)),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Closed),
        }
    }

    /// Blocking convenience for command-line tools.
    pub fn recognize_blocking(&self, samples: Arc<Vec<f32>>, grammar: Arc<Grammar>) -> Result<Recognition, AsrError> {
        let rx = self.submit(samples, grammar).map_err(|e| AsrError::Failed(e.to_string()))?;
        rx.blocking_recv().unwrap_or_else(|_| Err(AsrError::Failed("recognition worker stopped".into())))
    }
}

impl Drop for RecognizerPool {
    fn drop(&mut self) {
        self.queue.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A recogniser that blocks until released, to fill the queue.
    struct Slow(Arc<AtomicUsize>, Mutex<()>);
    impl Recognizer for Slow {
        fn recognize(&self, samples: &[f32], _: &Grammar) -> Result<Recognition, AsrError> {
            let _g = self.1.lock().unwrap_or_else(|p| p.into_inner());
            self.0.fetch_add(1, Ordering::SeqCst);
            if samples.is_empty() {
                panic!("boom");
            }
            Ok(Recognition { text: format!("{}", samples.len()), ..Default::default() })
        }
    }

    #[test]
    fn full_queue_is_refused_and_panics_are_contained() {
        let done = Arc::new(AtomicUsize::new(0));
        let rec = Arc::new(Slow(done.clone(), Mutex::new(())));
        let guard = rec.1.lock().unwrap();
        let pool = RecognizerPool::new(rec.clone(), 1, 2);
        let g = Arc::new(Grammar::default());
        let a = pool.submit(Arc::new(vec![0.0; 3]), g.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(50)); // worker takes it and blocks
        let b = pool.submit(Arc::new(vec![]), g.clone()).unwrap();
        let c = pool.submit(Arc::new(vec![0.0; 5]), g.clone()).unwrap();
        assert_eq!(pool.submit(Arc::new(vec![0.0]), g.clone()).unwrap_err(), PoolError::Overloaded(2));
        drop(guard);
        assert_eq!(a.blocking_recv().unwrap().unwrap().text, "3");
        assert!(b.blocking_recv().unwrap().is_err(), "a panic becomes an error");
        assert_eq!(c.blocking_recv().unwrap().unwrap().text, "5", "the worker survived the panic");
    }
}
