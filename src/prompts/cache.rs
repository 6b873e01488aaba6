//! Rendered prompts on disk (survive restarts) and in memory (a hot server
//! does not re-read files).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::audio::{read_wav, write_wav, WavError};

/// Hex SHA-256 of the parts, each length-prefixed so no two different lists
/// of parts hash alike.
pub fn content_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `dir/<key>.wav`, one file per rendered prompt and rate.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DiskCache {
    pub fn new(dir: PathBuf) -> Self {
        DiskCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.wav"))
    }

    /// The cached samples, if a readable file at the right rate is there. A
    /// damaged file counts as a miss (it is rendered again and replaced).
    pub fn load(&self, key: &str, rate: u32) -> Option<Vec<i16>> {
        let path = self.path(key);
        match read_wav(&path) {
            Ok(audio) if audio.rate == rate && audio.downmixed_from.is_none() => Some(audio.samples),
            Ok(audio) => {
                tracing::warn!(file = %path.display(), rate = audio.rate, want = rate, "cached prompt has the wrong format; rendering again");
                None
            }
            Err(WavError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cached prompt unreadable; rendering again");
                None
            }
        }
    }

    /// Writes atomically: a temporary file in the same folder, renamed into
    /// place, so a crash or a concurrent reader never sees half a file.
    pub fn store(&self, key: &str, rate: u32, samples: &[i16]) -> Result<PathBuf, WavError> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        let written =
            write_wav(&temp, rate, samples).and_then(|()| std::fs::rename(&temp, &path).map_err(WavError::Io));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map(|()| path)
    }
}

/// Least-recently-used map of rendered prompts, bounded in entries and in
/// bytes of samples.
pub struct MemoryCache {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, (Arc<Vec<i16>>, u64)>,
    bytes: usize,
    clock: u64,
}

impl MemoryCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        MemoryCache { max_entries, max_bytes, inner: Mutex::new(Lru::default()) }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Vec<i16>>> {
        let mut lru = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        lru.entries.get_mut(key).map(|(samples, used)| {
            *used = now;
            Arc::clone(samples)
        })
    }

    pub fn insert(&self, key: String, samples: Arc<Vec<i16>>) {
        let size = samples.len() * std::mem::size_of::<i16>();
        if size > self.max_bytes || self.max_entries == 0 {
            return; // would evict everything else and still not fit
        }
        let mut lru = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        if let Some((old, _)) = lru.entries.insert(key, (samples, now)) {
            lru.bytes -= old.len() * std::mem::size_of::<i16>();
        }
        lru.bytes += size;
        // Linear scan for the oldest: the map holds a few hundred prompts
        // at most, and inserts happen once per prompt and rate.
        while lru.entries.len() > self.max_entries || lru.bytes > self.max_bytes {
            let Some(oldest) = lru.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some((gone, _)) = lru.entries.remove(&oldest) {
                lru.bytes -= gone.len() * std::mem::size_of::<i16>();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_parts() {
        assert_ne!(content_hash(&["ab", "c"]), content_hash(&["a", "bc"]));
        assert_eq!(content_hash(&["x"]).len(), 64);
    }

    #[test]
    fn memory_cache_evicts_least_recently_used_within_both_bounds() {
        let m = MemoryCache::new(2, 1000);
        m.insert("a".into(), Arc::new(vec![0; 100]));
        m.insert("b".into(), Arc::new(vec![0; 100]));
        assert!(m.get("a").is_some()); // a is now newer than b
        m.insert("c".into(), Arc::new(vec![0; 100]));
        assert!(m.get("b").is_none() && m.get("a").is_some() && m.get("c").is_some());
        // 450 samples = 900 bytes: neither a nor c (200 bytes each) fits beside it.
        m.insert("d".into(), Arc::new(vec![0; 450]));
        assert_eq!(m.len(), 1);
        assert!(m.get("d").is_some());
        // Bigger than the whole budget: not kept, nothing else evicted.
        m.insert("huge".into(), Arc::new(vec![0; 600]));
        assert!(m.get("huge").is_none() && m.get("d").is_some());
    }

    #[test]
    fn disk_cache_round_trips_and_treats_damage_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().join("sub"));
        assert!(cache.load("k", 8000).is_none());
        let samples: Vec<i16> = (0..800).map(|i| i as i16).collect();
        let path = cache.store("k", 8000, &samples).unwrap();
        assert_eq!(cache.load("k", 8000).unwrap(), samples);
        assert!(cache.load("k", 16000).is_none(), "wrong rate is a miss");
        std::fs::write(&path, b"RIFF").unwrap();
        assert!(cache.load("k", 8000).is_none());
        let leftovers: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
