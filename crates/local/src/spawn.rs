//! Starting a task process: cheaply, in its own process group, and tied to the life of sluice.
//!
//! A task must die with the `sluice` process that runs it (`PR_SET_PDEATHSIG`), which only the
//! child itself can ask for, between clone and exec. With std's `Command` that takes a
//! `pre_exec` hook, and a hook makes std `fork()` instead of `posix_spawn()`: the kernel copies
//! the page tables of the whole `sluice` process (which grows with the job), and every page
//! the runtime writes until the child has exec'd takes a copy-on-write fault. Measured on 3,000
//! no-op tasks (docs/benchmarks/orchestration.md): 14-16 s with fork, 8.3 s without.
//!
//! So this module does what glibc's `posix_spawn` does — `clone(CLONE_VM | CLONE_VFORK)`: the
//! child runs on a small stack of its own in the parent's memory, and the parent thread waits
//! until the child has exec'd — plus the one call posix_spawn has no attribute for. Everything
//! the child touches is prepared by the parent beforehand (C strings, pointer arrays, file
//! descriptors); the child makes only system calls. All signals stay blocked from before the
//! clone until the child has reset every caught signal to its default, so no handler of the
//! parent ever runs on the parent's memory in the child.
//!
//! The process is then waited for through a pidfd (readable when it exits) on the tokio
//! reactor, and reaped with `waitpid`.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

/// What to start.
pub struct SpawnSpec<'a> {
    /// The program's path (a path, not a name to look up on PATH).
    pub program: &'a Path,
    /// argv, from argv[0].
    pub argv: &'a [String],
    /// The whole environment of the new process.
    pub env: &'a Environment,
    pub working_dir: Option<&'a Path>,
    /// Where stdout and stderr go (stdin is /dev/null).
    pub output: BorrowedFd<'a>,
}

/// A running task process, the leader of its own process group.
pub struct TaskProcess {
    pid: libc::pid_t,
    exited: Option<ExitStatus>,
    #[cfg(target_os = "linux")]
    pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    child: tokio::process::Child,
}

fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

fn env_entry(key: &OsStr, value: &OsStr) -> io::Result<CString> {
    let mut entry = key.as_bytes().to_vec();
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    cstring(&entry, "an environment variable")
}

/// A process's environment as exec takes it (`KEY=VALUE` C strings): a base shared by every
/// task of a pool, made once, with the task's own variables over it. (Copied and converted
/// per task, the environment was 2% of sluice's CPU on a no-op job.)
#[derive(Clone, Default)]
pub struct Environment {
    base: std::sync::Arc<[CString]>,
    own: Vec<CString>,
}

/// A `KEY=VALUE` entry's key and value.
fn split_entry(entry: &CStr) -> (&OsStr, &OsStr) {
    let bytes = entry.to_bytes();
    let (key, value) = match bytes.iter().position(|b| *b == b'=') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &b""[..]),
    };
    (OsStr::from_bytes(key), OsStr::from_bytes(value))
}

impl Environment {
    /// An environment of exactly `vars`.
    pub fn new<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> io::Result<Self>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let base = vars
            .into_iter()
            .map(|(k, v)| env_entry(k.as_ref(), v.as_ref()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            base: base.into(),
            own: Vec::new(),
        })
    }

    /// This environment's base with `vars` over it (the base is shared, not copied).
    pub fn with<K, V>(&self, vars: impl IntoIterator<Item = (K, V)>) -> io::Result<Self>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Ok(Self {
            base: self.base.clone(),
            own: vars
                .into_iter()
                .map(|(k, v)| env_entry(k.as_ref(), v.as_ref()))
                .collect::<io::Result<_>>()?,
        })
    }

    /// Every `KEY=VALUE`: the base's that the own variables do not replace, then those.
    pub fn entries(&self) -> impl Iterator<Item = &CStr> {
        self.base
            .iter()
            .filter(|b| {
                let key = split_entry(b).0;
                !self.own.iter().any(|o| split_entry(o).0 == key)
            })
            .chain(self.own.iter())
            .map(CString::as_c_str)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&OsStr> {
        self.entries()
            .map(split_entry)
            .find_map(|(k, v)| (k == key).then_some(v))
    }
}

impl TaskProcess {
    /// Starts the process: its own process group, stdin from /dev/null, stdout and stderr to
    /// `spec.output`, SIGKILL when the thread that started it exits (the process pool's thread,
    /// which lives as long as the `sluice` process).
    #[cfg(target_os = "linux")]
    pub fn spawn(spec: SpawnSpec<'_>) -> io::Result<Self> {
        let program = cstring(spec.program.as_os_str().as_bytes(), "the program path")?;
        let argv: Vec<CString> = spec
            .argv
            .iter()
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<io::Result<_>>()?;
        let working_dir = spec
            .working_dir
            .map(|d| cstring(d.as_os_str().as_bytes(), "the working directory"))
            .transpose()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> =
            spec.env.entries().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        let stdin = dev_null()?;

        let mut child = ChildArgs {
            program: program.as_ptr(),
            argv: argv_ptrs.as_ptr(),
            envp: envp_ptrs.as_ptr(),
            working_dir: working_dir
                .as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr()),
            stdin: stdin.as_raw_fd(),
            output: spec.output.as_raw_fd(),
            parent: unsafe { libc::getpid() },
            // SAFETY: a sigset_t is plain data; sigprocmask fills it below.
            mask: unsafe { std::mem::zeroed() },
            error: 0,
        };
        let stack = CHILD_STACK
            .with(|kept| kept.borrow_mut().take())
            .map_or_else(ChildStack::new, Ok)?;
        // SAFETY: clone with CLONE_VM | CLONE_VFORK runs `child_main` on `stack` in this
        // process's memory and suspends this thread until the child has exec'd or exited, so
        // `child` and everything it points to outlive the child's use of them. Signals are
        // blocked across the clone (see the module comment).
        let pid = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut child.mask);
            let pid = libc::clone(
                child_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&mut child as *mut ChildArgs).cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &child.mask, std::ptr::null_mut());
            // The child is off the stack (exec'd or exited): kept for this thread's next spawn.
            CHILD_STACK.with(|kept| *kept.borrow_mut() = Some(stack));
            if pid < 0 {
                return Err(clone_error);
            }
            pid
        };
        // The child wrote `error` (with CLONE_VM, into our memory) before it exited, if exec
        // failed; CLONE_VFORK returned only after that.
        let error = unsafe { std::ptr::read_volatile(&child.error) };
        if error != 0 {
            let mut status = 0;
            // SAFETY: reaping our own child, which has exited.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Err(io::Error::from_raw_os_error(error));
        }
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // Without a pidfd we cannot wait for it: do not leave it running unwatched.
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                return Err(e);
            }
        };
        // SAFETY: the pidfd is ours and stays open, unreplaced, while the AsyncFd owns it.
        let pidfd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
        }?;
        Ok(Self {
            pid,
            exited: None,
            pidfd,
        })
    }

    /// Elsewhere: std's spawn (posix_spawn) in a process group, without the parent-death signal.
    #[cfg(not(target_os = "linux"))]
    pub fn spawn(spec: SpawnSpec<'_>) -> io::Result<Self> {
        let mut cmd = tokio::process::Command::new(spec.program);
        if let Some(dir) = spec.working_dir {
            cmd.current_dir(dir);
        }
        cmd.arg0(&spec.argv[0])
            .args(&spec.argv[1..])
            .env_clear()
            .envs(spec.env.entries().map(split_entry))
            .stdin(std::process::Stdio::null())
            .stdout(spec.output.try_clone_to_owned()?)
            .stderr(spec.output.try_clone_to_owned()?)
            .kill_on_drop(true)
            .process_group(0);
        let child = cmd.spawn()?;
        Ok(Self {
            pid: child.id().unwrap_or_default() as libc::pid_t,
            exited: None,
            child,
        })
    }

    /// The process id (also the id of its process group).
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        if self.exited.is_none() {
            // SAFETY: our child, not yet reaped, so the pid cannot have been reused.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Sends `signal` to the process's group (the task and whatever it started), if the task
    /// is still running: once it is reaped, its group id could belong to someone else.
    pub fn signal_group(&self, signal: libc::c_int) {
        if self.exited.is_none() {
            // SAFETY: the group our unreaped child leads.
            unsafe { libc::kill(-self.pid, signal) };
        }
    }

    /// Waits for the process to exit and reaps it.
    #[cfg(target_os = "linux")]
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        loop {
            let mut ready = self.pidfd.readable().await?;
            let mut status = 0;
            // SAFETY: our own child; WNOHANG because readiness may be spurious.
            let pid = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if pid == self.pid {
                let status = ExitStatus::from_raw(status);
                self.exited = Some(status);
                return Ok(status);
            }
            if pid < 0 {
                return Err(io::Error::last_os_error());
            }
            ready.clear_ready();
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.exited = Some(status);
        Ok(status)
    }
}

impl Drop for TaskProcess {
    /// A process nobody waits for any more (its runtime is shutting down) is killed, as tokio's
    /// `kill_on_drop` does.
    fn drop(&mut self) {
        if self.exited.is_none() {
            // SAFETY: our unreaped child. WNOHANG: a killed process is reaped if it is already
            // gone; otherwise it stays a zombie until sluice exits, which is harmless.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
    }
}

/// /dev/null, opened once for every task's stdin (close-on-exec; the child's dup2 onto fd 0
/// is what it keeps).
#[cfg(target_os = "linux")]
fn dev_null() -> io::Result<BorrowedFd<'static>> {
    use std::os::fd::AsFd;
    static DEV_NULL: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    if let Some(file) = DEV_NULL.get() {
        return Ok(file.as_fd());
    }
    let file = std::fs::File::open("/dev/null")?;
    Ok(DEV_NULL.get_or_init(|| file).as_fd())
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open(2) returns a new file descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we own from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// What the child needs, prepared by the parent: the child reads it and writes only `error`.
#[cfg(target_os = "linux")]
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    working_dir: *const libc::c_char,
    stdin: libc::c_int,
    output: libc::c_int,
    parent: libc::pid_t,
    /// The parent thread's signal mask before everything was blocked: the task's mask.
    mask: libc::sigset_t,
    /// errno of the step that failed, 0 if the child exec'd.
    error: libc::c_int,
}

/// The child's stack: its own pages (with CLONE_VM the parent's stack is in use by the parent).
#[cfg(target_os = "linux")]
struct ChildStack {
    base: *mut libc::c_void,
}

#[cfg(target_os = "linux")]
const CHILD_STACK_SIZE: usize = 64 * 1024;

#[cfg(target_os = "linux")]
thread_local! {
    /// The stack this thread's last child ran on, for its next one. A stack mapped and
    /// unmapped per spawn cost a TLB shootdown on every core at each munmap: 2.7% of sluice's
    /// CPU on a no-op job. One per thread is enough: with CLONE_VFORK a thread has at most one
    /// child on its stack, and only until that child has exec'd.
    static CHILD_STACK: std::cell::RefCell<Option<ChildStack>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(target_os = "linux")]
impl ChildStack {
    fn new() -> io::Result<Self> {
        // SAFETY: a fresh anonymous private mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CHILD_STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { base })
    }

    /// The stack grows down from the end of the mapping.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping, which is 16-byte aligned (page aligned).
        unsafe { self.base.cast::<u8>().add(CHILD_STACK_SIZE).cast() }
    }
}

#[cfg(target_os = "linux")]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our mapping; the child no longer runs on it (CLONE_VFORK).
        unsafe { libc::munmap(self.base, CHILD_STACK_SIZE) };
    }
}

/// Signals are numbered below this on Linux (64 of them, real-time ones included).
#[cfg(target_os = "linux")]
const NSIG: libc::c_int = 65;

/// The child between clone and exec: system calls only, no allocation, no locks.
#[cfg(target_os = "linux")]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive while the parent waits (CLONE_VFORK).
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        let fail = |args: &mut ChildArgs| -> ! {
            std::ptr::write_volatile(&mut args.error, *libc::__errno_location());
            libc::_exit(127)
        };
        // The parent's handlers would run on the parent's memory: back to the defaults (the
        // signal table is the child's own, no CLONE_SIGHAND). Ignored signals stay ignored,
        // as across exec.
        for signal in 1..NSIG {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != libc::SIG_DFL
            {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(args);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(args);
        }
        // The parent died before prctl took effect: do not run orphaned.
        if libc::getppid() != args.parent {
            libc::_exit(127);
        }
        if !args.working_dir.is_null() && libc::chdir(args.working_dir) != 0 {
            fail(args);
        }
        if libc::dup2(args.stdin, 0) < 0
            || libc::dup2(args.output, 1) < 0
            || libc::dup2(args.output, 2) < 0
        {
            fail(args);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &args.mask, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
        fail(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn test_env() -> &'static Environment {
        static ENV: std::sync::OnceLock<Environment> = std::sync::OnceLock::new();
        ENV.get_or_init(|| Environment::new([("SLUICE_TEST", "42")]).unwrap())
    }

    fn spec<'a>(program: &'a Path, argv: &'a [String], out: &'a std::fs::File) -> SpawnSpec<'a> {
        SpawnSpec {
            program,
            argv,
            env: test_env(),
            working_dir: None,
            output: out.as_fd(),
        }
    }

    #[test]
    fn a_task_environment_is_the_base_with_its_own_variables_over_it() {
        let base = Environment::new([("PATH", "/bin"), ("AB", "kept"), ("A", "base")]).unwrap();
        let task = base.with([("A", "task"), ("SLUICE_ATTEMPT", "2")]).unwrap();
        let entries: Vec<_> = task
            .entries()
            .map(|e| e.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            entries,
            ["PATH=/bin", "AB=kept", "A=task", "SLUICE_ATTEMPT=2"]
        );
        assert_eq!(task.get("A"), Some(OsStr::new("task")));
        assert_eq!(base.get("A"), Some(OsStr::new("base")));
        assert_eq!(task.get("B"), None);
        let refused = Environment::new([("BAD", "a\0b")]).err().unwrap();
        assert!(refused.to_string().contains("NUL"), "{refused}");
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn a_process_gets_its_environment_directory_and_output_and_reports_its_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).unwrap();
        let argv = sh("echo \"$SLUICE_TEST $(pwd) $$\"; echo err >&2; read x || echo eof; exit 3");
        let mut p = TaskProcess::spawn(SpawnSpec {
            working_dir: Some(dir.path()),
            ..spec(Path::new("/bin/sh"), &argv, &out)
        })
        .unwrap();
        let status = p.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let text = std::fs::read_to_string(&log).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            text,
            format!("42 {} {}\nerr\neof\n", cwd.display(), p.id()),
            "environment, working directory, pid, stderr and a closed stdin"
        );
        // Waiting again answers the same.
        assert_eq!(p.wait().await.unwrap().code(), Some(3));
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("log")).unwrap();
        let argv = vec!["nope".to_string()];
        let err = TaskProcess::spawn(spec(Path::new("/nonexistent/nope"), &argv, &out))
            .err()
            .expect("spawning a missing program fails");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let missing_dir = TaskProcess::spawn(SpawnSpec {
            working_dir: Some(Path::new("/nonexistent-dir")),
            ..spec(Path::new("/bin/true"), &argv, &out)
        })
        .err()
        .expect("a missing working directory fails");
        assert_eq!(missing_dir.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_process_leads_its_own_group_and_a_signal_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("log")).unwrap();
        let argv = sh("sleep 30");
        let mut p = TaskProcess::spawn(spec(Path::new("/bin/sh"), &argv, &out)).unwrap();
        // SAFETY: querying the group of our child.
        let group = unsafe { libc::getpgid(p.pid) };
        assert_eq!(group, p.pid);
        p.signal_group(libc::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(10), p.wait())
            .await
            .expect("the signalled process exits")
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_process_dies_with_the_thread_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("log")).unwrap();
        let argv = sh("sleep 30");
        // Started from a thread that then exits: PR_SET_PDEATHSIG fires.
        let pid = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let p = TaskProcess::spawn(spec(Path::new("/bin/sh"), &argv, &out)).unwrap();
                let pid = p.pid;
                std::mem::forget(p);
                pid
            })
        })
        .join()
        .unwrap();
        let mut status = 0;
        // SAFETY: our child (a child of this process, started by the exited thread).
        let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(reaped, pid);
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    }
}
