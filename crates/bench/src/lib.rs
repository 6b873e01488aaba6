//! Benchmarks behind `hotline bench ...` (the `hotline-bench` binary):
//! they print Markdown tables that go into the README as measured.
pub mod asr;
pub mod calls;
mod freeswitch_caller;
pub mod grammar;
pub mod load;
pub mod soak;

/// Peak and current resident memory of this process in MB (Linux).
pub fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time this process has used so far, all threads, in ms (Linux; 0
/// elsewhere). Unlike wall-clock time it does not grow when other work
/// shares the cores.
pub fn cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

/// Clock ticks per second of the CPU times in `/proc/<pid>/task/<tid>/stat`:
/// Linux's `USER_HZ`, 100 on every architecture it reports to programs.
const USER_HZ: u64 = 100;

/// The CPU time each thread of this process has used so far (Linux; empty
/// elsewhere), to split a stretch of work by thread name with
/// [`ThreadCpu::since`].
#[derive(Debug, Clone, Default)]
pub struct ThreadCpu {
    /// Thread id → (name, user + system clock ticks).
    threads: std::collections::HashMap<u32, (String, u64)>,
}

/// Reads `/proc/self/task/*/stat` (utime + stime) and each thread's `comm`.
pub fn thread_cpu() -> ThreadCpu {
    let mut threads = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return ThreadCpu { threads } };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        // A thread that ends between listing and reading is skipped.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some(ticks) = stat_ticks(&stat) else { continue };
        let name =
            std::fs::read_to_string(task.path().join("comm")).map(|c| c.trim_end().to_string()).unwrap_or_default();
        threads.insert(tid, (name, ticks));
    }
    ThreadCpu { threads }
}

/// The id of the calling thread (Linux; `None` elsewhere), as listed in
/// `/proc/self/task`.
pub fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Renames thread `tid` of this process (Linux shortens names to 15 bytes).
pub fn rename_thread(tid: u32, name: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/self/task/{tid}/comm"), name)
}

/// utime + stime of one `stat` line. The name in parentheses may hold
/// spaces and parentheses itself, so the fields are counted from the last
/// `)`: state is the first after it, utime the 12th, stime the 13th.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

impl ThreadCpu {
    /// Each thread's id and name, as read.
    pub fn threads(&self) -> impl Iterator<Item = (u32, &str)> {
        self.threads.iter().map(|(tid, (name, _))| (*tid, name.as_str()))
    }

    /// CPU milliseconds used since `earlier`, summed by thread name.
    /// Threads started since count whole; threads that ended since are not
    /// counted (their time is no longer listed per thread).
    pub fn since(&self, earlier: &ThreadCpu) -> std::collections::BTreeMap<String, f64> {
        let mut by_name = std::collections::BTreeMap::new();
        for (tid, (name, ticks)) in &self.threads {
            // A thread id reused by a new thread starts from zero.
            let before = earlier.threads.get(tid).filter(|(n, t)| n == name && t <= ticks).map_or(0, |(_, t)| *t);
            *by_name.entry(name.clone()).or_insert(0.0) += (ticks - before) as f64 * 1000.0 / USER_HZ as f64;
        }
        by_name
    }
}

/// The value below which `p` of the sorted samples fall.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The latency below which `p` of the sorted samples fall; `None` without
/// samples.
pub fn percentile_ms(sorted: &[u64], p: f64) -> Option<u64> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[((last as f64 * p).round() as usize).min(last)])
}

/// One line describing the machine, for the README next to the figures.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} cores ({cpu})")
}

#[cfg(test)]
mod tests {
    use super::{percentile_ms, rename_thread, stat_ticks, thread_cpu, thread_id};
    use std::time::{Duration, Instant};

    #[test]
    fn thread_cpu_is_counted_under_the_threads_name() {
        let started = Instant::now();
        let before = thread_cpu();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let (spun_tx, spun_rx) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::Builder::new()
            .name("cpu-spin-test".into())
            .spawn(move || {
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_millis(150) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                let _ = spun_tx.send(());
                // Stays alive until read: an ended thread is no longer listed.
                let _ = done_rx.recv();
                x
            })
            .unwrap();
        spun_rx.recv().unwrap();
        let spinner_id = thread_cpu().threads().find(|(_, n)| *n == "cpu-spin-test").map(|(tid, _)| tid);
        assert!(spinner_id.is_some());
        assert_ne!(thread_id(), spinner_id, "the test's thread is not the spinner");
        let used = thread_cpu().since(&before);
        done_tx.send(()).unwrap();
        spinner.join().unwrap();
        let spun = used.get("cpu-spin-test").copied().unwrap_or(0.0);
        assert!(spun >= 50.0, "150 ms of spinning counted as {spun} ms: {used:?}");
        // One thread cannot use more CPU than the time that passed (plus a
        // tick each side).
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        assert!(spun <= wall + 20.0, "{spun} ms of CPU in {wall} ms: {used:?}");
    }

    #[test]
    fn a_thread_can_be_renamed_by_its_id() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (id_tx, id_rx) = std::sync::mpsc::channel();
        let t = std::thread::Builder::new()
            .name("before-rename".into())
            .spawn(move || {
                id_tx.send(thread_id()).unwrap();
                let _ = rx.recv();
                std::thread::current().id()
            })
            .unwrap();
        let tid = id_rx.recv().unwrap().expect("a thread id");
        rename_thread(tid, "after-rename").unwrap();
        let names: Vec<_> = thread_cpu().threads().filter(|(t, _)| *t == tid).map(|(_, n)| n.to_string()).collect();
        tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(names, ["after-rename"]);
    }

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A name with spaces and a parenthesis; utime 250, stime 40.
        let line = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 3 0 100 0 0\n";
        assert_eq!(stat_ticks(line), Some(290));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn latency_percentiles_pick_the_nearest_sample() {
        assert_eq!(percentile_ms(&[], 0.5), None);
        assert_eq!(percentile_ms(&[7], 0.95), Some(7));
        let ms: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_ms(&ms, 0.5), Some(51));
        assert_eq!(percentile_ms(&ms, 0.95), Some(95));
        assert_eq!(percentile_ms(&ms, 1.0), Some(100));
    }
}
