//! Caller audio is taken in at most in real time. A PBX sends a call's
//! audio as it is spoken; a peer that sends it faster (a misbehaving or
//! hostile client: 600 s of audio in 3 s) would otherwise make the server
//! run the voice detector and the recogniser for audio nobody spoke, at the
//! cost of every other call. Audio beyond real time plus a burst is
//! dropped.
use std::time::{Duration, Instant};

/// How far ahead of real time a call's audio may arrive. mod_audio_fork
/// sends what accumulated in its buffer after a stall, at most
/// `MOD_AUDIO_FORK_BUFFER_SECS` (≤ 5 s, PROTOCOLS.md §4), all at once;
/// nothing legitimate comes further ahead.
pub const AUDIO_BURST: Duration = Duration::from_secs(5);

/// A token bucket counted in samples: it fills at the call's sample rate up
/// to [`AUDIO_BURST`], and each admitted frame takes its samples out.
pub struct AudioPacer {
    rate: u32,
    /// Samples that may be admitted now.
    credit: f64,
    last: Instant,
    /// Samples and frames dropped so far.
    dropped: u64,
    dropped_frames: u64,
}

impl AudioPacer {
    /// A call whose audio has `rate` samples per second, starting `now`
    /// with a full burst.
    pub fn new(rate: u32, now: Instant) -> Self {
        AudioPacer { rate, credit: Self::burst(rate), last: now, dropped: 0, dropped_frames: 0 }
    }

    fn burst(rate: u32) -> f64 {
        rate as f64 * AUDIO_BURST.as_secs_f64()
    }

    /// Whether a frame of `samples` arriving `now` is within real time;
    /// `false` means it is to be dropped.
    pub fn admit(&mut self, now: Instant, samples: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.credit = (self.credit + elapsed * self.rate as f64).min(Self::burst(self.rate));
        if samples as f64 <= self.credit {
            self.credit -= samples as f64;
            return true;
        }
        self.dropped += samples as u64;
        self.dropped_frames += 1;
        false
    }

    /// The last frame refused was the call's first (to say so once).
    pub fn first_drop(&self) -> bool {
        self.dropped_frames == 1
    }

    /// Milliseconds of audio dropped so far.
    pub fn dropped_ms(&self) -> u64 {
        self.dropped * 1000 / self.rate.max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_in_real_time_passes_and_a_flood_is_cut_to_the_burst() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::new(8000, t0);
        // A minute of 20 ms frames at their real pace: all admitted.
        for i in 0..3000u64 {
            assert!(pacer.admit(t0 + Duration::from_millis(20 * i), 160), "frame {i}");
        }
        assert_eq!(pacer.dropped_ms(), 0);
        // Ten minutes of frames within one second: the burst and the
        // second's worth get in, the rest is dropped.
        let t1 = t0 + Duration::from_secs(60);
        let admitted = (0..30_000u64).filter(|i| pacer.admit(t1 + Duration::from_micros(33 * i), 160)).count();
        let admitted_ms = admitted as u64 * 20;
        assert!((5_000..=6_100).contains(&admitted_ms), "{admitted_ms} ms admitted");
        assert_eq!(pacer.dropped_ms(), 600_000 - admitted_ms);
    }
}
