//! A caller on an emulated FreeSWITCH channel for `bench load --transport
//! audio_fork|audio_stream`: the module streams its audio in real time; the
//! caller waits for each prompt to finish playing on the channel, says the
//! word, and measures until the server broadcasts the next prompt.
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use testkit::freeswitch::{ChannelStart, FakeEsl, FsMediaClient, LiveChannel, Module};

/// A prompt is over when the channel played nothing for this long.
const PROMPT_DONE: Duration = Duration::from_millis(300);
/// The rate the module streams at.
const RATE: u32 = 16_000;

/// The figures of one call.
#[derive(Debug, Default)]
pub struct CallFigures {
    /// End of the caller's speech → the server's `uuid_broadcast` of the
    /// response prompt, per turn.
    pub latencies_ms: Vec<u64>,
    /// Gaps inside prompts (a file reached an idle channel right after the
    /// previous one ended).
    pub underruns: usize,
    /// Caller frames the module's buffer had to drop.
    pub dropped_frames: usize,
}

/// One caller on channel `uuid`, saying `clip` (whose words end at
/// `speech_end`) after each prompt; after `duration`, the channel hangs up.
/// The module writes the prompts' temp files into `dir`.
#[allow(clippy::too_many_arguments)]
pub async fn run_call(
    fs: &FakeEsl,
    dir: &Path,
    module: Module,
    addr: SocketAddr,
    uuid: String,
    clip: Vec<i16>,
    speech_end: Duration,
    duration: Duration,
) -> Result<CallFigures, String> {
    fs.add_channel(&uuid);
    let metadata =
        serde_json::json!({"uuid": uuid, "dialplan": "bench", "caller_id": "1000", "sampleRate": RATE}).to_string();
    let start = ChannelStart { uuid: &uuid, rate: RATE, metadata: &metadata, esl: fs.clone(), dir: dir.to_path_buf() };
    let client = match module {
        Module::AudioFork => FsMediaClient::try_connect_fork(addr, None, start).await,
        Module::AudioStream => FsMediaClient::try_connect_stream(addr, "/stream", start).await,
    };
    let client = client.inspect_err(|_| {
        fs.remove_channel(&uuid);
    })?;
    let channel = client.go_live();
    let result = turns(fs, &uuid, &channel, &clip, speech_end, duration).await;
    // Hang up: the module closes the websocket, the channel goes away.
    let (dropped_frames, received) = (channel.dropped_frames(), channel.received());
    channel.hang_up().await;
    let underruns = fs.remove_channel(&uuid).unwrap_or(0);
    if let Some(e) = received.errors.first() {
        return Err(format!("{} refused a message from the server: {e}", module.name()));
    }
    Ok(CallFigures { latencies_ms: result?, underruns, dropped_frames })
}

/// The caller's turns until `duration` is over: latencies in ms.
async fn turns(
    fs: &FakeEsl,
    uuid: &str,
    channel: &LiveChannel,
    clip: &[i16],
    speech_end: Duration,
    duration: Duration,
) -> Result<Vec<u64>, String> {
    let t_end = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut heard = 0;
    let closed = || channel.received().closed;
    while Instant::now() < t_end {
        // The prompt is over once the channel played nothing for a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = fs.playback(uuid, Instant::now()).ok_or("the channel is gone")?;
            if view.broadcasts > heard && view.idle_since.is_some_and(|t| t.elapsed() >= PROMPT_DONE) {
                heard = view.broadcasts;
                break;
            }
            if closed() {
                return Err("the server closed the stream".into());
            }
            if Instant::now() > deadline {
                return Err("a prompt never finished".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        channel.say(clip);
        let spoke_until = started + speech_end;
        let deadline = started + Duration::from_secs(15);
        let first = loop {
            let view = fs.playback(uuid, spoke_until).ok_or("the channel is gone")?;
            if view.broadcasts > heard {
                break view.first_broadcast_after.unwrap_or(spoke_until);
            }
            if closed() {
                return Err("the server closed the stream".into());
            }
            if Instant::now() > deadline {
                return Err("no response to speech".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        latencies.push(first.saturating_duration_since(spoke_until).as_millis() as u64);
    }
    Ok(latencies)
}

/// A channel UUID for bench call `n`.
pub fn channel_uuid(n: u32) -> String {
    format!("be9c0000-0000-4000-8000-{n:012x}")
}
