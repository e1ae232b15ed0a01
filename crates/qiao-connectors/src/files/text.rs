//! The text layer under every parser: decodes the configured encoding to UTF-8 as a
//! stream, refuses invalid bytes with their offset, hashes the raw bytes and counts lines.

use super::Encoding;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, BufRead, Read};

/// Raw bytes read from the file at a time, and decoded bytes held at a time.
const CHUNK: usize = 64 * 1024;

/// A problem found by the text layer; travels inside an `io::Error` through the parsers.
#[derive(Debug, Clone)]
pub(crate) enum TextError {
    /// Bytes that are not valid in the configured encoding.
    Decode {
        /// Byte offset of the first bad byte in the file.
        offset: u64,
        /// Line of the bad byte (1-based).
        line: u64,
        /// The encoding the system is configured with.
        configured: Encoding,
    },
    /// More than the budget consumed since the last [`TextReader::reset_budget`].
    TooLarge {
        /// Line where the budget was last reset (the start of the oversized unit).
        line: u64,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Decode { offset, .. } => write!(f, "invalid text at byte offset {offset}"),
            TextError::TooLarge { line } => write!(f, "unit starting at line {line} too large"),
        }
    }
}

impl std::error::Error for TextError {}

/// Decoded UTF-8 text of a raw byte stream, read through [`BufRead`].
pub(crate) struct TextReader<R> {
    raw: R,
    decoder: encoding_rs::Decoder,
    configured: Encoding,
    input: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    raw_eof: bool,
    finished: bool,
    /// Raw bytes handed to the decoder so far.
    raw_offset: u64,
    out: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    bom_checked: bool,
    hasher: Sha256,
    /// Newlines in all decoded output so far (for the line of a decoding error).
    decoded_newlines: u64,
    /// Newlines in the output the parser consumed (its current line).
    consumed_newlines: u64,
    budget: u64,
    budget_used: u64,
    budget_line: u64,
    pending: Option<TextError>,
}

impl<R: Read> TextReader<R> {
    /// Reads `raw` as text in `encoding`.
    pub fn new(raw: R, encoding: Encoding) -> Self {
        TextReader {
            raw,
            // Byte order marks are sniffed: a UTF-8 BOM means UTF-8 whatever is configured.
            decoder: encoding.decoder_encoding().new_decoder(),
            configured: encoding,
            input: vec![0; CHUNK].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            raw_eof: false,
            finished: false,
            raw_offset: 0,
            out: vec![0; CHUNK].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            bom_checked: false,
            hasher: Sha256::new(),
            decoded_newlines: 0,
            consumed_newlines: 0,
            budget: u64::MAX,
            budget_used: 0,
            budget_line: 1,
            pending: None,
        }
    }

    /// Limits the bytes consumed until the next reset; past it reads fail with `TooLarge`.
    pub fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
    }

    /// Starts a new unit (record, line) for the budget.
    pub fn reset_budget(&mut self) {
        self.budget_used = 0;
        self.budget_line = self.line();
    }

    /// The line (1-based) of the next byte the parser will consume.
    pub fn line(&self) -> u64 {
        self.consumed_newlines + 1
    }

    /// The encoding actually decoded (a byte order mark may override the configured one).
    pub fn actual_encoding(&self) -> &'static encoding_rs::Encoding {
        self.decoder.encoding()
    }

    /// SHA-256 (hex) of the raw bytes read so far: the whole file once at end of input.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out_pos = 0;
        self.out_len = 0;
        if let Some(e) = self.pending.take() {
            return Err(io::Error::other(e));
        }
        while self.out_len == 0 && !self.finished {
            if self.in_pos == self.in_len && !self.raw_eof {
                let n = loop {
                    match self.raw.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.hasher.update(&self.input[..n]);
                self.in_pos = 0;
                self.in_len = n;
                self.raw_eof = n == 0;
            }
            let src = &self.input[self.in_pos..self.in_len];
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(src, &mut self.out, self.raw_eof);
            let before = self.raw_offset;
            self.in_pos += read;
            self.raw_offset += read as u64;
            self.out_len = written;
            self.decoded_newlines += count_newlines(&self.out[..written]);
            match result {
                encoding_rs::DecoderResult::InputEmpty => {
                    if self.raw_eof {
                        self.finished = true;
                    }
                }
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let back = u64::from(bad) + u64::from(after);
                    self.finished = true;
                    let err = TextError::Decode {
                        offset: (before + read as u64).saturating_sub(back),
                        line: self.decoded_newlines + 1,
                        configured: self.configured,
                    };
                    if self.out_len == 0 {
                        return Err(io::Error::other(err));
                    }
                    self.pending = Some(err);
                }
            }
        }
        if !self.bom_checked && self.out_len > 0 {
            self.bom_checked = true;
            if self.out[..self.out_len].starts_with("\u{feff}".as_bytes()) {
                self.out_pos = 3;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for TextReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for TextReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.budget_used > self.budget {
            return Err(io::Error::other(TextError::TooLarge {
                line: self.budget_line,
            }));
        }
        // A BOM-only first chunk leaves nothing after skipping it: read on.
        while self.out_pos >= self.out_len && !(self.finished && self.pending.is_none()) {
            self.refill()?;
        }
        Ok(&self.out[self.out_pos..self.out_len])
    }

    fn consume(&mut self, amt: usize) {
        let end = (self.out_pos + amt).min(self.out_len);
        self.consumed_newlines += count_newlines(&self.out[self.out_pos..end]);
        self.budget_used += (end - self.out_pos) as u64;
        self.out_pos = end;
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], enc: Encoding) -> io::Result<String> {
        let mut r = TextReader::new(bytes, enc);
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn gbk_bytes_decode_and_bom_is_dropped() {
        let (bytes, _, _) = encoding_rs::GBK.encode("客户,金额\n北京,1\n");
        assert_eq!(
            decode(&bytes, Encoding::Gb18030).unwrap(),
            "客户,金额\n北京,1\n"
        );
        assert_eq!(decode(b"\xef\xbb\xbfa,b", Encoding::Utf8).unwrap(), "a,b");
    }

    #[test]
    fn invalid_utf8_names_offset_and_line() {
        let (bytes, _, _) = encoding_rs::GBK.encode("a\nb\n客户");
        let err = decode(&bytes, Encoding::Utf8).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<TextError>());
        match inner {
            Some(TextError::Decode { offset, line, .. }) => {
                assert_eq!((*offset, *line), (4, 3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn budget_stops_reading() {
        let data = vec![b'x'; 3 * CHUNK];
        let mut r = TextReader::new(&data[..], Encoding::Utf8);
        r.set_budget(CHUNK as u64);
        let mut sink = Vec::new();
        let err = r.read_to_end(&mut sink).unwrap_err();
        assert!(err.to_string().contains("too large"));
        assert!(sink.len() <= 2 * CHUNK);
    }
}
