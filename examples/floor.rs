//! The decompression floor of the scan benchmark (`scripts/bench.sh`): what it costs just to
//! read a set of CloudTrail objects, before any JSON is parsed.
//!
//!     floor LIST
//!
//! LIST names one file per line (or NUL-separated). Every file is read and, when it starts with
//! the gzip magic, decompressed with libdeflate; plain files are just read. Every decompressed
//! byte is touched once (newlines are counted) so that nothing can be skipped. Files go to one
//! worker thread per core, one file per worker at a time, as the scan does.
//!
//! Prints one JSON object: files, bytes_in, bytes_out, newlines, seconds (from the first read
//! to the last byte counted; building the list is not timed), threads.

use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use libdeflater::{DecompressionError, Decompressor};

#[derive(Default)]
struct Totals {
    files: u64,
    bytes_in: u64,
    bytes_out: u64,
    newlines: u64,
}

/// Decompresses one gzip object into `out` (reused between files). libdeflate wants the whole
/// output buffer up front: the gzip trailer gives the size (modulo 4 GiB), and a buffer that
/// turns out too small is doubled. A stream of several gzip members, which libdeflate does not
/// read in one call, falls back to flate2.
fn gunzip(d: &mut Decompressor, gz: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let hint = gz
        .get(gz.len().saturating_sub(4)..)
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as usize);
    let mut size = hint.max(gz.len() * 4).max(4096);
    loop {
        out.clear();
        out.resize(size, 0);
        match d.gzip_decompress(gz, out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(());
            }
            Err(DecompressionError::InsufficientSpace) if size < (1 << 31) => size *= 2,
            Err(DecompressionError::InsufficientSpace) => return Err("too large".into()),
            Err(DecompressionError::BadData) => {
                out.clear();
                return flate2::read::MultiGzDecoder::new(gz)
                    .read_to_end(out)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
            }
        }
    }
}

fn worker(paths: &[String], next: &AtomicUsize) -> (Totals, Vec<String>) {
    let mut totals = Totals::default();
    let mut errors = Vec::new();
    let mut d = Decompressor::new();
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(i) else { break };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{path}: {e}"));
                continue;
            }
        };
        totals.files += 1;
        totals.bytes_in += bytes.len() as u64;
        let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
            if let Err(e) = gunzip(&mut d, &bytes, &mut out) {
                errors.push(format!("{path}: {e}"));
                continue;
            }
            &out
        } else {
            &bytes
        };
        totals.bytes_out += text.len() as u64;
        totals.newlines += memchr::memchr_iter(b'\n', text).count() as u64;
    }
    (totals, errors)
}

fn main() -> ExitCode {
    let Some(list) = std::env::args().nth(1) else {
        eprintln!("usage: floor LIST (a file naming one input file per line)");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("floor: cannot read {list}: {e}");
            return ExitCode::from(2);
        }
    };
    let sep = if text.contains('\0') { '\0' } else { '\n' };
    let paths: Vec<String> = text
        .split(sep)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let results: Vec<(Totals, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| worker(&paths, &next)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut all = Totals::default();
    let mut errors = Vec::new();
    for (t, e) in results {
        all.files += t.files;
        all.bytes_in += t.bytes_in;
        all.bytes_out += t.bytes_out;
        all.newlines += t.newlines;
        errors.extend(e);
    }
    for e in errors.iter().take(20) {
        eprintln!("floor: {e}");
    }
    println!(
        "{{\"files\":{},\"bytes_in\":{},\"bytes_out\":{},\"newlines\":{},\"seconds\":{:.3},\"threads\":{},\"errors\":{}}}",
        all.files,
        all.bytes_in,
        all.bytes_out,
        all.newlines,
        seconds,
        threads,
        errors.len()
    );
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
