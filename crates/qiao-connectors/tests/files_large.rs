//! A 100 MB single line is refused quickly, without loading it. Its own test binary, so the
//! peak memory of the process is this test's alone.

use qiao_connectors::ConnectorError;
use qiao_connectors::files::{Encoding, FileOptions, Format, open_source};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const HUNDRED_MB: usize = 100 * 1024 * 1024;

fn write_big(path: &Path, head: &str) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    f.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    for _ in 0..HUNDRED_MB / chunk.len() {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    f.flush().unwrap();
}

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test]
async fn hundred_megabyte_single_line_is_refused_without_buffering_it() {
    let cases = [
        (Format::Csv, "big.csv", "id,text\n1,", "line 2"),
        (
            Format::Jsonl,
            "big.jsonl",
            "{\"id\": 1, \"text\": \"",
            "line 1",
        ),
        (
            Format::Xml,
            "big.xml",
            "<rows><r><id>1</id><text>",
            "line 1",
        ),
    ];
    for (format, name, head, line) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_big(&d.join(name), head);
        let opts = FileOptions {
            system: "legacy".into(),
            dir: d.to_path_buf(),
            object: name.into(),
            format,
            encoding: Encoding::Utf8,
            delimiter: b',',
            record_element: Some("r".into()),
            key_columns: vec!["id".into()],
            batch_size: 10,
            checkpoint: None,
        };
        let mut src = open_source(opts).await.unwrap();
        let started = Instant::now();
        let err = src.next_batch().await.unwrap_err();
        let took = started.elapsed();
        let ConnectorError::BadInput(msg) = err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("larger than 16 MiB") && msg.contains(name),
            "{msg}"
        );
        assert!(msg.contains(line), "{msg}");
        // Reading stops at 16 MiB; a debug build needs well under this even on a busy box.
        assert!(took < Duration::from_secs(30), "{format:?} took {took:?}");
        assert!(d.join("failed").join(name).exists());
        assert!(src.next_batch().await.unwrap().is_none());
    }
    eprintln!("peak memory: {:?} MiB", peak_rss_mib());
    if let Some(peak) = peak_rss_mib() {
        assert!(peak < 90, "peak memory {peak} MiB: the line was buffered");
    }
}
