//! The direct scan of a folder: finds CloudTrail objects on disk and reads them; `fold.rs`
//! turns their bytes into Activity rows, as it does for the S3 scan.
//!
//! The folder is walked once when the source is opened. Objects named as CloudTrail names them
//! are indexed by account and delivery minute, so a window opens only the objects delivered in
//! it; a folder of one account's objects of one delivery day (CloudTrail's own layout) is kept
//! as the folder and listed again by the windows that need it, so the index does not grow with
//! the number of objects. Other log files (published datasets, exports) carry no delivery time: they are read
//! whole and their records windowed by eventTime, attributed to the account in the record.
//!
//! Objects are read on all cores, one object per worker at a time, so memory is bounded by
//! the worker count times the largest object plus the distinct rows of the window.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::activity::ActivityBatch;
use super::fold::{fold_object, merge, record_account, ObjectRef, Partial, WindowShared};
use super::{ActivitySource, SourceError};
use crate::cloudtrail::layout::{is_non_event_folder, parse_object_name, ObjectKind, ObjectName};
use crate::cloudtrail::reader::{decode_whole, decompress, split_records};
use crate::cloudtrail::{AccountId, Record, Span, Timestamp};
use crate::detect::rules::RuleEngine;
use crate::window::Window;

/// An object named by CloudTrail: its delivery minute is known without opening it.
#[derive(Clone, Debug)]
struct NamedObject {
    path: PathBuf,
    delivered: Timestamp,
}

/// A file without a CloudTrail name, with the accounts its records belong to.
#[derive(Clone, Debug)]
struct LooseFile {
    path: PathBuf,
    accounts: BTreeSet<AccountId>,
}

/// A folder holding only CloudTrail-named objects of one account delivered on one day, as
/// CloudTrail's own layout does (`.../ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`). Only the folder
/// is kept; its objects are listed again when a window needs them, so the index of a folder of
/// years of logs stays a few bytes per day instead of a path per object.
#[derive(Clone, Debug)]
struct DayFolder {
    path: PathBuf,
    first: Timestamp,
    last: Timestamp,
    objects: u64,
}

#[derive(Debug, Default)]
struct Index {
    /// Named objects in folders that are not day folders.
    named: BTreeMap<AccountId, Vec<NamedObject>>,
    days: BTreeMap<AccountId, Vec<DayFolder>>,
    loose: Vec<LooseFile>,
    /// Digest and Insight objects.
    not_events: u64,
    /// Files that are not logs by their name.
    not_logs: u64,
    /// Paths that could not be walked or indexed, with the reason.
    unreadable: BTreeMap<String, String>,
}

impl Index {
    /// Adds what another walker indexed.
    fn absorb(&mut self, other: Index) {
        for (account, objects) in other.named {
            self.named.entry(account).or_default().extend(objects);
        }
        for (account, days) in other.days {
            self.days.entry(account).or_default().extend(days);
        }
        self.loose.extend(other.loose);
        self.not_events += other.not_events;
        self.not_logs += other.not_logs;
        self.unreadable.extend(other.unreadable);
    }
}

/// Reads a local folder of CloudTrail logs.
pub struct FolderSource {
    root: PathBuf,
    index: Arc<Index>,
    workers: usize,
    progress: Option<indicatif::ProgressBar>,
    /// Counted once, in the first batch, so a summary over all batches counts them once.
    walk_report_taken: Mutex<bool>,
    /// When set, the records these rules' conditions hold for are kept for them.
    rules: Option<Arc<RuleEngine>>,
}

fn looks_like_log(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".json",
        ".json.gz",
        ".gz",
        ".jsonl",
        ".ndjson",
        ".cloudtrail",
        ".jsonl.gz",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

impl FolderSource {
    /// Walks `root` and indexes what it holds. Files without a CloudTrail name are opened once
    /// here to learn which accounts their records belong to.
    pub fn open(root: &Path) -> Result<Self, SourceError> {
        let meta = std::fs::metadata(root).map_err(|source| SourceError::Folder {
            path: root.display().to_string(),
            source,
        })?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut index = Index::default();
        let mut loose = Vec::new();
        if meta.is_file() {
            let mut named = Vec::new();
            let folder = root.parent().unwrap_or(Path::new(""));
            let non_event = is_non_event_folder(&folder.to_string_lossy());
            classify(root, non_event, &mut index, &mut loose, &mut named);
            for (account, object) in named {
                index.named.entry(account).or_default().push(object);
            }
        } else {
            walk(root, workers, &mut index, &mut loose);
        }
        for list in index.named.values_mut() {
            list.sort_by(|a, b| {
                (a.delivered, a.path.as_os_str()).cmp(&(b.delivered, b.path.as_os_str()))
            });
        }
        index.loose = accounts_of_loose_files(loose, workers, &mut index.unreadable);
        Ok(FolderSource {
            root: root.to_path_buf(),
            index: Arc::new(index),
            workers,
            progress: None,
            walk_report_taken: Mutex::new(false),
            rules: None,
        })
    }

    /// Shows progress (objects read) on this bar while scanning.
    /// Also keeps, per window, the records that `rules`' conditions hold for.
    pub fn with_rules(mut self, rules: Arc<RuleEngine>) -> Self {
        self.rules = (!rules.is_empty()).then_some(rules);
        self
    }

    pub fn with_progress(mut self, bar: indicatif::ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    pub fn progress(&self) -> Option<&indicatif::ProgressBar> {
        self.progress.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The range of delivery minutes of the account's named objects, if it has any.
    pub fn delivery_span(&self, account: &AccountId) -> Option<(Timestamp, Timestamp)> {
        let named = self
            .index
            .named
            .get(account)
            .into_iter()
            .flatten()
            .map(|o| (o.delivered, o.delivered));
        let days = self
            .index
            .days
            .get(account)
            .into_iter()
            .flatten()
            .map(|d| (d.first, d.last));
        named
            .chain(days)
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }

    /// The windows that read all of `account`'s objects within `period` once each: a day at a
    /// time over the delivery span of its CloudTrail-named objects, so memory is that of one
    /// day however long the period. An account with files that carry no delivery time gets
    /// the whole period as one window, because such files are opened by every window that
    /// includes their account.
    pub fn read_windows(&self, account: &AccountId, period: Window) -> Vec<Window> {
        if self
            .index
            .loose
            .iter()
            .any(|f| f.accounts.contains(account))
        {
            return vec![period];
        }
        let Some((first, last)) = self.delivery_span(account) else {
            return Vec::new();
        };
        let start = period.start.max(first.day_start());
        let end = period.end.min(last.saturating_add(Span::minutes(1)));
        Window::new(start, end).map_or_else(Vec::new, |w| w.split_by_day())
    }

    /// Objects of the account delivered within the window, and the day folders that could
    /// not be listed again (with the reason).
    fn select(&self, account: &AccountId, window: &Window) -> Selection {
        let mut named: Vec<NamedObject> = Vec::new();
        let mut unreadable = Vec::new();
        if let Some(list) = self.index.named.get(account) {
            // The list is sorted by delivery time: find the window's slice by binary search.
            let from = list.partition_point(|o| o.delivered < window.start);
            let to = list.partition_point(|o| o.delivered < window.end);
            named.extend(list[from..to].iter().cloned());
        }
        for day in self.index.days.get(account).into_iter().flatten() {
            if day.last < window.start || day.first >= window.end {
                continue;
            }
            if let Err(e) = list_day_folder(&day.path, account, window, &mut named) {
                unreadable.push((day.path.display().to_string(), e.to_string()));
            }
        }
        named.sort_by(|a, b| {
            (a.delivered, a.path.as_os_str()).cmp(&(b.delivered, b.path.as_os_str()))
        });
        let mut chosen: Vec<(PathBuf, bool)> = named.into_iter().map(|o| (o.path, true)).collect();
        for f in &self.index.loose {
            if f.accounts.contains(account) {
                chosen.push((f.path.clone(), false));
            }
        }
        Selection {
            objects: chosen,
            unreadable,
        }
    }
}

/// What a window opens: `(path, named)` in delivery order, then the files without a delivery
/// time; and the folders that could not be listed.
struct Selection {
    objects: Vec<(PathBuf, bool)>,
    unreadable: Vec<(String, String)>,
}

/// Adds the account's log objects of a day folder delivered within the window.
fn list_day_folder(
    dir: &Path,
    account: &AccountId,
    window: &Window,
    out: &mut Vec<NamedObject>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(o) = object_name(&path) {
            if o.kind == ObjectKind::Log && o.account == *account && window.contains(o.delivered) {
                out.push(NamedObject {
                    delivered: o.delivered,
                    path,
                });
            }
        }
    }
    Ok(())
}

/// Walks `root` on all cores: each worker takes a folder from a shared stack, lists it and
/// pushes its subfolders back, so a tree of thousands of day folders is listed in parallel.
/// Each worker indexes into its own [`Index`]; they are combined, in path order, at the end.
fn walk(root: &Path, workers: usize, index: &mut Index, loose: &mut Vec<PathBuf>) {
    let queue = FolderQueue::new(root.to_path_buf());
    let seen: Mutex<HashSet<FolderId>> = Mutex::default();
    let parts: Vec<(Index, Vec<PathBuf>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut index = Index::default();
                    let mut loose = Vec::new();
                    while let Some(dir) = queue.take() {
                        // A folder that panics its lister is reported, and the others still
                        // finish: the queue must hear that every folder it handed out is done.
                        let shown = dir.display().to_string();
                        let listed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            walk_folder(dir, &seen, &mut index, &mut loose)
                        }));
                        let subfolders = listed.unwrap_or_else(|_| {
                            index
                                .unreadable
                                .insert(shown, "listing this folder panicked".into());
                            Vec::new()
                        });
                        queue.done(subfolders);
                    }
                    (index, loose)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut index = Index::default();
                    let why = "a folder walker stopped; part of the folder was not indexed";
                    index
                        .unreadable
                        .insert(root.display().to_string(), why.into());
                    (index, Vec::new())
                })
            })
            .collect()
    });
    for (part, files) in parts {
        index.absorb(part);
        loose.extend(files);
    }
    loose.sort();
    for days in index.days.values_mut() {
        days.sort_by(|a, b| (a.first, &a.path).cmp(&(b.first, &b.path)));
    }
}

/// The folders still to list, and how many are being listed: the walk is over when both are
/// none.
struct FolderQueue {
    state: Mutex<(Vec<PathBuf>, usize)>,
    ready: std::sync::Condvar,
}

impl FolderQueue {
    fn new(root: PathBuf) -> Self {
        FolderQueue {
            state: Mutex::new((vec![root], 0)),
            ready: std::sync::Condvar::new(),
        }
    }

    /// The next folder to list, waiting while others are being listed (they may add more);
    /// `None` when every folder has been listed.
    fn take(&self) -> Option<PathBuf> {
        let mut state = self.state.lock().ok()?;
        loop {
            if let Some(dir) = state.0.pop() {
                state.1 += 1;
                return Some(dir);
            }
            if state.1 == 0 {
                return None;
            }
            state = self.ready.wait(state).ok()?;
        }
    }

    /// Marks one folder listed, with the subfolders it holds.
    fn done(&self, subfolders: Vec<PathBuf>) {
        if let Ok(mut state) = self.state.lock() {
            state.0.extend(subfolders);
            state.1 -= 1;
        }
        self.ready.notify_all();
    }
}

/// Identifies a folder however it is reached, so a symlink loop is listed once and ends.
#[cfg(unix)]
type FolderId = (u64, u64);
#[cfg(not(unix))]
type FolderId = PathBuf;

#[cfg(unix)]
fn folder_id(dir: &Path) -> std::io::Result<FolderId> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn folder_id(dir: &Path) -> std::io::Result<FolderId> {
    std::fs::canonicalize(dir)
}

/// Lists one folder into `index`, returning its subfolders.
fn walk_folder(
    dir: PathBuf,
    seen: &Mutex<HashSet<FolderId>>,
    index: &mut Index,
    loose: &mut Vec<PathBuf>,
) -> Vec<PathBuf> {
    let id = match folder_id(&dir) {
        Ok(id) => id,
        Err(e) => {
            index
                .unreadable
                .insert(dir.display().to_string(), e.to_string());
            return Vec::new();
        }
    };
    if !seen.lock().is_ok_and(|mut seen| seen.insert(id)) {
        return Vec::new();
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            index
                .unreadable
                .insert(dir.display().to_string(), e.to_string());
            return Vec::new();
        }
    };
    // The entry's own type needs no stat; only symlinks are followed to what they name.
    let mut names: Vec<(PathBuf, Option<std::fs::FileType>)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => names.push((e.path(), e.file_type().ok())),
            Err(e) => {
                index
                    .unreadable
                    .insert(dir.display().to_string(), e.to_string());
            }
        }
    }
    // Byte order of the names, not component-wise path order: same result, far cheaper.
    names.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    // Whether the folder is a digest or insight folder is decided once, not per file.
    let non_event = is_non_event_folder(&dir.to_string_lossy());
    let mut subfolders = Vec::new();
    let mut here: Vec<(AccountId, NamedObject)> = Vec::new();
    for (path, kind) in names {
        let kind = match kind {
            Some(k) if !k.is_symlink() => Ok(k),
            _ => std::fs::metadata(&path).map(|m| m.file_type()),
        };
        match kind {
            Ok(k) if k.is_dir() => subfolders.push(path),
            Ok(k) if k.is_file() => classify(&path, non_event, index, loose, &mut here),
            Ok(_) => index.not_logs += 1,
            Err(e) => {
                index
                    .unreadable
                    .insert(path.display().to_string(), e.to_string());
            }
        }
    }
    keep_named(dir, here, index);
    subfolders
}

/// Indexes one folder's named objects: as a day folder when they are all of one account and
/// delivery day, object by object otherwise.
fn keep_named(dir: PathBuf, here: Vec<(AccountId, NamedObject)>, index: &mut Index) {
    let Some((account, first)) = here.first() else {
        return;
    };
    let day = first.delivered.day_start();
    let one_day = here
        .iter()
        .all(|(a, o)| a == account && o.delivered.day_start() == day);
    if one_day {
        let folder = DayFolder {
            path: dir,
            first: here.iter().map(|(_, o)| o.delivered).min().unwrap_or(day),
            last: here.iter().map(|(_, o)| o.delivered).max().unwrap_or(day),
            objects: here.len() as u64,
        };
        index.days.entry(account.clone()).or_default().push(folder);
        return;
    }
    for (account, object) in here {
        index.named.entry(account).or_default().push(object);
    }
}

fn object_name(path: &Path) -> Option<ObjectName> {
    parse_object_name(&path.file_name()?.to_string_lossy())
}

/// Indexes one file. `in_non_event_folder`: whether a folder above it is a digest or insight
/// folder.
fn classify(
    path: &Path,
    in_non_event_folder: bool,
    index: &mut Index,
    loose: &mut Vec<PathBuf>,
    named: &mut Vec<(AccountId, NamedObject)>,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if in_non_event_folder || is_non_event_folder(&name) {
        index.not_events += 1;
        return;
    }
    match parse_object_name(&name) {
        Some(o) if o.kind == ObjectKind::Log => named.push((
            o.account,
            NamedObject {
                path: path.to_path_buf(),
                delivered: o.delivered,
            },
        )),
        Some(_) => index.not_events += 1,
        None if looks_like_log(&name) => loose.push(path.to_path_buf()),
        None => index.not_logs += 1,
    }
}

fn accounts_of_loose_files(
    files: Vec<PathBuf>,
    workers: usize,
    unreadable: &mut BTreeMap<String, String>,
) -> Vec<LooseFile> {
    let results = parallel_map(&files, workers, |path| {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let bytes = decompress(bytes).map_err(|e| e.to_string())?;
        let accounts: BTreeSet<AccountId> = match decode_whole(&bytes) {
            Some(records) => records.iter().filter_map(record_account).collect(),
            None => split_records(&bytes)
                .records
                .iter()
                .filter_map(|raw| Record::parse(raw.get()).ok())
                .filter_map(|r| record_account(&r))
                .collect(),
        };
        Ok::<_, String>(accounts)
    });
    let mut out = Vec::new();
    for (path, result) in files.into_iter().zip(results) {
        match result {
            // Files that fail here are still scanned under no account, so the failure is
            // reported once in the summary of the first batch.
            Ok(accounts) if !accounts.is_empty() => out.push(LooseFile { path, accounts }),
            Ok(_) => {
                unreadable.insert(
                    path.display().to_string(),
                    "no record names an account (recipientAccountId or userIdentity.accountId)"
                        .into(),
                );
            }
            Err(reason) => {
                unreadable.insert(path.display().to_string(), reason);
            }
        }
    }
    out
}

/// Runs `f` over `items` on `workers` threads, results in input order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Reads one file and folds it into `part`; a file that cannot be read is named in the report.
fn scan_object(
    path: &Path,
    named: bool,
    account: &AccountId,
    window: &Window,
    shared: &WindowShared,
    folders: &mut OpenFolders,
    part: &mut Partial,
) {
    let shown = path.display();
    // One read buffer per worker, reused: most objects are a few KB, and a fresh allocation
    // for each costs more than reading it.
    let mut buffer = std::mem::take(&mut part.file_buffer);
    let read = folders
        .open(path)
        .and_then(|mut f| read_whole(&mut f, &mut buffer));
    match read {
        Ok(len) => {
            let object = ObjectRef {
                shown: &shown,
                named,
            };
            fold_object(object, &buffer[..len], account, window, shared, part);
        }
        Err(e) => {
            part.report
                .objects_bad
                .insert(shown.to_string(), format!("cannot read: {e}"));
        }
    }
    if buffer.len() <= MAX_KEPT_READ_BUFFER {
        part.file_buffer = buffer;
    }
}

/// The largest read buffer a worker keeps between objects.
const MAX_KEPT_READ_BUFFER: usize = 16 << 20;

/// Reads the whole file into `buffer`, which is kept at its full length (all of it
/// initialised, so it needs zeroing only when it grows); returns the file's length. Unlike
/// `read_to_end` it asks for no size first: two `read` calls for an object that fits.
fn read_whole(file: &mut std::fs::File, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    if buffer.len() < MIN_READ_BUFFER {
        buffer.resize(MIN_READ_BUFFER, 0);
    }
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
        match file.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

const MIN_READ_BUFFER: usize = 256 << 10;

/// The folders a worker has open, so each object is opened by its name within its folder
/// (one lookup) rather than by its whole path (one lookup per component, a dozen for
/// CloudTrail's layout). A window reads the few folders of one account-day.
#[derive(Default)]
struct OpenFolders {
    open: Vec<(PathBuf, std::fs::File)>,
}

impl OpenFolders {
    const KEPT: usize = 8;

    #[cfg(unix)]
    fn open(&mut self, path: &Path) -> std::io::Result<std::fs::File> {
        use rustix::fs::{Mode, OFlags};
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::File::open(path);
        };
        let at = match self
            .open
            .iter()
            .position(|(d, _)| d.as_os_str() == dir.as_os_str())
        {
            Some(i) => i,
            None => {
                let folder = std::fs::File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })?;
                if self.open.len() == Self::KEPT {
                    self.open.remove(0);
                }
                self.open.push((dir.to_path_buf(), folder));
                self.open.len() - 1
            }
        };
        let fd = rustix::fs::openat(
            &self.open[at].1,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(std::fs::File::from(fd))
    }

    #[cfg(not(unix))]
    fn open(&mut self, path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::File::open(path)
    }
}

/// Scans the chosen objects on `workers` threads and merges what they found.
fn scan(
    objects: &[(PathBuf, bool)],
    account: &AccountId,
    window: &Window,
    workers: usize,
    progress: Option<&indicatif::ProgressBar>,
    rules: Option<Arc<RuleEngine>>,
) -> Partial {
    let next = AtomicUsize::new(0);
    let shared = WindowShared::new(rules);
    let partials: Vec<Partial> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.max(1).min(objects.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut part = Partial::default();
                    let mut folders = OpenFolders::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, named)) = objects.get(i) else {
                            break;
                        };
                        scan_object(
                            path,
                            *named,
                            account,
                            window,
                            &shared,
                            &mut folders,
                            &mut part,
                        );
                        if let Some(bar) = progress {
                            bar.inc(1);
                        }
                    }
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut p = Partial::default();
                    p.report
                        .objects_bad
                        .insert("(scan worker)".into(), "a scan worker panicked".into());
                    p
                })
            })
            .collect()
    });
    merge(partials)
}

#[async_trait]
impl ActivitySource for FolderSource {
    async fn accounts(&self) -> Result<Vec<AccountId>, SourceError> {
        let mut all: BTreeSet<AccountId> = self.index.named.keys().cloned().collect();
        all.extend(self.index.days.keys().cloned());
        for f in &self.index.loose {
            all.extend(f.accounts.iter().cloned());
        }
        Ok(all.into_iter().collect())
    }

    async fn activity(
        &self,
        account: &AccountId,
        window: &Window,
    ) -> Result<ActivityBatch, SourceError> {
        let Selection {
            objects,
            unreadable,
        } = self.select(account, window);
        let listed = objects.len() as u64;
        if let Some(bar) = &self.progress {
            bar.inc_length(objects.len() as u64);
        }
        let part = if objects.is_empty() {
            // Most windows of a long replay are empty: no threads for them.
            Partial::default()
        } else {
            let account_c = account.clone();
            let window_c = *window;
            let workers = self.workers;
            let progress = self.progress.clone();
            let rules = self.rules.clone();
            tokio::task::spawn_blocking(move || {
                scan(
                    &objects,
                    &account_c,
                    &window_c,
                    workers,
                    progress.as_ref(),
                    rules,
                )
            })
            .await
            .map_err(|e| SourceError::Scan(e.to_string()))?
        };

        let (rows, mut report, rule_records) = part.finish();
        report.objects_listed = listed;
        report.objects_bad.extend(unreadable);
        // Walk-level counts belong to the whole folder: report them with the first batch.
        if let Ok(mut taken) = self.walk_report_taken.lock() {
            if !*taken {
                *taken = true;
                let named: usize = self.index.named.values().map(Vec::len).sum();
                let in_days: u64 = self.index.days.values().flatten().map(|d| d.objects).sum();
                report.objects_found += (named + self.index.loose.len()) as u64 + in_days;
                report.objects_not_events += self.index.not_events;
                report.files_not_logs += self.index.not_logs;
                for (p, r) in &self.index.unreadable {
                    report.objects_bad.insert(p.clone(), r.clone());
                }
            }
        }
        Ok(ActivityBatch {
            account: account.clone(),
            window: *window,
            rows,
            report,
            rule_records: self.rules.as_ref().map(|_| rule_records),
        })
    }
}
