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
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

/// The pipe's read end and the log it fills.
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

/// The pipe's write end: the process's stdout and stderr. Dropped by the pool right after the
/// spawn, so that the pipe closes when the process (and whatever it started) is done with it.
pub struct LogWriter(OwnedFd);

impl AsFd for LogWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// How much is moved per read.
const CHUNK: usize = 16 * 1024;

impl TaskLog {
    /// A pipe for the log at `path` (nothing is created on disk yet). Needs a tokio runtime.
    pub fn open(path: PathBuf) -> io::Result<(Self, LogWriter)> {
        let (reader, writer) = std::io::pipe()?;
        let reader = File::from(OwnedFd::from(reader));
        set_nonblocking(&reader)?;
        // SAFETY: the descriptor is ours and stays open, unreplaced, while the AsyncFd owns it.
        let pipe =
            unsafe { AsyncFd::register_with_interest(reader, tokio::io::Interest::READABLE) }?;
        Ok((
            Self {
                pipe,
                sink: Sink {
                    path,
                    file: None,
                    lost: None,
                },
            },
            LogWriter(OwnedFd::from(writer)),
        ))
    }

    /// Where the log is (or will be, once something is written).
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// Why (some of) the output could not be kept, if it could not.
    pub fn lost(&self) -> Option<&io::Error> {
        self.sink.lost.as_ref()
    }

    /// Copies what the process writes into the log until the pipe closes.
    pub async fn copy_until_closed(&mut self) -> io::Result<()> {
        loop {
            let mut ready = self.pipe.readable().await?;
            match self.sink.take_from(self.pipe.get_ref()) {
                Ok(true) => return Ok(()),
                Ok(false) => ready.clear_ready(),
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies what the pipe holds now, without waiting: `true` once the pipe has closed.
    pub fn copy_available(&mut self) -> io::Result<bool> {
        self.sink.take_from(self.pipe.get_ref())
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
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(File::create(&self.path)?);
        }
        // Made just above when there was none.
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no log file"))
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

    fn log_in(dir: &Path) -> (TaskLog, LogWriter) {
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
        let mut w = File::from(writer.0);
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
        let mut w = File::from(writer.0);
        let writing = std::thread::spawn(move || w.write_all(&[b'x'; 200_000]));
        log.copy_until_closed().await.unwrap();
        writing.join().unwrap().unwrap();
        assert!(log.lost().is_some());
    }

    #[tokio::test]
    async fn copy_available_takes_what_is_there_without_waiting_for_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, writer) = log_in(dir.path());
        let mut w = File::from(writer.0);
        w.write_all(b"left behind\n").unwrap();
        // The writer is still open (a background process holding the pipe).
        assert!(!log.copy_available().unwrap());
        assert_eq!(std::fs::read(log.path()).unwrap(), b"left behind\n");
        drop(w);
        assert!(log.copy_available().unwrap());
    }
}
