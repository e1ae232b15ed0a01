//! The watched-folder source: validate a whole file, then emit it in batches, and move it
//! to `done/` once its last record is committed (see the module docs of `files`).

use super::error::{Problem, ReadError};
use super::folder::{self, DONE, FAILED, FileCheckpoint, FileId};
use super::read::{ParseOptions, RecordReader, open_reader, to_change};
use super::{FileOptions, Format};
use crate::{Batch, ConnectorError, Source};
use async_trait::async_trait;
use qiao_core::Key;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

/// Records per batch when the engine passes 0.
const DEFAULT_BATCH: usize = 500;

/// The file being emitted.
struct Current {
    id: FileId,
    total: u64,
    emitted: u64,
    reader: Box<dyn RecordReader>,
}

/// A file whose records were all emitted, waiting for the commit that covers them.
struct Pending {
    id: FileId,
    total: u64,
}

/// The synchronous core of the source; all of its file work blocks, so it runs on
/// tokio's blocking pool.
pub(crate) struct Folder {
    opts: FileOptions,
    parse: ParseOptions,
    batch: usize,
    resume: Option<FileCheckpoint>,
    current: Option<Current>,
    pending: Vec<Pending>,
    /// Files that changed while being validated: left alone until the next call.
    deferred: HashSet<String>,
    /// Files that could not be read last time: tried after the others, so they do not
    /// hold up the folder.
    unreadable: HashSet<String>,
    /// Malformed files that could not be moved to `failed/`: not tried again.
    stuck: HashSet<String>,
}

impl Folder {
    /// Checks the options and prepares `done/` and `failed/`.
    pub fn new(opts: FileOptions) -> Result<Folder, ConnectorError> {
        let sys = &opts.system;
        let config = |what: String| ConnectorError::Config(format!("system `{sys}`: {what}"));
        if !opts.dir.is_dir() {
            return Err(config(format!(
                "folder {} does not exist or is not a folder; create it or fix `path`",
                opts.dir.display()
            )));
        }
        if opts.object.trim().is_empty() || opts.object.contains(['/', '\\']) {
            return Err(config(format!(
                "file pattern `{}` must be a file name pattern such as `customers*.csv`, \
                 without folders (the folder is the system's `path`)",
                opts.object
            )));
        }
        check_delimiter(&opts)?;
        let record_element = match (opts.format, &opts.record_element) {
            (Format::Xml, Some(e)) if !e.trim().is_empty() => e.trim().to_string(),
            (Format::Xml, _) => {
                return Err(config(
                    "XML files need `record_element`: the element that holds one record, \
                     e.g. `record_element: customer`"
                        .into(),
                ));
            }
            _ => String::new(),
        };
        let resume = match &opts.checkpoint {
            None => None,
            Some(text) => Some(serde_json::from_str::<FileCheckpoint>(text).map_err(|e| {
                config(format!(
                    "the stored checkpoint is not a file checkpoint ({e}); reset this flow's \
                     checkpoint to read the folder from the start"
                ))
            })?),
        };
        for sub in [DONE, FAILED] {
            fs::create_dir_all(opts.dir.join(sub)).map_err(|e| {
                config(format!(
                    "cannot create {}: {e}; check the folder's permissions",
                    opts.dir.join(sub).display()
                ))
            })?;
        }
        Ok(Folder {
            parse: ParseOptions {
                format: opts.format,
                encoding: opts.encoding,
                delimiter: opts.delimiter,
                record_element,
            },
            batch: if opts.batch_size == 0 {
                DEFAULT_BATCH
            } else {
                opts.batch_size
            },
            resume,
            current: None,
            pending: Vec::new(),
            deferred: HashSet::new(),
            unreadable: HashSet::new(),
            stuck: HashSet::new(),
            opts,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.opts.dir.join(name)
    }

    fn io_error(&mut self, name: &str, e: &io::Error) -> ConnectorError {
        self.unreadable.insert(name.to_string());
        ConnectorError::Transport(format!(
            "system `{}`: cannot read {}: {e}; check that the file is readable, it is tried \
             again on the next run",
            self.opts.system,
            self.path(name).display()
        ))
    }

    /// Reads the next batch (see [`Source::next_batch`]).
    pub fn next_batch(&mut self) -> Result<Option<Batch>, ConnectorError> {
        self.deferred.clear();
        loop {
            if self.current.is_some() {
                return self.emit().map(Some);
            }
            let Some(name) = self.pick()? else {
                return Ok(None);
            };
            self.start(&name)?;
        }
    }

    fn pick(&mut self) -> Result<Option<String>, ConnectorError> {
        let names = folder::list(&self.opts.dir, &self.opts.object).map_err(|e| {
            ConnectorError::Transport(format!(
                "system `{}`: cannot list folder {}: {e}",
                self.opts.system,
                self.opts.dir.display()
            ))
        })?;
        let busy = |n: &String| {
            self.deferred.contains(n)
                || self.stuck.contains(n)
                || self.pending.iter().any(|p| p.id.name == *n)
        };
        let names: Vec<String> = names.into_iter().filter(|n| !busy(n)).collect();
        // A file interrupted by a crash is finished first, whatever arrived since.
        if let Some(cp) = &self.resume
            && names.contains(&cp.file)
        {
            return Ok(Some(cp.file.clone()));
        }
        let readable = names.iter().find(|n| !self.unreadable.contains(*n));
        Ok(readable.or(names.first()).cloned())
    }

    /// Validates `name`; when sound, makes it the current file (or finishes it at once).
    fn start(&mut self, name: &str) -> Result<(), ConnectorError> {
        let path = self.path(name);
        let before = match fs::metadata(&path) {
            Ok(m) => folder::stamp(&m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_error(name, &e)),
        };
        let (total, sha256) = match self.validate(name) {
            Ok(v) => v,
            Err(ReadError::Bad(problem)) => return Err(self.fail(name, &problem, 0)),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(ReadError::Io(e)) => return Err(self.io_error(name, &e)),
        };
        self.unreadable.remove(name);
        let after = fs::metadata(&path).map(|m| folder::stamp(&m));
        if after.as_ref().ok() != Some(&before) {
            // Still being written (or replaced): look again on the next call.
            self.deferred.insert(name.to_string());
            return Ok(());
        }
        let id = FileId {
            name: name.to_string(),
            size: before.0,
            mtime: before.1,
            sha256,
        };
        let mut skip = 0;
        if let Some(cp) = self.resume.take_if(|cp| cp.file == name) {
            if cp.matches(&id) {
                skip = cp.records;
            } else {
                tracing::warn!(system = %self.opts.system, file = name,
                    "the checkpoint names this file but its contents changed; reading it from the start");
            }
        }
        if skip >= total {
            // Empty, or every record was committed before a restart: nothing to emit.
            return self.finish(&id);
        }
        let file = File::open(&path).map_err(|e| self.io_error(name, &e))?;
        let mut reader = open_reader(file, &self.parse);
        for _ in 0..skip {
            match reader.next_record() {
                Ok(Some(_)) => {}
                Ok(None) | Err(ReadError::Bad(_)) => {
                    return Err(self.changed(name, skip));
                }
                Err(ReadError::Io(e)) => return Err(self.io_error(name, &e)),
            }
        }
        self.current = Some(Current {
            id,
            total,
            emitted: skip,
            reader,
        });
        Ok(())
    }

    /// The streaming first pass: every record parsed and checked, none kept.
    fn validate(&self, name: &str) -> Result<(u64, String), ReadError> {
        let file = File::open(self.path(name))?;
        let mut reader = open_reader(file, &self.parse);
        let mut total = 0u64;
        while let Some(raw) = reader.next_record()? {
            total += 1;
            to_change(raw, &self.opts.key_columns, name, total)?;
        }
        Ok((total, reader.sha256_hex()))
    }

    fn emit(&mut self) -> Result<Batch, ConnectorError> {
        let Some(mut cur) = self.current.take() else {
            return Ok(Batch::default());
        };
        let started = cur.emitted;
        let mut changes = Vec::new();
        while changes.len() < self.batch && cur.emitted < cur.total {
            match cur.reader.next_record() {
                Ok(Some(raw)) => {
                    cur.emitted += 1;
                    match to_change(raw, &self.opts.key_columns, &cur.id.name, cur.emitted) {
                        Ok(c) => changes.push(c),
                        Err(_) => return Err(self.changed(&cur.id.name, started)),
                    }
                }
                Ok(None) | Err(ReadError::Bad(_)) => {
                    return Err(self.changed(&cur.id.name, started));
                }
                Err(ReadError::Io(e)) => {
                    // Start this file again after the records already handed out.
                    self.resume = Some(FileCheckpoint::of(&cur.id, started));
                    return Err(self.io_error(&cur.id.name, &e));
                }
            }
        }
        let checkpoint = FileCheckpoint::of(&cur.id, cur.emitted);
        let checkpoint = serde_json::to_string(&checkpoint).map_err(|e| {
            ConnectorError::Transport(format!("cannot write a file checkpoint: {e}"))
        })?;
        if cur.emitted >= cur.total {
            self.pending.push(Pending {
                id: cur.id,
                total: cur.total,
            });
        } else {
            self.current = Some(cur);
        }
        Ok(Batch {
            changes,
            checkpoint: Some(checkpoint),
        })
    }

    /// After the engine stored `checkpoint`: files it completes move to `done/`.
    pub fn committed(&mut self, checkpoint: &str) -> Result<(), ConnectorError> {
        let cp: FileCheckpoint = serde_json::from_str(checkpoint).map_err(|e| {
            ConnectorError::Config(format!(
                "system `{}`: committed checkpoint is not a file checkpoint: {e}",
                self.opts.system
            ))
        })?;
        // The engine commits in order, so a later file's checkpoint completes earlier ones.
        let upto = if let Some(i) = self
            .pending
            .iter()
            .position(|p| p.id.name == cp.file && cp.records >= p.total)
        {
            i + 1
        } else if self.current.as_ref().is_some_and(|c| c.id.name == cp.file) {
            self.pending.len()
        } else {
            0
        };
        let done: Vec<Pending> = self.pending.drain(..upto).collect();
        for p in done {
            self.finish(&p.id)?;
        }
        Ok(())
    }

    fn finish(&self, id: &FileId) -> Result<(), ConnectorError> {
        match folder::move_into(&self.opts.dir, DONE, &id.name) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ConnectorError::Transport(format!(
                "system `{}`: {} was processed but cannot be moved to {}/: {e}; check the \
                 folder's permissions",
                self.opts.system,
                self.path(&id.name).display(),
                DONE
            ))),
        }
    }

    /// Moves a malformed file to `failed/` with its reason; the error the engine reports.
    fn fail(&mut self, name: &str, problem: &Problem, delivered: u64) -> ConnectorError {
        let sys = &self.opts.system;
        let dir = &self.opts.dir;
        let text = folder::reason_text(sys, dir, name, problem, delivered);
        let moved = folder::move_into(dir, FAILED, name)
            .and_then(|target| fs::write(folder::reason_path(&target), &text).map(|_| target));
        let place = match moved {
            Ok(target) => format!(
                "it was moved to {} with the reason beside it; fix the file and put it back \
                 into {} to process it again",
                target.display(),
                dir.display()
            ),
            Err(e) => {
                self.stuck.insert(name.to_string());
                format!(
                    "it could not be moved to {FAILED}/ ({e}) and is skipped until qiao \
                     restarts; fix the file in place"
                )
            }
        };
        ConnectorError::BadInput(format!(
            "system `{sys}`: file {name}, {}: {}. Fix: {}. The file was not processed: {place}.",
            problem.place, problem.what, problem.fix
        ))
    }

    /// The file no longer reads as it did when it was validated.
    fn changed(&mut self, name: &str, delivered: u64) -> ConnectorError {
        self.current = None;
        let problem = Problem::new(
            format!("after record {delivered}"),
            "the file changed while qiao was reading it",
            "write files under another name (e.g. `.tmp`) and rename them when complete; put \
             the remaining records back as a new file",
        );
        self.fail(name, &problem, delivered)
    }
}

fn check_delimiter(opts: &FileOptions) -> Result<(), ConnectorError> {
    let d = opts.delimiter;
    if opts.format == Format::Csv && (!d.is_ascii() || matches!(d, b'"' | b'\r' | b'\n')) {
        return Err(ConnectorError::Config(format!(
            "system `{}`: CSV delimiter {:?} cannot be used; use one ASCII character other \
             than a quote or line break, such as `,` `;` or a tab",
            opts.system, d as char
        )));
    }
    Ok(())
}

/// The async face of [`Folder`].
pub(crate) struct FileSource {
    folder: Option<Folder>,
    opts: FileOptions,
    last_committed: Option<String>,
}

impl FileSource {
    /// Opens the folder.
    pub async fn open(opts: FileOptions) -> Result<FileSource, ConnectorError> {
        let o = opts.clone();
        let folder = tokio::task::spawn_blocking(move || Folder::new(o))
            .await
            .map_err(|e| ConnectorError::Transport(format!("file source did not start: {e}")))??;
        Ok(FileSource {
            folder: Some(folder),
            last_committed: opts.checkpoint.clone(),
            opts,
        })
    }

    async fn run<T, F>(&mut self, f: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Folder) -> Result<T, ConnectorError> + Send + 'static,
    {
        let mut folder = match self.folder.take() {
            Some(folder) => folder,
            // Lost to a cancelled call: start again from what the engine committed.
            None => Folder::new(FileOptions {
                checkpoint: self.last_committed.clone(),
                ..self.opts.clone()
            })?,
        };
        let (folder, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut folder);
            (folder, r)
        })
        .await
        .map_err(|e| {
            ConnectorError::Transport(format!(
                "system `{}`: the file reader stopped ({e}); it resumes from the last \
                 committed checkpoint",
                self.opts.system
            ))
        })?;
        self.folder = Some(folder);
        result
    }
}

#[async_trait]
impl Source for FileSource {
    async fn next_batch(&mut self) -> Result<Option<Batch>, ConnectorError> {
        self.run(|f| f.next_batch()).await
    }

    async fn committed(&mut self, checkpoint: &str) -> Result<(), ConnectorError> {
        let cp = checkpoint.to_string();
        self.run(move |f| f.committed(&cp)).await?;
        self.last_committed = Some(checkpoint.to_string());
        Ok(())
    }

    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError> {
        Err(ConnectorError::Config(format!(
            "system `{}`: delete detection by key scan is not supported for files; a file \
             holds changes, not the whole table — send deletes as records with `_op: delete`",
            self.opts.system
        )))
    }
}
