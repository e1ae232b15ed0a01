//! Fuzz-like loops: random and mutated files for every parser and encoding. Whatever the
//! bytes, the source never panics, and every file ends in `done/` or in `failed/` with a
//! reason beside it.

use qiao_connectors::files::{Encoding, FileOptions, Format, open_source};
use qiao_connectors::{ConnectorError, Source};
use std::fs;

/// xorshift64*: deterministic, so a failure can be replayed from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[u8] =
    b"\"',\n\r{}[]<>/&;:=!?-#xX019 .\t_abceilnopr\xe4\xb8\xad\xff\x80\xef\xbb\xbf\x81\x30";

fn seed(format: Format, encoding: Encoding) -> Vec<u8> {
    let text = match format {
        Format::Csv => "id,名称,amount\r\n1,\"A, \"\"x\"\"\",1.5\n2,b,\n",
        Format::Jsonl => {
            "{\"id\":1,\"a\":[1,{\"b\":2.50}],\"s\":\"中\"}\n{\"id\":2,\"_op\":\"delete\"}\n"
        }
        Format::Xml => {
            "<?xml version=\"1.0\"?><rows><r id=\"1\"><name>A &amp; B &#20013;</name>\
            <lines><line><x>1</x></line></lines></r><r id=\"2\"/><!-- c --></rows>"
        }
    };
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        _ => encoding_rs::GB18030.encode(text).0.into_owned(),
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    if rng.below(8) == 0 {
        // Pure noise.
        let len = rng.below(400);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    // Few edits, so that a good share of files stays valid and is read to the end.
    for _ in 0..rng.below(4) {
        let at = rng.below(out.len() + 1);
        let byte = ALPHABET[rng.below(ALPHABET.len())];
        match rng.below(4) {
            0 if at < out.len() => {
                out.remove(at);
            }
            1 if at < out.len() => out[at] = byte,
            2 => {
                let end = (at + rng.below(20)).min(out.len());
                let piece = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, piece);
            }
            _ => out.insert(at, byte),
        }
    }
    out
}

async fn run(format: Format, encoding: Encoding, seed_value: u64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ext = format.extension();
    let mut rng = Rng(seed_value);
    let base = seed(format, encoding);
    let count = 120;
    for i in 0..count {
        let bytes = mutate(&mut rng, &base);
        fs::write(d.join(format!("f{i:04}.{ext}")), bytes).unwrap();
    }
    let opts = FileOptions {
        system: "fuzz".into(),
        dir: d.to_path_buf(),
        object: format!("f*.{ext}"),
        format,
        encoding,
        delimiter: b',',
        record_element: Some("r".into()),
        key_columns: vec!["id".into()],
        batch_size: 1,
        checkpoint: None,
    };
    let mut src: Box<dyn Source> = open_source(opts).await.unwrap();
    let mut refused = 0;
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(
            calls < 10 * count,
            "seed {seed_value}: the source never caught up"
        );
        match src.next_batch().await {
            Ok(Some(b)) => {
                for c in &b.changes {
                    assert!(!c.key.is_empty(), "seed {seed_value}: empty key emitted");
                }
                if let Some(cp) = b.checkpoint {
                    src.committed(&cp).await.unwrap();
                }
            }
            Ok(None) => break,
            Err(ConnectorError::BadInput(msg)) => {
                assert!(msg.contains("Fix:"), "seed {seed_value}: {msg}");
                if std::env::var("FUZZ_SHOW").is_ok() {
                    eprintln!("{}", &msg[..msg.find(" Fix:").unwrap_or(msg.len())]);
                }
                refused += 1;
            }
            Err(e) => panic!("seed {seed_value}: unexpected error {e}"),
        }
    }
    let left: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('f') && n.len() == 9 + format.extension().len())
        .collect();
    assert!(
        left.is_empty(),
        "seed {seed_value}: files left behind: {left:?}"
    );
    let failed: Vec<_> = fs::read_dir(d.join("failed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let reasons = failed.iter().filter(|n| n.ends_with(".reason.txt")).count();
    assert_eq!(reasons, refused, "seed {seed_value}");
    assert_eq!(failed.len(), 2 * refused, "seed {seed_value}");
    let done = fs::read_dir(d.join("done")).unwrap().count();
    eprintln!("{format:?} {encoding:?}: {done} read, {refused} refused");
    assert_eq!(done + refused, count, "seed {seed_value}");
}

/// Extra seeds for a longer local run: `QIAO_FUZZ_ROUNDS=50 cargo test --test files_fuzz`.
async fn rounds(format: Format, base_seed: u64) {
    let n: u64 = std::env::var("QIAO_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for round in 0..n {
        let s = base_seed.wrapping_add(round.wrapping_mul(0x9E37_79B9));
        run(format, Encoding::Utf8, s).await;
        run(format, Encoding::Gb18030, s ^ 0xFFFF).await;
    }
}

#[tokio::test]
async fn csv_never_panics() {
    rounds(Format::Csv, 0x5eed_0001).await;
}

#[tokio::test]
async fn jsonl_never_panics() {
    rounds(Format::Jsonl, 0x5eed_0003).await;
}

#[tokio::test]
async fn xml_never_panics() {
    rounds(Format::Xml, 0x5eed_0005).await;
}
