//! An attempt's log (`logs/<job>/<task>-<n>.log`): what its process writes to stdout and
//! stderr, made on the first byte.
//!
//! The process writes into a pipe and the pool copies what comes into the log file, making the
//! file (and its directory) only when there is something to keep. Most tasks of a big job
//! write nothing: creating an empty file per attempt was about a twelfth of sluice's own CPU
//! per task on a no-op job (a file creation costs tens of microseconds on ext4, a pipe a few)
//! and left 100,000 empty files behind. The copy runs beside the process, so a log grows
//! while the task runs and can be followed with `tail -f` once it exists.
//!
//! The copy ends when the pipe closes (every writer gone) or, once the process has exited,
//! with what the pipe holds then: a background process the task left behind cannot keep the
//! attempt open, as an ECS task's logs end when its essential container stops. Such a process
//! writing afterwards gets EPIPE (or SIGPIPE).

use std::fs::File;
use std::io::{self, PipeWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

/// The pipe's read end and the log it fills. The reads are the pipe's own non-blocking
/// reads, not tokio's `pipe::Receiver::try_read`: that one answers "would block" until the
/// reactor has seen the pipe readable, and what an exited process left in the pipe must be
/// taken at once, whatever the reactor has seen.
pub struct TaskLog {
    pipe: AsyncFd<File>,
    sink: Sink,
}

/// The log file, made on the first byte.
struct Sink {
    path: PathBuf,
    file: Option<File>,
    /// Why the log could not be written (a full disk): what comes after is read and dropped,
    /// since a pipe nobody reads would stall the task.
    lost: Option<io::Error>,
}

/// How much is moved per read.
const CHUNK: usize = 16 * 1024;

impl TaskLog {
    /// A pipe for the log at `path` (nothing is created on disk yet) and its write end, the
    /// process's stdout and stderr: the pool drops its copy of the write end right after the
    /// spawn, so that the pipe closes when the process (and whatever it started) is done with
    /// it. Needs a tokio runtime.
    pub fn open(path: PathBuf) -> io::Result<(Self, PipeWriter)> {
        let (reader, writer) = std::io::pipe()?;
        let reader = File::from(OwnedFd::from(reader));
        set_nonblocking(&reader)?;
        // SAFETY: the descriptor is ours and stays open, unreplaced, while the AsyncFd owns it.
        let pipe =
            unsafe { AsyncFd::register_with_interest(reader, tokio::io::Interest::READABLE) }?;
        let sink = Sink {
            path,
            file: None,
            lost: None,
        };
        Ok((Self { pipe, sink }, writer))
    }

    /// Where the log is (or will be, once something is written).
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// Copies what the process writes into the log until the pipe closes.
    pub async fn copy_until_closed(&mut self) -> io::Result<()> {
        loop {
            let mut ready = self.pipe.readable().await?;
            if self.sink.take_from(self.pipe.get_ref())? {
                return Ok(());
            }
            ready.clear_ready();
        }
    }

    /// Copies what the pipe holds now, without waiting, and closes it: the end of the log once
    /// its process has exited. An error if (some of) the output could not be kept.
    pub fn finish(mut self) -> io::Result<()> {
        self.sink.take_from(self.pipe.get_ref())?;
        match self.sink.lost {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sink {
    /// Moves what `pipe` holds into the file: `true` once the pipe has closed.
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
            if self.lost.is_none()
                && let Err(e) = self.file().and_then(|f| f.write_all(&buf[..n]))
            {
                self.lost = Some(e);
            }
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                File::create(&self.path)?
            }
        };
        Ok(self.file.insert(file))
    }
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

    fn log_in(dir: &Path) -> (TaskLog, PipeWriter) {
        TaskLog::open(dir.join("job").join("t-1.log")).unwrap()
    }

    #[tokio::test]
    async fn nothing_written_makes_no_file_and_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, writer) = log_in(dir.path());
        drop(writer);
        log.copy_until_closed().await.unwrap();
        assert!(!dir.path().join("job").exists());
    }

    #[tokio::test]
    async fn what_is_written_is_copied_in_order_until_the_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, writer) = log_in(dir.path());
        let path = log.path().to_path_buf();
        let mut w = writer;
        // More than the pipe holds: the copy must run while the writer writes.
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let expected = big.clone();
        let writing = std::thread::spawn(move || {
            w.write_all(b"first line\n").unwrap();
            w.write_all(&big).unwrap();
        });
        log.copy_until_closed().await.unwrap();
        writing.join().unwrap();
        let mut want = b"first line\n".to_vec();
        want.extend_from_slice(&expected);
        assert_eq!(std::fs::read(path).unwrap(), want);
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_written_is_drained_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory cannot be made: a file stands where it should be.
        std::fs::write(dir.path().join("job"), "in the way").unwrap();
        let (mut log, writer) = log_in(dir.path());
        let mut w = writer;
        let writing = std::thread::spawn(move || w.write_all(&[b'x'; 200_000]));
        log.copy_until_closed().await.unwrap();
        writing.join().unwrap().unwrap();
        assert!(log.finish().is_err());
    }

    #[tokio::test]
    async fn finish_takes_what_is_there_without_waiting_for_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let (log, writer) = log_in(dir.path());
        let path = log.path().to_path_buf();
        let mut w = writer;
        w.write_all(b"left behind\n").unwrap();
        // The writer is still open (a background process holding the pipe).
        log.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"left behind\n");
        // The pipe is closed: the background process's next write fails.
        assert!(w.write_all(b"later\n").is_err());
    }
}
