//! stdio transport: JSON-RPC on stdin/stdout, logs on stderr, clean exit on EOF after
//! in-flight calls finish.
//!
//! stdin passes through a line filter before rmcp sees it: a line that is not JSON gets
//! a JSON-RPC -32700 reply and the session keeps serving (rmcp alone would drop it).
//! Both rmcp's replies and ours go to stdout through one writer task, a whole line at a
//! time, so they never interleave.

use std::os::{
    fd::{AsFd, BorrowedFd, OwnedFd},
    unix::fs::FileTypeExt,
};

use rmcp::ServiceExt;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::unix::pipe,
    sync::mpsc,
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

/// Serves on the process's stdin/stdout until stdin closes.
///
/// When they are pipes or sockets (clients spawn servers with one or the other: Node's
/// `child_process` uses socket pairs), they are read and written through the reactor;
/// tokio's `stdin()`/`stdout()` hand every read and write to a blocking thread, which
/// costs two thread wake-ups per message each way. Terminals and files keep those.
pub async fn serve(server: CortexServer) -> Result<(), StdioError> {
    let input: Box<dyn AsyncRead + Unpin + Send> = match reactor_stream(std::io::stdin().as_fd()) {
        Some(Stream::Pipe(file)) => match pipe::Receiver::from_file(file) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdin()),
        },
        Some(Stream::Socket(socket)) => Box::new(socket),
        None => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn AsyncWrite + Unpin + Send> = match reactor_stream(std::io::stdout().as_fd())
    {
        Some(Stream::Pipe(file)) => match pipe::Sender::from_file(file) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdout()),
        },
        Some(Stream::Socket(socket)) => Box::new(socket),
        None => Box::new(tokio::io::stdout()),
    };
    serve_on(server, input, output).await
}

/// A standard stream the reactor can drive.
enum Stream {
    Pipe(std::fs::File),
    Socket(tokio::net::UnixStream),
}

/// A duplicate of `fd` as a pipe or a (non-blocking) socket, or `None` for anything else
/// (a terminal, a file) or on any error.
fn reactor_stream(fd: BorrowedFd<'_>) -> Option<Stream> {
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let kind = file.metadata().ok()?.file_type();
    if kind.is_fifo() {
        return Some(Stream::Pipe(file));
    }
    if !kind.is_socket() {
        return None;
    }
    let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
    socket.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(socket)
        .ok()
        .map(Stream::Socket)
}

/// Serves on any reader/writer pair (tests use pipes).
pub async fn serve_on<R, W>(server: CortexServer, input: R, output: W) -> Result<(), StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (lines_tx, lines_rx) = mpsc::channel::<String>(256);
    let (to_server, server_in) = tokio::io::duplex(1 << 20);
    let (server_out, from_server) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(write_lines(lines_rx, output));
    let filter = tokio::spawn(filter_input(input, to_server, lines_tx.clone()));
    let relay = tokio::spawn(relay_output(from_server, lines_tx));
    let running = server
        .serve((server_in, server_out))
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    let result = running
        .waiting()
        .await
        .map_err(|e| StdioError::Run(e.to_string()));
    filter.abort();
    let _ = relay.await;
    let _ = writer.await;
    result.map(|_| ())
}

async fn filter_input<R: AsyncRead + Unpin>(
    input: R,
    mut to_server: tokio::io::DuplexStream,
    replies: mpsc::Sender<String>,
) {
    let mut lines = BufReader::new(input).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&line).is_err() {
            tracing::warn!("stdin: dropped a line that is not JSON");
            if replies.send(PARSE_ERROR.to_string()).await.is_err() {
                break;
            }
            continue;
        }
        if to_server.write_all(line.as_bytes()).await.is_err()
            || to_server.write_all(b"\n").await.is_err()
        {
            break;
        }
    }
    let _ = to_server.shutdown().await;
}

async fn relay_output(from_server: tokio::io::DuplexStream, lines: mpsc::Sender<String>) {
    let mut reader = BufReader::new(from_server).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send(line).await.is_err() {
            break;
        }
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut lines: mpsc::Receiver<String>, mut output: W) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if output.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        // Flush only when no other line is ready, so bursts go out in one write.
        if lines.is_empty() && output.flush().await.is_err() {
            break;
        }
    }
    let _ = output.flush().await;
}
