//! stdio transport: JSON-RPC on stdin/stdout, logs on stderr, clean exit on EOF after
//! in-flight calls finish; EOF first cancels the runtime's `stopping` token, so running
//! child processes are killed rather than waited for.
//!
//! rmcp reads parsed messages straight from stdin through [`incoming_messages`]: a line
//! that is not JSON (or not UTF-8) gets a JSON-RPC -32700 reply (rmcp alone would drop it
//! silently, or end the session on a bad byte), JSON that is not a message gets -32600
//! with its id, a line longer than `--stdio-max-line-bytes` is skipped without being held
//! and answered -32600, an unreadable notification is ignored, and the session keeps
//! serving. rmcp's messages and our replies are written to stdout
//! in place, a whole line at a time under one lock, so they never interleave. There is no
//! writer task: each extra task hand-off per call costs a cross-thread wake-up once tokio
//! stops running the woken task in place (after three in a row).

use std::{
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::fs::FileTypeExt,
    },
    sync::Arc,
};

use futures::{Sink, Stream};
use rmcp::{
    ServiceExt,
    service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage},
};
use serde_json::{Value, error::Category};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::unix::pipe,
    sync::Mutex,
};

use crate::server::CortexServer;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("stdio session failed to start: {0}")]
    Start(String),
    #[error("stdio session ended with an error: {0}")]
    Run(String),
}

const PARSE_ERROR: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the line is not valid JSON; send one JSON-RPC message per line"}}"#;

const NOT_UTF8: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the line is not valid UTF-8; send one UTF-8 JSON-RPC message per line"}}"#;

/// Serves on the process's stdin/stdout until stdin closes.
///
/// When they are pipes or sockets (clients spawn servers with one or the other: Node's
/// `child_process` uses socket pairs), they are read and written through the reactor;
/// tokio's `stdin()`/`stdout()` hand every read and write to a blocking thread, which
/// costs two thread wake-ups per message each way. Terminals and files keep those.
pub async fn serve(server: CortexServer) -> Result<(), StdioError> {
    let input: Box<dyn AsyncRead + Unpin + Send> = match reactor_stream(std::io::stdin().as_fd()) {
        Some(StdStream::Pipe(file)) => match pipe::Receiver::from_file(file) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdin()),
        },
        Some(StdStream::Socket(socket)) => Box::new(socket),
        None => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn AsyncWrite + Unpin + Send> = match reactor_stream(std::io::stdout().as_fd())
    {
        Some(StdStream::Pipe(file)) => match pipe::Sender::from_file(file) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdout()),
        },
        Some(StdStream::Socket(socket)) => Box::new(socket),
        None => Box::new(tokio::io::stdout()),
    };
    serve_on(server, input, output).await
}

/// A standard stream the reactor can drive.
enum StdStream {
    Pipe(std::fs::File),
    Socket(tokio::net::UnixStream),
}

/// A duplicate of `fd` as a pipe or a (non-blocking) socket, or `None` for anything else
/// (a terminal, a file) or on any error.
fn reactor_stream(fd: BorrowedFd<'_>) -> Option<StdStream> {
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let kind = file.metadata().ok()?.file_type();
    if kind.is_fifo() {
        return Some(StdStream::Pipe(file));
    }
    if !kind.is_socket() {
        return None;
    }
    let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
    socket.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(socket)
        .ok()
        .map(StdStream::Socket)
}

/// Serves on any reader/writer pair (tests use pipes).
pub async fn serve_on<R, W>(server: CortexServer, input: R, output: W) -> Result<(), StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let max_line = server.runtime().config.limits.stdio_max_line_bytes;
    let output = Arc::new(Mutex::new(output));
    let stopping = server.runtime().stopping.clone();
    let incoming = incoming_messages(input, max_line, output.clone(), stopping);
    let outgoing = outgoing_messages(output);
    let running = server
        .for_session()
        .serve((outgoing, incoming))
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    let result = running
        .waiting()
        .await
        .map_err(|e| StdioError::Run(e.to_string()));
    result.map(|_| ())
}

/// What one line of stdin is.
enum Incoming {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Nothing to do (a blank line, or a notification this server does not know).
    Skip,
    /// An error reply to send back.
    Reply(String),
}

/// One line of stdin, without its newline.
enum Line {
    Bytes(Vec<u8>),
    /// Longer than the limit: its bytes were dropped as they came.
    TooLong(usize),
}

/// stdin split into lines that never hold more than `max` bytes.
struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// The next line, or `None` at end of input.
    async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut too_long: Option<usize> = None;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(match too_long {
                    Some(n) => Some(Line::TooLong(n)),
                    None if line.is_empty() => None,
                    None => Some(Line::Bytes(line)),
                });
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            match &mut too_long {
                Some(n) => *n += chunk.len(),
                None if line.len() + chunk.len() > self.max => {
                    too_long = Some(line.len() + chunk.len());
                    line = Vec::new();
                }
                None => line.extend_from_slice(chunk),
            }
            let used = newline.map_or(available.len(), |i| i + 1);
            self.inner.consume(used);
            if newline.is_some() {
                return Ok(Some(match too_long {
                    Some(n) => Line::TooLong(n),
                    None => Line::Bytes(line),
                }));
            }
        }
    }
}

/// The -32600 reply to a line over the limit.
fn too_long_reply(len: usize, max: usize) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32600,
            "message": format!("Invalid Request: a line of {len} bytes is over the {max}-byte limit (--stdio-max-line-bytes) and was skipped; send smaller messages"),
        },
    })
    .to_string()
}

/// Parses one line of bytes: a message for rmcp, or the JSON-RPC error that answers it.
fn classify_bytes(line: &[u8]) -> Incoming {
    match std::str::from_utf8(line) {
        Ok(text) => classify(text),
        Err(_) => {
            tracing::warn!("stdin: dropped a line that is not UTF-8");
            Incoming::Reply(NOT_UTF8.to_string())
        }
    }
}

/// Parses one line: a message for rmcp, or the JSON-RPC error that answers it.
fn classify(line: &str) -> Incoming {
    let line = line.trim_start_matches('\u{feff}');
    if line.trim().is_empty() {
        return Incoming::Skip;
    }
    let err = match serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => return Incoming::Message(Box::new(message)),
        Err(err) => err,
    };
    if matches!(err.classify(), Category::Syntax | Category::Eof) {
        tracing::warn!("stdin: dropped a line that is not JSON");
        return Incoming::Reply(PARSE_ERROR.to_string());
    }
    let value: Value = serde_json::from_str(line).unwrap_or_default();
    if value.get("method").is_some() && value.get("id").is_none() {
        // A notification gets no answer (JSON-RPC), even one this server cannot read.
        tracing::debug!("stdin: ignored a notification that is not understood: {err}");
        return Incoming::Skip;
    }
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    Incoming::Reply(
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": -32600, "message": format!("Invalid Request: {err}")},
        })
        .to_string(),
    )
}

/// stdin as a stream of messages, read by rmcp's service loop itself (no task or pipe in
/// between). Lines that are not messages are answered on `output`. At EOF `stopping` is
/// cancelled: work that outlives requests (child processes) stops at once.
fn incoming_messages<R, W>(
    input: R,
    max_line: usize,
    output: Arc<Mutex<W>>,
    stopping: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = RxJsonRpcMessage<RoleServer>> + Send + Unpin + 'static
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let lines = LineReader {
        inner: BufReader::new(input),
        max: max_line,
    };
    Box::pin(futures::stream::unfold(
        (lines, output, stopping),
        |(mut lines, output, stopping)| async move {
            loop {
                let incoming = match lines.next_line().await {
                    Ok(Some(Line::Bytes(line))) => classify_bytes(&line),
                    Ok(Some(Line::TooLong(len))) => {
                        tracing::warn!(len, "stdin: skipped a line over the length limit");
                        Incoming::Reply(too_long_reply(len, lines.max))
                    }
                    Ok(None) => {
                        stopping.cancel();
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!("stdin: read failed, ending the session: {e}");
                        stopping.cancel();
                        return None;
                    }
                };
                match incoming {
                    Incoming::Message(message) => {
                        return Some((*message, (lines, output, stopping)));
                    }
                    Incoming::Skip => {}
                    Incoming::Reply(reply) => {
                        if write_line(&output, reply).await.is_err() {
                            return None;
                        }
                    }
                }
            }
        },
    ))
}

/// rmcp's outgoing messages, one line each, written to stdout as they come.
fn outgoing_messages<W>(
    output: Arc<Mutex<W>>,
) -> impl Sink<TxJsonRpcMessage<RoleServer>, Error = std::io::Error> + Send + Unpin + 'static
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(futures::sink::unfold(
        output,
        |output, message: TxJsonRpcMessage<RoleServer>| async move {
            let line = serde_json::to_string(&message).map_err(std::io::Error::other)?;
            write_line(&output, line).await?;
            Ok::<_, std::io::Error>(output)
        },
    ))
}

/// Writes `line` and its newline in one write where the stream takes it, and flushes.
async fn write_line<W: AsyncWrite + Unpin>(
    output: &Mutex<W>,
    mut line: String,
) -> std::io::Result<()> {
    line.push('\n');
    let mut output = output.lock().await;
    output.write_all(line.as_bytes()).await?;
    output.flush().await
}
