//! An attempt's log: what its process writes to stdout and stderr.
//!
//! The process writes into a pipe and the pool copies what comes out of it, from a short quiet
//! spell after the start on ([`QUIET_START`]: a short task's output is taken in one read at its
//! end, not a read per write). Where it goes:
//! - `logs/<job>/<task>-<n>.log`, the attempt's own file, for an attempt that did not succeed
//!   (the log one reads to see why), that ran longer than [`SPILL_AFTER`] (followed with
//!   `tail -f` while it runs) or that wrote more than [`SPILL_BYTES`];
//! - otherwise, a short run that succeeded with a little output, one block in the job's
//!   [`SUCCEEDED_LOG`] (`logs/<job>/succeeded.log`), headed `==> <task>-<n>.log <bytes> <==`;
//! - nowhere, for an attempt that wrote nothing (most tasks of a big job).
//!
//! One file per attempt cost a file creation per printing task, made by the pool's thread
//! between one task's end and the next one's start: tens of microseconds on ext4 when
//! nothing was deleted lately, and a quarter of a millisecond (twice what the rest of the pool's
//! work per task costs) in the half minute after a directory of earlier outputs was
//! deleted, when ext4's inode allocator steps over every recently freed inode
//! (docs/benchmarks/orchestration.md). Appending a block to one open file costs a write.
//!
//! Until it is known where the output goes it is held in memory (at most [`SPILL_BYTES`] per
//! attempt). The copy ends when the pipe closes (every writer gone) or, once the process has
//! exited, with what the pipe holds then: a background process the task left behind cannot
//! keep the attempt open, as an ECS task's logs end when its essential container stops. Such a
//! process writing afterwards gets EPIPE (or SIGPIPE).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::runtime::lock;

/// The job's file of the logs of short successful attempts.
pub const SUCCEEDED_LOG: &str = "succeeded.log";
/// Output held in memory per attempt before it goes to the attempt's own file.
pub const SPILL_BYTES: usize = 64 * 1024;
/// An attempt running this long gets its own file for what it wrote (and writes), so that
/// a long task's log can be followed while it runs.
pub const SPILL_AFTER: Duration = Duration::from_secs(1);
/// The pipe is first read this long after the process started, or when it exits if that is
/// sooner. Read as it came, each write of each task woke the pool's thread mid-task (a
/// context switch and a read on a core the tasks need) where one read at the end takes all
/// of a short task's output. The pipe holds 64 KiB: only a task that writes more in its first
/// moments waits, once, at most this long.
pub const QUIET_START: Duration = Duration::from_millis(10);

/// The pipe's read end and the log it fills. The reads are the pipe's own non-blocking
/// reads, not tokio's `pipe::Receiver::try_read`: that one answers "would block" until the
/// reactor has seen the pipe readable, and what an exited process left in the pipe must be
/// taken at once, whatever the reactor has seen.
pub struct TaskLog {
    /// The pipe's readiness, watched by the reactor of the thread that copies it, and only
    /// once [`QUIET_START`] is over: a task that ends sooner never has its pipe in an epoll
    /// set. Made when the attempt was launched, on the launching thread, the pipe was watched
    /// by that thread's reactor: each write of a task woke that thread (sluice's own work),
    /// which then woke the pool's thread; and every attempt cost an epoll registration.
    /// Declared before `pipe`, so it is dropped (deregistered) before the pipe is closed.
    watch: Option<AsyncFd<RawFd>>,
    pipe: File,
    sink: Sink,
    opened: Instant,
}

/// Where the output goes: held in memory until the attempt's own file is made.
struct Sink {
    path: PathBuf,
    held: Vec<u8>,
    file: Option<File>,
    /// Why the log could not be written (a full disk): what comes after is read and dropped,
    /// since a pipe nobody reads would stall the task.
    lost: Option<io::Error>,
}

/// How much is moved per read.
const CHUNK: usize = 16 * 1024;

impl TaskLog {
    /// A pipe for the log at `path` (`logs/<job>/<task>-<n>.log`; nothing is created on disk
    /// yet) and its write end, the process's stdout and stderr: the pool drops its copy of the
    /// write end right after the spawn, so that the pipe closes when the process (and whatever
    /// it started) is done with it.
    pub fn open(path: PathBuf) -> io::Result<(Self, PipeWriter)> {
        let (reader, writer) = std::io::pipe()?;
        let reader = File::from(OwnedFd::from(reader));
        set_nonblocking(&reader)?;
        let sink = Sink {
            path,
            held: Vec::new(),
            file: None,
            lost: None,
        };
        let log = Self {
            watch: None,
            pipe: reader,
            sink,
            opened: Instant::now(),
        };
        Ok((log, writer))
    }

    /// The process writing into the pipe has started: its time ([`SPILL_AFTER`],
    /// [`QUIET_START`]) runs from now, not from when the pipe was made (an attempt launched
    /// ahead may wait long for its slot).
    pub fn started(&mut self) {
        self.opened = Instant::now();
    }

    /// The attempt's own file (made if it needs one).
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// Copies what the process writes until the pipe closes, from [`QUIET_START`] on; what
    /// is held in memory goes to the attempt's own file once the attempt has run for
    /// [`SPILL_AFTER`].
    pub async fn copy_until_closed(&mut self) -> io::Result<()> {
        let spill_at = self.opened + SPILL_AFTER;
        tokio::time::sleep_until(self.opened + QUIET_START).await;
        if self.sink.take_from(&self.pipe)? {
            return Ok(());
        }
        let watch = match self.watch.take() {
            Some(watch) => watch,
            // SAFETY: `pipe` stays open, unreplaced, while `watch` lives: it is never
            // reassigned, and `watch` is declared (so dropped) before it.
            None => unsafe {
                AsyncFd::register_with_interest(
                    self.pipe.as_raw_fd(),
                    tokio::io::Interest::READABLE,
                )
            }
            .map_err(io::Error::from)?,
        };
        let watch = &*self.watch.insert(watch);
        loop {
            // (A spill empties `held`, whether it made the file or lost the output.)
            let holding = !self.sink.held.is_empty();
            // Only output held in memory needs the timer (most tasks print nothing).
            let mut ready = if holding {
                tokio::select! {
                    ready = watch.readable() => ready?,
                    _ = tokio::time::sleep_until(spill_at) => {
                        self.sink.spill();
                        continue;
                    }
                }
            } else {
                watch.readable().await?
            };
            if self.sink.take_from(&self.pipe)? {
                return Ok(());
            }
            ready.clear_ready();
        }
    }

    /// Copies what the pipe holds now, without waiting, closes it, and keeps the log: in the
    /// attempt's own file if it has one or did not `succeed`, else as a block of the job's
    /// [`SUCCEEDED_LOG`] in `together`. An error if (some of) the output could not be kept.
    pub fn finish(mut self, succeeded: bool, together: &SucceededLogs) -> io::Result<()> {
        self.sink.take_from(&self.pipe)?;
        if !self.sink.held.is_empty() && self.sink.lost.is_none() {
            if !succeeded || self.opened.elapsed() >= SPILL_AFTER {
                self.sink.spill();
            } else {
                together.append(&self.sink.path, &self.sink.held)?;
            }
        }
        match self.sink.lost.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sink {
    /// Moves what `pipe` holds into the log: `true` once the pipe has closed.
    fn take_from(&mut self, mut pipe: &File) -> io::Result<bool> {
        let mut buf = [0u8; CHUNK];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if self.lost.is_some() {
                continue;
            }
            match &mut self.file {
                Some(file) => {
                    if let Err(e) = file.write_all(&buf[..n]) {
                        self.lost = Some(e);
                    }
                }
                None => {
                    self.held.extend_from_slice(&buf[..n]);
                    if self.held.len() > SPILL_BYTES {
                        self.spill();
                    }
                }
            }
        }
    }

    /// Makes the attempt's own file and writes what was held into it.
    fn spill(&mut self) {
        if self.file.is_some() || self.lost.is_some() {
            return;
        }
        let made = (|| {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = File::create(&self.path)?;
            file.write_all(&self.held)?;
            Ok(file)
        })();
        // Either way nothing is held any more: written, or lost with the rest.
        self.held = Vec::new();
        match made {
            Ok(file) => self.file = Some(file),
            Err(e) => self.lost = Some(e),
        }
    }
}

/// The [`SUCCEEDED_LOG`] files of the jobs a pool runs, each opened once (appending).
#[derive(Default)]
pub struct SucceededLogs {
    open: Mutex<HashMap<PathBuf, File>>,
}

impl SucceededLogs {
    /// Appends the output of the attempt whose own log would be `path` as one block (one
    /// write, so blocks never interleave, even from two processes appending to one job's
    /// file).
    fn append(&self, path: &Path, output: &[u8]) -> io::Result<()> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::other(format!(
                "{}: not a log path",
                path.display()
            )));
        };
        let mut block =
            format!("==> {} {} <==\n", name.to_string_lossy(), output.len()).into_bytes();
        block.extend_from_slice(output);
        if !output.ends_with(b"\n") {
            block.push(b'\n');
        }
        let mut open = lock(&self.open);
        if !open.contains_key(dir) {
            // Bounded: a long `sluice serve` runs many jobs; reopening costs an open.
            if open.len() >= 64 {
                open.clear();
            }
            std::fs::create_dir_all(dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(SUCCEEDED_LOG))?;
            open.insert(dir.to_path_buf(), file);
        }
        let file = open.get_mut(dir).expect("inserted above");
        file.write_all(&block)
    }
}

/// Where an attempt's log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptLog {
    /// Its own file.
    File(PathBuf),
    /// Its block of the job's [`SUCCEEDED_LOG`].
    Block(Vec<u8>),
}

/// The log of attempt `name` (`<task>-<n>.log`) of the job whose log directory is `dir`:
/// its own file, or its block of the job's [`SUCCEEDED_LOG`]; `None` if it wrote nothing (or
/// has written nothing yet).
pub fn find(dir: &Path, name: &str) -> io::Result<Option<AttemptLog>> {
    let own = dir.join(name);
    if std::fs::symlink_metadata(&own).is_ok() {
        return Ok(Some(AttemptLog::File(own)));
    }
    let mut found = None;
    for_each_block(
        dir,
        |block| block == name,
        |block, output| {
            if block == name {
                found = output;
            }
        },
    )?;
    Ok(found.map(AttemptLog::Block))
}

/// Which of the attempts `names` (`<task>-<n>.log`) of the job (log directory `dir`) have a
/// block in its [`SUCCEEDED_LOG`]: one read of the file for a page of attempts, and a set no
/// bigger than the page, however many blocks the job has.
pub fn blocks_among<'a>(
    dir: &Path,
    names: impl IntoIterator<Item = &'a str>,
) -> io::Result<HashSet<&'a str>> {
    let wanted: HashSet<&str> = names.into_iter().collect();
    let mut found = HashSet::new();
    for_each_block(
        dir,
        |_| false,
        |name, _| {
            if let Some(w) = wanted.get(name) {
                found.insert(*w);
            }
        },
    )?;
    Ok(found)
}

/// Walks the blocks of the job's [`SUCCEEDED_LOG`] in order, calling `f` with each complete
/// block's name and, if `wants_body` said yes to its name, its output. The file is read as a
/// stream and the bodies not wanted are skipped: read whole, a chatty job's file (up to 64 KiB
/// per attempt) was held in memory for every page of the console. A block still being written
/// (the file ends inside it) ends the walk.
fn for_each_block(
    dir: &Path,
    mut wants_body: impl FnMut(&str) -> bool,
    mut f: impl FnMut(&str, Option<Vec<u8>>),
) -> io::Result<()> {
    use std::io::BufRead;
    let path = dir.join(SUCCEEDED_LOG);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut reader = io::BufReader::new(file);
    let mut header = Vec::new();
    let mut at: u64 = 0; // where the block's header starts
    loop {
        header.clear();
        let read = reader.read_until(b'\n', &mut header)?;
        if header.last() != Some(&b'\n') {
            break; // the end, or a header being written
        }
        let parsed = std::str::from_utf8(&header[..read - 1])
            .ok()
            .and_then(|h| h.strip_prefix("==> "))
            .and_then(|h| h.strip_suffix(" <=="))
            .and_then(|h| h.rsplit_once(' '))
            .and_then(|(name, len)| Some((name, len.parse::<usize>().ok()?)));
        let Some((name, len)) = parsed else {
            return Err(io::Error::other(format!(
                "{}: not a block header at byte {at}",
                path.display()
            )));
        };
        // The body, or for a body not wanted only its last byte: whether the newline after it
        // is its own or the block's separator.
        let (body, last) = if wants_body(name) {
            let mut body = vec![0; len];
            match reader.read_exact(&mut body) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                other => other?,
            }
            let last = body.last().copied();
            (Some(body), last)
        } else if len == 0 {
            (None, None)
        } else {
            reader.seek_relative(len as i64 - 1)?;
            let mut byte = [0u8];
            match reader.read_exact(&mut byte) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                other => other?,
            }
            (None, Some(byte[0]))
        };
        let mut length = (read + len) as u64;
        if last != Some(b'\n') && reader.fill_buf()?.first() == Some(&b'\n') {
            reader.consume(1);
            length += 1;
        }
        f(name, body);
        at += length;
    }
    Ok(())
}

fn set_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL touch only its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_in(dir: &Path, name: &str) -> (TaskLog, PipeWriter) {
        TaskLog::open(dir.join("job").join(name)).unwrap()
    }

    #[tokio::test]
    async fn a_task_s_output_is_first_read_after_its_quiet_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut writer) = log_in(dir.path(), "t-1.log");
        writer.write_all(b"early\n").unwrap();
        // Written before the copy starts: a copy that read at once would take it now.
        tokio::time::sleep(Duration::from_millis(5)).await;
        log.started();
        let first = tokio::time::timeout(Duration::ZERO, log.copy_until_closed()).await;
        assert!(first.is_err(), "the copy waits");
        assert!(
            log.sink.held.is_empty(),
            "nothing read within the quiet start"
        );
        // After it, what came is taken (and the copy goes on waiting for the close).
        let later = tokio::time::timeout(QUIET_START * 20, log.copy_until_closed()).await;
        assert!(later.is_err(), "the pipe is still open");
        assert_eq!(log.sink.held, b"early\n");
        // A process that ends within it leaves its output for `finish`, which takes it all.
        drop(writer);
        let logs = SucceededLogs::default();
        log.finish(true, &logs).unwrap();
        let together = std::fs::read_to_string(dir.path().join("job").join(SUCCEEDED_LOG)).unwrap();
        assert!(together.ends_with("early\n"), "{together}");
    }

    /// The launch makes the log on sluice's own threads, the pool copies it on its own: the
    /// pipe is watched by the copying thread's reactor, and only after the quiet start.
    #[test]
    fn the_pipe_is_watched_where_it_is_copied_and_only_after_the_quiet_start() {
        let dir = tempfile::tempdir().unwrap();
        // Made where no runtime runs (a pipe watched from here would panic: no reactor).
        let (mut short, mut short_writer) = log_in(dir.path(), "t-1.log");
        let (mut long, mut long_writer) = log_in(dir.path(), "t-2.log");
        let copier = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        copier.block_on(async {
            short.started();
            short_writer.write_all(b"short\n").unwrap();
            // It ends within the quiet start: the copy is cut off there, as the pool cuts it
            // at the process's exit, and the pipe was never in an epoll set.
            let cut = tokio::time::timeout(QUIET_START / 2, short.copy_until_closed()).await;
            assert!(cut.is_err());
            assert!(
                short.watch.is_none(),
                "watched before the quiet start ended"
            );
            long.started();
            long_writer.write_all(b"first\n").unwrap();
            let copying = tokio::time::timeout(QUIET_START * 5, long.copy_until_closed()).await;
            assert!(copying.is_err(), "the pipe is still open");
            assert!(long.watch.is_some(), "watched after the quiet start");
            assert_eq!(long.sink.held, b"first\n");
            // Written after it is watched: the readiness comes to this thread's reactor.
            long_writer.write_all(b"second\n").unwrap();
            drop(long_writer);
            long.copy_until_closed().await.unwrap();
            assert_eq!(long.sink.held, b"first\nsecond\n");
        });
        drop(short_writer);
        let logs = SucceededLogs::default();
        short.finish(true, &logs).unwrap();
        long.finish(true, &logs).unwrap();
        let together = std::fs::read_to_string(dir.path().join("job").join(SUCCEEDED_LOG)).unwrap();
        assert!(together.contains("short\n"), "{together}");
        assert!(together.contains("first\nsecond\n"), "{together}");
    }

    #[tokio::test]
    async fn an_attempt_s_time_runs_from_its_start_not_from_its_launch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut writer) = log_in(dir.path(), "t-1.log");
        // Launched ahead, it waited for a slot longer than SPILL_AFTER; then it ran briefly.
        tokio::time::sleep(SPILL_AFTER + Duration::from_millis(100)).await;
        log.started();
        writer.write_all(b"quick\n").unwrap();
        drop(writer);
        log.finish(true, &SucceededLogs::default()).unwrap();
        assert!(
            !dir.path().join("job").join("t-1.log").exists(),
            "no file of its own"
        );
        let together = std::fs::read_to_string(dir.path().join("job").join(SUCCEEDED_LOG)).unwrap();
        assert!(together.ends_with("quick\n"), "{together}");
    }

    #[tokio::test]
    async fn nothing_written_makes_no_file_and_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, writer) = log_in(dir.path(), "t-1.log");
        drop(writer);
        log.copy_until_closed().await.unwrap();
        log.finish(true, &SucceededLogs::default()).unwrap();
        assert!(!dir.path().join("job").exists());
        assert_eq!(find(&dir.path().join("job"), "t-1.log").unwrap(), None);
    }

    #[tokio::test]
    async fn short_successful_outputs_are_blocks_of_one_file_and_failures_get_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        let together = SucceededLogs::default();
        for (name, output, succeeded) in [
            ("a-1.log", &b"line one\nline two\n"[..], true),
            // No newline at the end, and a line that looks like a header.
            ("b-1.log", &b"==> a-1.log 3 <==\nno newline"[..], true),
            ("c-1.log", &b"why it failed\n"[..], false),
            ("d-1.log", &b""[..], true),
        ] {
            let (mut log, mut writer) = log_in(dir.path(), name);
            writer.write_all(output).unwrap();
            drop(writer);
            log.copy_until_closed().await.unwrap();
            log.finish(succeeded, &together).unwrap();
        }
        let found = |name| find(&job, name).unwrap();
        assert_eq!(
            found("a-1.log"),
            Some(AttemptLog::Block(b"line one\nline two\n".to_vec()))
        );
        assert_eq!(
            found("b-1.log"),
            Some(AttemptLog::Block(b"==> a-1.log 3 <==\nno newline".to_vec()))
        );
        assert_eq!(
            found("c-1.log"),
            Some(AttemptLog::File(job.join("c-1.log")))
        );
        assert_eq!(
            std::fs::read(job.join("c-1.log")).unwrap(),
            b"why it failed\n"
        );
        assert_eq!(found("d-1.log"), None);
        assert!(!job.join("a-1.log").exists(), "no file of its own");
        assert_eq!(
            blocks_among(
                &job,
                ["a-1.log", "b-1.log", "c-1.log", "d-1.log", "e-1.log"]
            )
            .unwrap(),
            HashSet::from(["a-1.log", "b-1.log"])
        );
        // Readable as it is: each block under its header.
        let text = std::fs::read_to_string(job.join(SUCCEEDED_LOG)).unwrap();
        assert_eq!(
            text,
            "==> a-1.log 18 <==\nline one\nline two\n==> b-1.log 28 <==\n==> a-1.log 3 <==\nno newline\n"
        );
    }

    /// Bodies longer than the reader's buffer, wanted or skipped, ending in a newline or not,
    /// and a last block cut off inside a body that is skipped.
    #[test]
    fn blocks_are_walked_without_reading_the_bodies_not_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        let together = SucceededLogs::default();
        let big = |c: u8, newline: bool| {
            let mut body = vec![c; 20_000];
            if newline {
                body.push(b'\n');
            }
            body
        };
        let blocks = [
            ("a-1.log", big(b'a', true)),
            ("b-1.log", big(b'b', false)),
            ("c-1.log", b"\n".to_vec()),
            ("d-1.log", big(b'\n', false)),
            ("e-1.log", b"e".to_vec()),
        ];
        for (name, body) in &blocks {
            together.append(&job.join(name), body).unwrap();
        }
        for (name, body) in &blocks {
            assert_eq!(
                find(&job, name).unwrap(),
                Some(AttemptLog::Block(body.clone())),
                "{name}"
            );
        }
        let names = [
            "a-1.log", "b-1.log", "c-1.log", "d-1.log", "e-1.log", "f-1.log",
        ];
        let all = HashSet::from(["a-1.log", "b-1.log", "c-1.log", "d-1.log", "e-1.log"]);
        assert_eq!(blocks_among(&job, names).unwrap(), all);
        // A block being written: its header and part of its body are there.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(job.join(SUCCEEDED_LOG))
            .unwrap();
        file.write_all(b"==> f-1.log 30000 <==\nffff").unwrap();
        assert_eq!(blocks_among(&job, names).unwrap(), all);
        assert_eq!(find(&job, "f-1.log").unwrap(), None);
        assert_eq!(
            find(&job, "e-1.log").unwrap(),
            Some(AttemptLog::Block(b"e".to_vec()))
        );
    }

    #[tokio::test]
    async fn a_block_being_written_is_not_read_and_a_broken_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(
            job.join(SUCCEEDED_LOG),
            "==> a-1.log 3 <==\nok\n==> b-1.log 10 <==\nhal",
        )
        .unwrap();
        assert_eq!(
            blocks_among(&job, ["a-1.log", "b-1.log"]).unwrap(),
            HashSet::from(["a-1.log"])
        );
        std::fs::write(job.join(SUCCEEDED_LOG), "garbage\n").unwrap();
        let e = find(&job, "a-1.log").unwrap_err();
        assert!(
            e.to_string().contains("not a block header at byte 0"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_long_run_gets_its_own_file_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut writer) = log_in(dir.path(), "t-1.log");
        let path = log.path().to_path_buf();
        writer.write_all(b"started\n").unwrap();
        // The process runs on: the copy goes on past SPILL_AFTER.
        let copied = tokio::time::timeout(SPILL_AFTER * 2, log.copy_until_closed()).await;
        assert!(copied.is_err(), "the pipe is still open");
        assert_eq!(std::fs::read(&path).unwrap(), b"started\n", "followable");
        writer.write_all(b"more\n").unwrap();
        drop(writer);
        log.copy_until_closed().await.unwrap();
        log.finish(true, &SucceededLogs::default()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"started\nmore\n");
    }

    #[tokio::test]
    async fn what_is_written_is_copied_in_order_until_the_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, writer) = log_in(dir.path(), "t-1.log");
        let path = log.path().to_path_buf();
        let mut w = writer;
        // More than the pipe holds and than is held in memory: the copy must run while the
        // writer writes, and the attempt gets its own file even though it succeeds.
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let expected = big.clone();
        let writing = std::thread::spawn(move || {
            w.write_all(b"first line\n").unwrap();
            w.write_all(&big).unwrap();
        });
        log.copy_until_closed().await.unwrap();
        writing.join().unwrap();
        log.finish(true, &SucceededLogs::default()).unwrap();
        let mut want = b"first line\n".to_vec();
        want.extend_from_slice(&expected);
        assert_eq!(std::fs::read(path).unwrap(), want);
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_written_is_drained_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory cannot be made: a file stands where it should be.
        std::fs::write(dir.path().join("job"), "in the way").unwrap();
        let (mut log, writer) = log_in(dir.path(), "t-1.log");
        let mut w = writer;
        let writing = std::thread::spawn(move || w.write_all(&[b'x'; 200_000]));
        log.copy_until_closed().await.unwrap();
        writing.join().unwrap().unwrap();
        assert!(log.finish(true, &SucceededLogs::default()).is_err());
    }

    #[tokio::test]
    async fn a_spill_that_fails_holds_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory cannot be made: a file stands where it should be.
        std::fs::write(dir.path().join("job"), "in the way").unwrap();
        let (mut log, mut writer) = log_in(dir.path(), "t-1.log");
        writer.write_all(b"a little\n").unwrap();
        // The process runs on past SPILL_AFTER: the spill fails, and the copy waits for the
        // pipe again instead of trying the spill over and over.
        let copied = tokio::time::timeout(SPILL_AFTER * 2, log.copy_until_closed()).await;
        assert!(copied.is_err(), "the pipe is still open");
        assert!(log.sink.held.is_empty() && log.sink.lost.is_some());
        drop(writer);
        log.copy_until_closed().await.unwrap();
        assert!(log.finish(true, &SucceededLogs::default()).is_err());
    }

    #[tokio::test]
    async fn finish_takes_what_is_there_without_waiting_for_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let (log, writer) = log_in(dir.path(), "t-1.log");
        let path = log.path().to_path_buf();
        let mut w = writer;
        w.write_all(b"left behind\n").unwrap();
        // The writer is still open (a background process holding the pipe).
        log.finish(false, &SucceededLogs::default()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"left behind\n");
        // The pipe is closed: the background process's next write fails.
        assert!(w.write_all(b"later\n").is_err());
    }
}
