//! A bounded pool of OS threads for recognition, shared fairly by the calls.
//!
//! Decoding is CPU-bound and blocking, so it never runs on async workers.
//! Jobs wait in a bounded queue; when it is full, [`RecognizerPool::submit`]
//! fails at once with [`PoolError::Overloaded`] and the call falls back to
//! keys for that answer instead of stalling.
//!
//! Fairness: a call ([`CallerId`]) has at most one utterance waiting. A
//! newer one takes the place of the one still waiting (whose answer nobody
//! wants any more: the call machine only acts on its latest request), so a
//! call that floods the pool with utterances cannot fill the queue, and
//! workers take the utterance of a call that is not being decoded already
//! before a second one of a call that is.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{AsrError, Grammar, Recognition, RecognitionError, Recognizer};

pub type Reply = oneshot::Receiver<Result<Recognition, AsrError>>;

/// One call's identity in the pool (see [`RecognizerPool::caller`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerId(u64);

struct Job {
    /// `None` for one-off work (command-line tools): never replaced.
    caller: Option<CallerId>,
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

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    /// Calls with an utterance being decoded right now.
    decoding: Vec<CallerId>,
    closed: bool,
}

impl Queue {
    /// The next job: the first one of a call not being decoded already,
    /// else the first one.
    fn take_next(&mut self) -> Option<Job> {
        let fair = self.waiting.iter().position(|j| j.caller.is_none_or(|c| !self.decoding.contains(&c)));
        let job = self.waiting.remove(fair.unwrap_or(0))?;
        if let Some(c) = job.caller {
            self.decoding.push(c);
        }
        Some(job)
    }

    fn done(&mut self, caller: Option<CallerId>) {
        if let Some(pos) = caller.and_then(|c| self.decoding.iter().position(|d| *d == c)) {
            self.decoding.swap_remove(pos);
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct RecognizerPool {
    shared: Arc<Shared>,
    capacity: usize,
    next_caller: AtomicU64,
    workers: Vec<JoinHandle<()>>,
}

impl RecognizerPool {
    /// `threads` workers (0 = number of cores) sharing one recogniser, and
    /// room for `queue` waiting utterances.
    pub fn new(recognizer: Arc<dyn Recognizer>, threads: usize, queue: usize) -> Self {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), ready: Condvar::new() });
        let workers = (0..threads)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let rec = Arc::clone(&recognizer);
                std::thread::Builder::new()
                    .name(format!("asr-{i}"))
                    .spawn(move || work(&shared, rec.as_ref()))
                    .expect("spawning a recognition thread")
            })
            .collect();
        RecognizerPool { shared, capacity: queue.max(1), next_caller: AtomicU64::new(1), workers }
    }

    /// A new identity for one call's utterances.
    /// Utterances waiting for a recognition thread now.
    pub fn queued(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    pub fn caller(&self) -> CallerId {
        CallerId(self.next_caller.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues one utterance; the answer arrives on the returned channel.
    pub fn submit(&self, samples: Arc<Vec<f32>>, grammar: Arc<Grammar>) -> Result<Reply, PoolError> {
        self.enqueue(None, samples, grammar)
    }

    /// Queues one utterance of `caller`. If the call still has one waiting,
    /// this one takes its place in the queue and the older one is answered
    /// with [`AsrError::Superseded`].
    pub fn submit_for(
        &self,
        caller: CallerId,
        samples: Arc<Vec<f32>>,
        grammar: Arc<Grammar>,
    ) -> Result<Reply, PoolError> {
        self.enqueue(Some(caller), samples, grammar)
    }

    fn enqueue(
        &self,
        caller: Option<CallerId>,
        samples: Arc<Vec<f32>>,
        grammar: Arc<Grammar>,
    ) -> Result<Reply, PoolError> {
        let (reply, rx) = oneshot::channel();
        let job = Job { caller, samples, grammar, reply };
        let mut q = self.shared.lock();
        if q.closed {
            return Err(PoolError::Closed);
        }
        let stale = caller.and_then(|c| q.waiting.iter().position(|j| j.caller == Some(c)));
        match stale {
            Some(pos) => {
                let old = std::mem::replace(&mut q.waiting[pos], job);
                let _ = old.reply.send(Err(AsrError::Superseded));
            }
            None if q.waiting.len() >= self.capacity => {
                crate::metrics::recognizer_overloaded();
                return Err(PoolError::Overloaded(self.capacity));
            }
            None => q.waiting.push_back(job),
        }
        drop(q);
        self.shared.ready.notify_one();
        Ok(rx)
    }

    /// Blocking convenience for command-line tools.
    pub fn recognize_blocking(&self, samples: Arc<Vec<f32>>, grammar: Arc<Grammar>) -> Result<Recognition, AsrError> {
        let rx = self.submit(samples, grammar).map_err(RecognitionError::from)?;
        rx.blocking_recv().unwrap_or_else(|_| Err(RecognitionError::WorkerStopped.into()))
    }
}

/// One worker thread: decodes jobs until the pool is dropped.
fn work(shared: &Shared, recognizer: &dyn Recognizer) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if let Some(job) = q.take_next() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        // A panic inside the engine must not take the worker (and with it
        // every later call) down.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| recognizer.recognize(&job.samples, &job.grammar)))
                .unwrap_or_else(|_| Err(RecognitionError::Panicked.into()));
        shared.lock().done(job.caller);
        let _ = job.reply.send(result);
    }
}

impl Drop for RecognizerPool {
    fn drop(&mut self) {
        // Workers finish what is queued, then stop.
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
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

    #[test]
    fn a_flooding_call_keeps_one_waiting_utterance_and_others_go_first() {
        let done = Arc::new(AtomicUsize::new(0));
        let rec = Arc::new(Slow(done.clone(), Mutex::new(())));
        let guard = rec.1.lock().unwrap();
        let pool = RecognizerPool::new(rec.clone(), 1, 2);
        let g = Arc::new(Grammar::default());
        let (flood, calm) = (pool.caller(), pool.caller());
        let running = pool.submit_for(flood, Arc::new(vec![0.0; 1]), g.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(50)); // the worker blocks on it
                                                       // The flooding call sends utterance after utterance: each replaces
                                                       // the one it had waiting, so the queue never fills up.
        let mut stale = Vec::new();
        for n in 2..10 {
            stale.push(pool.submit_for(flood, Arc::new(vec![0.0; n]), g.clone()).unwrap());
        }
        let latest = stale.pop().unwrap();
        let calm_reply = pool.submit_for(calm, Arc::new(vec![0.0; 100]), g.clone()).expect("room for the other call");
        drop(guard);
        assert_eq!(running.blocking_recv().unwrap().unwrap().text, "1");
        for r in stale {
            assert!(matches!(r.blocking_recv().unwrap(), Err(AsrError::Superseded)));
        }
        assert_eq!(calm_reply.blocking_recv().unwrap().unwrap().text, "100");
        assert_eq!(latest.blocking_recv().unwrap().unwrap().text, "9");
        assert_eq!(done.load(Ordering::SeqCst), 3, "superseded utterances are never decoded");
    }

    #[test]
    fn a_call_not_being_decoded_goes_before_one_that_is() {
        let job = |caller: u64| Job {
            caller: Some(CallerId(caller)),
            samples: Arc::new(vec![]),
            grammar: Arc::new(Grammar::default()),
            reply: oneshot::channel().0,
        };
        let mut q = Queue::default();
        q.waiting.extend([job(1), job(1), job(2)]);
        assert_eq!(q.take_next().unwrap().caller, Some(CallerId(1)));
        assert_eq!(q.take_next().unwrap().caller, Some(CallerId(2)), "call 1 is being decoded");
        assert_eq!(q.take_next().unwrap().caller, Some(CallerId(1)), "nothing else waits");
        q.done(Some(CallerId(1)));
        q.done(Some(CallerId(1)));
        assert!(q.decoding == vec![CallerId(2)]);
    }
}
