//! The socket of one call, whatever the transport: a websocket (Asterisk
//! chan_websocket, FreeSWITCH, Twilio) or a raw TCP stream (AudioSocket).
//! The call driver sees only [`WireMessage`]s in and out.
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::pbx::WireMessage;

/// A write that does not finish in this time means the peer stopped
/// reading; the call is ended rather than left hanging.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from a TCP stream at once (AudioSocket frames are ≤ 16 KiB
/// and reassembled by the codec's bounded decoder).
const TCP_READ: usize = 8 * 1024;

/// Why a message could not be written to the call's connection.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("websocket write failed: {0}")]
    Websocket(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("TCP write failed: {0}")]
    Tcp(#[source] std::io::Error),
    #[error("TCP shutdown failed: {0}")]
    TcpShutdown(#[source] std::io::Error),
    /// A codec bug: AudioSocket is a binary stream.
    #[error("a text message cannot go on a binary stream")]
    TextOnBinaryStream,
    #[error("peer did not read for {} s", WRITE_TIMEOUT.as_secs())]
    PeerNotReading,
}

pub enum Received {
    Message(WireMessage),
    /// The peer closed the connection (for websockets: a close frame).
    Closed(String),
    Failed(String),
}

enum Io {
    Ws {
        sink: SplitSink<WebSocketStream<TcpStream>, Message>,
        stream: SplitStream<WebSocketStream<TcpStream>>,
    },
    /// `first`: bytes already read before the call started (given out first).
    Tcp {
        read: OwnedReadHalf,
        write: OwnedWriteHalf,
        buf: Vec<u8>,
        eof: bool,
        first: Option<Vec<u8>>,
    },
}

pub struct Link {
    io: Io,
    last_sent: Instant,
}

impl Link {
    pub fn websocket(ws: WebSocketStream<TcpStream>) -> Link {
        let (sink, stream) = ws.split();
        Link { io: Io::Ws { sink, stream }, last_sent: Instant::now() }
    }

    /// `first`: what was read from the stream already (the AudioSocket UUID
    /// message, read before a call slot is taken).
    pub fn tcp(stream: TcpStream, first: Vec<u8>) -> Link {
        let (read, write) = stream.into_split();
        let first = Some(first).filter(|f| !f.is_empty());
        Link { io: Io::Tcp { read, write, buf: vec![0; TCP_READ], eof: false, first }, last_sent: Instant::now() }
    }

    /// When something was last written (for keep-alives).
    pub fn last_sent(&self) -> Instant {
        self.last_sent
    }

    /// The next message. Cancel-safe, so it can sit in a `select!`. The
    /// end of a TCP stream is first given as `WireMessage::Close` (the
    /// codec knows whether it came in the middle of a message), then as
    /// `Closed`.
    pub async fn recv(&mut self) -> Received {
        match &mut self.io {
            Io::Ws { stream, .. } => loop {
                return match stream.next().await {
                    None => Received::Closed("connection closed without a close frame".into()),
                    Some(Err(e)) => Received::Failed(format!("websocket error: {e}")),
                    Some(Ok(Message::Text(t))) => Received::Message(WireMessage::Text(t.to_string())),
                    Some(Ok(Message::Binary(b))) => Received::Message(WireMessage::Binary(b.to_vec())),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                        Received::Closed(format!("the PBX closed the websocket ({code})"))
                    }
                    // Ping/pong are answered by the library.
                    Some(Ok(_)) => continue,
                };
            },
            Io::Tcp { read, buf, eof, first, .. } => {
                if let Some(bytes) = first.take() {
                    return Received::Message(WireMessage::Binary(bytes));
                }
                if *eof {
                    return Received::Closed("connection closed".into());
                }
                match read.read(buf).await {
                    Ok(0) => {
                        *eof = true;
                        Received::Message(WireMessage::Close)
                    }
                    Ok(n) => Received::Message(WireMessage::Binary(buf[..n].to_vec())),
                    Err(e) => Received::Failed(format!("TCP read failed: {e}")),
                }
            }
        }
    }

    pub async fn send(&mut self, m: WireMessage) -> Result<(), SendError> {
        self.last_sent = Instant::now();
        let write = async {
            match (&mut self.io, m) {
                (Io::Ws { sink, .. }, m) => {
                    let msg = match m {
                        WireMessage::Text(t) => Message::text(t),
                        WireMessage::Binary(b) => Message::binary(b),
                        WireMessage::Close => Message::Close(None),
                    };
                    sink.send(msg).await.map_err(SendError::Websocket)
                }
                (Io::Tcp { write, .. }, WireMessage::Binary(b)) => write.write_all(&b).await.map_err(SendError::Tcp),
                (Io::Tcp { write, .. }, WireMessage::Close) => write.shutdown().await.map_err(SendError::TcpShutdown),
                (Io::Tcp { .. }, WireMessage::Text(_)) => Err(SendError::TextOnBinaryStream),
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r,
            Err(_) => Err(SendError::PeerNotReading),
        }
    }

    /// Reads until the peer closes (or `wait` passes), after we hung up.
    pub async fn wait_close(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, async {
            loop {
                match self.recv().await {
                    Received::Message(WireMessage::Close) => continue,
                    Received::Message(_) => continue,
                    Received::Closed(_) | Received::Failed(_) => break,
                }
            }
        })
        .await;
    }

    /// Closes our side (websocket close / TCP shutdown).
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
            match &mut self.io {
                Io::Ws { sink, .. } => {
                    let _ = sink.close().await;
                }
                Io::Tcp { write, .. } => {
                    let _ = write.shutdown().await;
                }
            }
        })
        .await;
    }
}
