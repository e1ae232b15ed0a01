//! The watched folder itself: which files match, their identity, and moving them to
//! `done/` or `failed/` with a reason beside them.

use super::error::Problem;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Sub-folder for processed files.
pub(crate) const DONE: &str = "done";
/// Sub-folder for refused files.
pub(crate) const FAILED: &str = "failed";

/// What makes a file the same file after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileId {
    /// File name in the folder.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, RFC 3339 with nanoseconds (empty if the platform has none).
    pub mtime: String,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// The checkpoint a file source hands out: the file and how many records were emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileCheckpoint {
    /// File name.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339).
    pub mtime: String,
    /// SHA-256 of the contents.
    pub sha256: String,
    /// Records of this file emitted up to and including the batch.
    pub records: u64,
}

impl FileCheckpoint {
    /// The checkpoint after `records` records of `id`.
    pub fn of(id: &FileId, records: u64) -> Self {
        FileCheckpoint {
            file: id.name.clone(),
            size: id.size,
            mtime: id.mtime.clone(),
            sha256: id.sha256.clone(),
            records,
        }
    }

    /// True when this checkpoint is about exactly this file.
    pub fn matches(&self, id: &FileId) -> bool {
        self.file == id.name
            && self.size == id.size
            && self.mtime == id.mtime
            && self.sha256 == id.sha256
    }
}

/// Size and modification time of a file, to notice a file that is still being written.
pub(crate) fn stamp(meta: &fs::Metadata) -> (u64, String) {
    let mtime = meta
        .modified()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Nanos, true))
        .unwrap_or_default();
    (meta.len(), mtime)
}

/// Matches a file name against a pattern where `*` is any run and `?` one character.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// True for names a writer uses while a file is not complete yet.
fn is_in_progress(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
}

/// The names of the regular files in `dir` matching `pattern`, lowest first.
pub(crate) fn list(dir: &Path, pattern: &str) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(dir = %dir.display(), "skipping a file whose name is not valid Unicode");
            continue;
        };
        if is_in_progress(&name) || !glob_match(pattern, &name) {
            continue;
        }
        if entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Moves `dir/name` into `dir/sub/`, never overwriting an earlier file of the same name
/// (a daily `customers.csv` becomes `customers.2.csv`, `customers.3.csv`, …).
pub(crate) fn move_into(dir: &Path, sub: &str, name: &str) -> io::Result<PathBuf> {
    let target_dir = dir.join(sub);
    fs::create_dir_all(&target_dir)?;
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    let mut target = target_dir.join(name);
    let mut n = 2u64;
    while target.exists() || reason_path(&target).exists() {
        target = target_dir.join(format!("{stem}.{n}{ext}"));
        n += 1;
    }
    fs::rename(dir.join(name), &target)?;
    Ok(target)
}

/// `failed/x.csv` → `failed/x.csv.reason.txt`.
pub(crate) fn reason_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(".reason.txt");
    PathBuf::from(s)
}

/// What the reason file says, for people who fix the file.
pub(crate) fn reason_text(
    system: &str,
    dir: &Path,
    name: &str,
    problem: &Problem,
    delivered: u64,
) -> String {
    let processed = if delivered == 0 {
        "No record of this file was processed.".to_string()
    } else {
        format!("Records 1 to {delivered} of this file were already processed.")
    };
    format!(
        "qiao did not process this file.\n\n\
         File:       {name}\n\
         System:     {system}\n\
         Problem:    {what}\n\
         Where:      {place}\n\
         How to fix: {fix}\n\n\
         {processed}\n\n\
         Fix the file and put it back into {dir} to process it again.\n",
        what = problem.what,
        place = problem.place,
        fix = problem.fix,
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("customers*.csv", "customers-2024-01.csv"));
        assert!(glob_match("customers*.csv", "customers.csv"));
        assert!(!glob_match("customers*.csv", "customers.csv.bak"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c*d*", "abcxxdyy"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("客户*.csv", "客户2024.csv"));
    }

    #[test]
    fn move_keeps_earlier_files() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            fs::write(dir.path().join("a.csv"), "x").unwrap();
            move_into(dir.path(), DONE, "a.csv").unwrap();
        }
        assert!(dir.path().join("done/a.csv").exists());
        assert!(dir.path().join("done/a.2.csv").exists());
    }
}
