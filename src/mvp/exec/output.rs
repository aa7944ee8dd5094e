//! Reading a child's stdout or stderr: line by line (each line capped), redacted before it
//! is stored or streamed, and the stored text capped with a truncation marker.
//!
//! Owns only the reading; starting and stopping processes is the executor's.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{LineSink, Redactor, Stream, TRUNCATION_MARKER};

/// Longest line kept before redaction (longer lines are cut, then redacted).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads a stream line by line, redacting each line before it is stored or streamed.
pub(super) async fn collect<R: AsyncRead + Unpin>(
    reader: R,
    stream: Stream,
    cap: usize,
    redactor: Redactor,
    sink: Option<LineSink>,
) -> (String, bool) {
    let mut reader = BufReader::new(reader);
    let mut out = String::new();
    let mut truncated = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_capped(&mut reader, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let raw = String::from_utf8_lossy(&buf);
        let line = redactor.line(raw.trim_end_matches(['\n', '\r']));
        if let Some(sink) = &sink {
            sink(stream, &line);
        }
        if truncated {
            continue; // keep draining so the child never blocks on a full pipe
        }
        if out.len() + line.len() + 1 > cap {
            let room = cap.saturating_sub(out.len());
            let mut end = room.min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str(&line[..end]);
            out.push_str(TRUNCATION_MARKER);
            truncated = true;
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    (out, truncated)
}

/// Reads up to and including `\n`, keeping at most [`MAX_LINE_BYTES`] of the line.
async fn read_line_capped<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        reader.consume(n);
        total += n;
        if done {
            return Ok(total);
        }
    }
}
