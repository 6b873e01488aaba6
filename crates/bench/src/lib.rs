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
    use super::percentile_ms;

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
