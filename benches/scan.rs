//! The hot functions of the scan, on objects from the project's generator: decompressing one
//! object, finding and decoding its records, normalising the principal, and the folder scan of
//! one account-day on all cores. `scripts/bench.sh` measures the whole command against other
//! tools; these say where inside the scan the time goes.
//!
//!     cargo bench --bench scan

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use trailhound::cloudtrail::reader::{decode_whole, decompress, split_records};
use trailhound::cloudtrail::structure::split_frame;
use trailhound::cloudtrail::{Principal, Record, Span, Timestamp};
use trailhound::demo::{generate, DemoOptions};
use trailhound::source::scan::FolderSource;
use trailhound::source::ActivitySource;
use trailhound::window::Window;

/// A day of the demo organisation, generated once per bench run.
struct Corpus {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    end: Timestamp,
    /// The largest few log objects, as stored (gzip).
    objects: Vec<Vec<u8>>,
}

fn log_objects(root: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root).expect("read the generated folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            if !path.ends_with("CloudTrail-Digest") {
                log_objects(&path, out);
            }
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
}

fn corpus() -> Corpus {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let end = Timestamp::parse("2026-11-02T15:00:00Z").expect("a time");
    let options = DemoOptions {
        seed: 7,
        days: 1,
        end,
    };
    generate(dir.path(), &options).expect("generate the demo logs");
    let mut paths = Vec::new();
    log_objects(&dir.path().join("AWSLogs"), &mut paths);
    let mut objects: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read an object"))
        .collect();
    objects.sort_by_key(|o| std::cmp::Reverse(o.len()));
    objects.truncate(8);
    Corpus {
        logs: dir.path().join("AWSLogs"),
        _dir: dir,
        end,
        objects,
    }
}

fn object_functions(c: &mut Criterion, corpus: &Corpus) {
    let gz = &corpus.objects[0];
    let json = decompress(gz.clone()).expect("a generated object decompresses");
    let mut group = c.benchmark_group("object");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("decompress", |b| {
        b.iter_batched(
            || gz.clone(),
            |bytes| decompress(black_box(bytes)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_whole", |b| {
        b.iter(|| decode_whole(black_box(&json)).map(|r| r.len()))
    });
    let text = std::str::from_utf8(&json).expect("UTF-8");
    group.bench_function("split_frame", |b| {
        b.iter(|| split_frame(black_box(text)).map(|r| r.len()))
    });
    // The path of an object that did not decode whole: split, then each record on its own.
    group.bench_function("split_then_parse_each", |b| {
        b.iter(|| {
            split_records(black_box(&json))
                .records
                .iter()
                .filter(|r| Record::parse(r.get()).is_ok())
                .count()
        })
    });
    group.finish();

    let records = decode_whole(&json).expect("a generated object decodes whole");
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("principal_of", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| Principal::of(black_box(r), "111122223333").is_ok())
                .count()
        })
    });
    group.finish();
}

fn folder_scan(c: &mut Criterion, corpus: &Corpus) {
    let source = FolderSource::open(&corpus.logs).expect("open the generated folder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let accounts = runtime
        .block_on(source.accounts())
        .expect("the generated accounts");
    let day = Window::new(corpus.end.saturating_sub(Span::days(1)), corpus.end).expect("a day");
    let bytes: u64 = runtime
        .block_on(source.activity(&accounts[0], &day))
        .expect("a scan")
        .report
        .bytes_read;
    let mut group = c.benchmark_group("folder");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.bench_function("account_day", |b| {
        b.iter(|| {
            runtime
                .block_on(source.activity(&accounts[0], &day))
                .map(|batch| batch.rows.len())
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let corpus = corpus();
    object_functions(c, &corpus);
    folder_scan(c, &corpus);
}

criterion_group!(scan, benches);
criterion_main!(scan);
