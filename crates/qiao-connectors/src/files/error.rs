//! The structural problems that send a file to `failed/`, and how they are told.

use super::Encoding;
use super::text::TextError;
use std::io;

/// One structural problem of a file: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// What is wrong, e.g. "a double quote inside an unquoted field".
    pub what: String,
    /// Where: "line 3", "byte offset 120 (line 2)".
    pub place: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    /// A problem at `place`.
    pub fn new(place: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            what: what.into(),
            place: place.into(),
            fix: fix.into(),
        }
    }
}

/// Why reading records stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file is malformed: it goes to `failed/`.
    Bad(Problem),
    /// The file could not be read (disk, permissions): try again later.
    Io(io::Error),
}

impl From<Problem> for ReadError {
    fn from(p: Problem) -> Self {
        ReadError::Bad(p)
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TextError>())
        {
            Some(t) => ReadError::Bad(text_problem(t)),
            None => ReadError::Io(e),
        }
    }
}

/// Tells a decoding or size problem of the text layer.
pub(crate) fn text_problem(e: &TextError) -> Problem {
    match e {
        TextError::Decode {
            offset,
            line,
            configured,
        } => {
            let place = format!("byte offset {offset} (line {line})");
            match configured {
                Encoding::Utf8 => Problem::new(
                    place,
                    "the bytes are not valid UTF-8",
                    "if this file comes from Chinese finance software set `encoding: gb18030` \
                     for this system; otherwise save the file as UTF-8",
                ),
                Encoding::Gb18030 | Encoding::Gbk => Problem::new(
                    place,
                    "the bytes are not valid GB18030/GBK",
                    "check the file's encoding: if it is UTF-8 set `encoding: utf-8` for this \
                     system, otherwise save the file as GB18030",
                ),
            }
        }
        TextError::TooLarge { line } => too_large(*line, "line"),
    }
}

/// The problem of a record larger than [`super::MAX_RECORD_BYTES`].
pub(crate) fn too_large(line: u64, unit: &str) -> Problem {
    Problem::new(
        format!("line {line}"),
        format!(
            "the {unit} starting here is larger than 16 MiB; reading stopped there without \
             loading it"
        ),
        "a record this large is almost always a missing line break, a missing closing quote \
         or a file in another format; check the file around this line",
    )
}
