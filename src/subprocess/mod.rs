//! asyncio's subprocesses: [`create_subprocess_exec`],
//! [`create_subprocess_shell`] and [`Process`], over `tokio::process`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};

use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use crate::{StreamReader, StreamWriter};

/// Where a child's standard stream goes (asyncio's `stdin=`, `stdout=`,
/// `stderr=` values).
///
/// ```
/// let b = asyncio::create_subprocess_exec("true", [""; 0]).stdout(asyncio::PIPE);
/// # drop(b);
/// assert_eq!(asyncio::PIPE, asyncio::Redirect::Pipe);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Redirect {
    /// The parent's stream (asyncio's `None`, the default).
    #[default]
    Inherit,
    /// A pipe: the [`Process`] field (`stdin`, `stdout`, `stderr`) is set.
    Pipe,
    /// `/dev/null`.
    DevNull,
    /// For `stderr` only: wherever `stdout` goes.
    Stdout,
}

/// asyncio's `subprocess.PIPE`: the child's stream is a pipe, read or
/// written through the [`Process`] field of the same name.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_exec("echo", ["piped"])
///         .stdout(asyncio::PIPE)
///         .await
///         .unwrap();
///     let out = p.stdout.as_mut().unwrap().read_to_end().await.unwrap();
///     assert_eq!(out, b"piped\n");
///     p.wait().await.unwrap();
/// });
/// ```
pub const PIPE: Redirect = Redirect::Pipe;
/// asyncio's `subprocess.DEVNULL`: the child's stream is `/dev/null`.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_exec("echo", ["lost"])
///         .stdout(asyncio::DEVNULL)
///         .await
///         .unwrap();
///     assert!(p.stdout.is_none());
///     assert_eq!(p.communicate(None).await.unwrap(), (vec![], vec![]));
/// });
/// ```
pub const DEVNULL: Redirect = Redirect::DevNull;
/// asyncio's `subprocess.STDOUT` (for `stderr`): the child's standard error
/// goes wherever its standard output goes.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_shell("echo out; echo err >&2")
///         .stdout(asyncio::PIPE)
///         .stderr(asyncio::STDOUT)
///         .await
///         .unwrap();
///     assert!(p.stderr.is_none());
///     let (out, err) = p.communicate(None).await.unwrap();
///     assert_eq!(out, b"out\nerr\n");
///     assert!(err.is_empty());
/// });
/// ```
pub const STDOUT: Redirect = Redirect::Stdout;

/// What [`create_subprocess_exec`] and [`create_subprocess_shell`] return:
/// the child's options; awaiting it spawns the child.
///
/// # Errors
///
/// Awaiting it gives the spawn's [`io::Error`], its message naming the
/// program (`cannot run program "nosuch": No such file or directory (os
/// error 2)`), or the shell command, and the working directory if one was
/// set.
///
/// # Cancel safety
///
/// The child is spawned, without waiting, at the first poll: a future
/// dropped before it was polled spawns nothing, and one that was polled has
/// resolved.
///
/// # Panics
///
/// Awaiting it outside a Tokio runtime.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_shell("echo $GREETING from $(pwd)")
///         .env("GREETING", "hello")
///         .cwd("/")
///         .stdout(asyncio::PIPE)
///         .await
///         .unwrap();
///     let (out, _) = p.communicate(None).await.unwrap();
///     assert_eq!(out, b"hello from /\n");
/// });
/// ```
#[must_use = "a subprocess is spawned only when awaited"]
#[derive(Debug)]
pub struct Subprocess {
    program: OsString,
    args: Vec<OsString>,
    shell: bool,
    stdin: Redirect,
    stdout: Redirect,
    stderr: Redirect,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    kill_on_drop: bool,
}

/// Runs `program` with `args` (asyncio's `create_subprocess_exec(program,
/// *args)`); `program` is looked up in `PATH`. Await the result to spawn.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_exec("echo", ["a", "b"])
///         .stdout(asyncio::PIPE)
///         .await
///         .unwrap();
///     let line = p.stdout.as_mut().unwrap().readline().await.unwrap();
///     assert_eq!(line, b"a b\n");
///     assert_eq!(p.wait().await.unwrap(), 0);
/// });
/// ```
pub fn create_subprocess_exec<I, S>(program: impl AsRef<OsStr>, args: I) -> Subprocess
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Subprocess {
        program: program.as_ref().to_owned(),
        args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        shell: false,
        stdin: Redirect::Inherit,
        stdout: Redirect::Inherit,
        stderr: Redirect::Inherit,
        cwd: None,
        env: Vec::new(),
        kill_on_drop: false,
    }
}

/// Runs `cmd` with `/bin/sh -c` (asyncio's `create_subprocess_shell(cmd)`).
/// Await the result to spawn.
///
/// ```
/// asyncio::run(async {
///     let p = asyncio::create_subprocess_shell("exit 3").await.unwrap();
///     assert_eq!(p.wait().await.unwrap(), 3);
/// });
/// ```
pub fn create_subprocess_shell(cmd: impl AsRef<OsStr>) -> Subprocess {
    let mut b = create_subprocess_exec("/bin/sh", [OsStr::new("-c"), cmd.as_ref()]);
    b.shell = true;
    b
}

impl Subprocess {
    /// The child's standard input (default: the parent's).
    ///
    /// # Panics
    ///
    /// With [`STDOUT`], which is for `stderr` only.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut p = asyncio::create_subprocess_exec("cat", [""; 0])
    ///         .stdin(asyncio::PIPE)
    ///         .stdout(asyncio::PIPE)
    ///         .await
    ///         .unwrap();
    ///     let (out, _) = p.communicate(Some(b"through cat")).await.unwrap();
    ///     assert_eq!(out, b"through cat");
    /// });
    /// ```
    pub fn stdin(mut self, r: Redirect) -> Self {
        assert!(
            r != Redirect::Stdout,
            "STDOUT is only for stderr: use PIPE, DEVNULL or Inherit for stdin"
        );
        self.stdin = r;
        self
    }

    /// The child's standard output (default: the parent's).
    ///
    /// # Panics
    ///
    /// With [`STDOUT`], which is for `stderr` only.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("echo", ["quiet"])
    ///         .stdout(asyncio::DEVNULL)
    ///         .await
    ///         .unwrap();
    ///     assert!(p.stdout.is_none());
    ///     assert_eq!(p.wait().await.unwrap(), 0);
    /// });
    /// ```
    pub fn stdout(mut self, r: Redirect) -> Self {
        assert!(
            r != Redirect::Stdout,
            "STDOUT is only for stderr: use PIPE, DEVNULL or Inherit for stdout"
        );
        self.stdout = r;
        self
    }

    /// The child's standard error (default: the parent's); [`STDOUT`]
    /// merges it into the child's standard output.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut p = asyncio::create_subprocess_shell("echo out; echo err >&2")
    ///         .stdout(asyncio::PIPE)
    ///         .stderr(asyncio::STDOUT)
    ///         .await
    ///         .unwrap();
    ///     let (out, err) = p.communicate(None).await.unwrap();
    ///     assert_eq!(out, b"out\nerr\n");
    ///     assert!(err.is_empty());
    /// });
    /// ```
    pub fn stderr(mut self, r: Redirect) -> Self {
        self.stderr = r;
        self
    }

    /// The child's working directory.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut p = asyncio::create_subprocess_exec("pwd", [""; 0])
    ///         .cwd("/")
    ///         .stdout(asyncio::PIPE)
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(p.communicate(None).await.unwrap().0, b"/\n");
    /// });
    /// ```
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable of the child (the rest is inherited).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut p = asyncio::create_subprocess_shell("printf %s \"$X\"")
    ///         .env("X", "42")
    ///         .stdout(asyncio::PIPE)
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(p.communicate(None).await.unwrap().0, b"42");
    /// });
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Kill the child (`SIGKILL`) when the [`Process`] is dropped while it
    /// runs. Off by default: a dropped `Process` leaves the child running,
    /// as asyncio does.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("sleep", ["60"])
    ///         .kill_on_drop(true)
    ///         .await
    ///         .unwrap();
    ///     drop(p); // the sleep is killed
    /// });
    /// ```
    pub fn kill_on_drop(mut self, kill: bool) -> Self {
        self.kill_on_drop = kill;
        self
    }

    fn spawn(self) -> io::Result<Process> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.kill_on_drop(self.kill_on_drop);
        cmd.stdin(stdio(self.stdin));
        let mut merged = None;
        match (self.stdout, self.stderr) {
            (Redirect::Pipe, Redirect::Stdout) => {
                // One pipe for both: a socket pair, both ends in the child.
                let (parent, child) = std::os::unix::net::UnixStream::pair()?;
                let child2 = child.try_clone()?;
                cmd.stdout(Stdio::from(std::os::fd::OwnedFd::from(child)));
                cmd.stderr(Stdio::from(std::os::fd::OwnedFd::from(child2)));
                merged = Some(parent);
            }
            (Redirect::Inherit, Redirect::Stdout) => {
                use std::os::fd::AsFd;
                let out = io::stdout().as_fd().try_clone_to_owned()?;
                cmd.stdout(Stdio::inherit());
                cmd.stderr(Stdio::from(out));
            }
            (Redirect::DevNull, Redirect::Stdout) => {
                cmd.stdout(Stdio::null());
                cmd.stderr(Stdio::null());
            }
            (out, err) => {
                cmd.stdout(stdio(out));
                cmd.stderr(stdio(err));
            }
        }
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().map(StreamWriter::new);
        let stdout = match merged {
            Some(parent) => {
                parent.set_nonblocking(true)?;
                // The writing end of the pair must not stay open here.
                drop(cmd);
                let parent = tokio::net::UnixStream::from_std(parent)?;
                Some(StreamReader::new(parent))
            }
            None => child.stdout.take().map(StreamReader::new),
        };
        let stderr = child.stderr.take().map(StreamReader::new);
        let (status_tx, status) = watch::channel(None);
        let (kill, kill_rx) = mpsc::unbounded_channel();
        tokio::spawn(reap(child, status_tx, kill_rx, self.kill_on_drop));
        Ok(Process {
            stdin,
            stdout,
            stderr,
            pid,
            status,
            kill,
        })
    }

    fn spawn_error(&self, e: io::Error) -> io::Error {
        let what = if self.shell {
            format!("cannot run shell command {:?}", self.args[1])
        } else {
            format!("cannot run program {:?}", self.program)
        };
        match &self.cwd {
            Some(dir) => io::Error::new(e.kind(), format!("{what} in {}: {e}", dir.display())),
            None => io::Error::new(e.kind(), format!("{what}: {e}")),
        }
    }
}

fn stdio(r: Redirect) -> Stdio {
    match r {
        Redirect::Inherit | Redirect::Stdout => Stdio::inherit(),
        Redirect::Pipe => Stdio::piped(),
        Redirect::DevNull => Stdio::null(),
    }
}

impl IntoFuture for Subprocess {
    type Output = io::Result<Process>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<Process>> + Send>>;

    /// Spawns the child. Errors name the program: `cannot run program
    /// "nosuch": No such file or directory (os error 2)`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.spawn() })
    }
}

/// A child process (asyncio's `Process`).
///
/// `stdin`, `stdout` and `stderr` are set for the streams redirected to
/// [`PIPE`], as asyncio's attributes. The child is reaped in the background
/// (asyncio's child watcher): [`returncode`](Self::returncode) is set once
/// it exits, negative for a signal. Dropping the `Process` leaves the child
/// running unless [`Subprocess::kill_on_drop`] was set.
///
/// ```
/// asyncio::run(async {
///     let mut p = asyncio::create_subprocess_exec("sh", ["-c", "read x; echo got $x; exit 7"])
///         .stdin(asyncio::PIPE)
///         .stdout(asyncio::PIPE)
///         .await
///         .unwrap();
///     let (out, err) = p.communicate(Some(b"it\n")).await.unwrap();
///     assert_eq!(out, b"got it\n");
///     assert!(err.is_empty());
///     assert_eq!(p.returncode(), Some(7));
/// });
/// ```
pub struct Process {
    /// The child's standard input, if it is a pipe.
    pub stdin: Option<StreamWriter>,
    /// The child's standard output, if it is a pipe.
    pub stdout: Option<StreamReader>,
    /// The child's standard error, if it is a pipe.
    pub stderr: Option<StreamReader>,
    pid: u32,
    status: watch::Receiver<Option<i32>>,
    kill: mpsc::UnboundedSender<()>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Process");
        d.field("pid", &self.pid);
        match self.returncode() {
            Some(code) => d.field("returncode", &code),
            None => d.field("running", &true),
        };
        d.finish_non_exhaustive()
    }
}

/// asyncio's `returncode`: the exit code, or minus the signal.
fn returncode(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        (None, None) => i32::MIN,
    }
}

/// The child watcher: waits for the child, kills it on request.
async fn reap(
    mut child: Child,
    status: watch::Sender<Option<i32>>,
    mut kill: mpsc::UnboundedReceiver<()>,
    kill_on_drop: bool,
) {
    let mut process_alive = true;
    let code = loop {
        tokio::select! {
            r = child.wait() => break r.map(returncode).unwrap_or(i32::MIN),
            msg = kill.recv(), if process_alive => match msg {
                Some(()) => { let _ = child.start_kill(); }
                None => {
                    // The `Process` was dropped.
                    process_alive = false;
                    if kill_on_drop {
                        let _ = child.start_kill();
                    }
                }
            },
        }
    };
    let _ = status.send(Some(code));
}

impl Process {
    /// The child's process id.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("true", [""; 0]).await.unwrap();
    ///     assert!(p.pid() > 0);
    /// });
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit code once the child has exited (negative: killed by that
    /// signal), else `None` (asyncio's `returncode`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("false", [""; 0]).await.unwrap();
    ///     p.wait().await.unwrap();
    ///     assert_eq!(p.returncode(), Some(1));
    /// });
    /// ```
    pub fn returncode(&self) -> Option<i32> {
        *self.status.borrow()
    }

    /// Waits for the child to exit; its return code (asyncio's `wait()`).
    /// Several waits may run at once; each gets the code.
    ///
    /// A child writing much to a [`PIPE`] that nobody reads blocks when the
    /// pipe is full, and so does this wait (as asyncio's): use
    /// [`communicate`](Self::communicate).
    ///
    /// # Errors
    ///
    /// Only when the background child watcher is gone before the child
    /// exited (the runtime is shutting down): an [`io::Error`] of kind
    /// `Other`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the wait leaves the child alone.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("sh", ["-c", "exit 5"]).await.unwrap();
    ///     let (a, b) = futures::join!(p.wait(), p.wait());
    ///     assert_eq!((a.unwrap(), b.unwrap()), (5, 5));
    /// });
    /// ```
    pub async fn wait(&self) -> io::Result<i32> {
        let mut status = self.status.clone();
        let code = status
            .wait_for(Option::is_some)
            .await
            .map_err(|_| io::Error::other("the child watcher is gone (runtime shutting down)"))?;
        Ok(code.expect("wait_for saw Some"))
    }

    /// Feeds `input` to the child's stdin and closes it (a piped stdin is
    /// closed also with `None`), reads stdout and stderr to their end at
    /// the same time, waits for the child, and returns `(stdout, stderr)`
    /// (asyncio's `communicate()`; an output that is not piped is empty).
    /// Large outputs on both pipes cannot deadlock. A child that exits
    /// without reading its input is not an error (the broken pipe is
    /// ignored, as asyncio ignores it).
    ///
    /// # Errors
    ///
    /// An error writing the input (other than the broken pipe or reset of
    /// a child that did not read it all), an error reading `stdout` or
    /// `stderr`, or [`wait`](Self::wait)'s error.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe. Dropped before its first poll, it does nothing.
    /// Dropped later: `stdin` is gone (taken, and closed once the input
    /// buffered so far is sent, in the background); the bytes of an output
    /// still being read stay in its reader's buffer, but an output already
    /// read to its end (both, once it waits for the exit) is lost with the
    /// future.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut p = asyncio::create_subprocess_shell("cat; echo done >&2")
    ///         .stdin(asyncio::PIPE)
    ///         .stdout(asyncio::PIPE)
    ///         .stderr(asyncio::PIPE)
    ///         .await
    ///         .unwrap();
    ///     let big = vec![b'x'; 1 << 20];
    ///     let (out, err) = p.communicate(Some(&big)).await.unwrap();
    ///     assert_eq!(out.len(), 1 << 20);
    ///     assert_eq!(err, b"done\n");
    /// });
    /// ```
    pub async fn communicate(&mut self, input: Option<&[u8]>) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let stdin = self.stdin.take();
        let feed = async move {
            let Some(w) = stdin else { return Ok(()) };
            if let Some(data) = input {
                w.write(data);
            }
            w.close();
            match w.wait_closed().await {
                Err(e) if !is_broken_pipe(&e) => Err(e),
                _ => Ok(()),
            }
        };
        let out = read_all(self.stdout.as_mut());
        let err = read_all(self.stderr.as_mut());
        let (fed, out, err) = tokio::join!(feed, out, err);
        fed?;
        let (out, err) = (out?, err?);
        self.wait().await?;
        Ok((out, err))
    }

    /// Sends signal `sig` to the child (asyncio's `send_signal`), through
    /// the `kill` command (the crate has no `unsafe` and no `libc`).
    ///
    /// # Errors
    ///
    /// - `NotFound` (asyncio's `ProcessLookupError`) when the child's exit
    ///   was already seen ([`returncode`](Self::returncode) is set);
    /// - the error of running the `kill` command, if it cannot run;
    /// - `InvalidInput` when `kill` fails (a signal number it refuses, say)
    ///   and the child has not exited meanwhile.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("sleep", ["60"]).await.unwrap();
    ///     p.send_signal(2).unwrap(); // SIGINT
    ///     assert_eq!(p.wait().await.unwrap(), -2);
    /// });
    /// ```
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        self.check_running()?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run kill to signal process {}: {e}", self.pid),
                )
            })?;
        if status.success() || self.returncode().is_some() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("kill -{sig} {} failed ({status})", self.pid),
            ))
        }
    }

    /// Sends `SIGTERM` (asyncio's `terminate()`); the return code becomes
    /// `-15` (for a child that does not handle the signal).
    ///
    /// # Errors
    ///
    /// As [`send_signal`](Self::send_signal).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("sleep", ["60"]).await.unwrap();
    ///     p.terminate().unwrap();
    ///     assert_eq!(p.wait().await.unwrap(), -15);
    /// });
    /// ```
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(15)
    }

    /// Kills the child with `SIGKILL` (asyncio's `kill()`); the return code
    /// becomes `-9`. The kill is done by the background child watcher, so
    /// this returns before the child is gone: [`wait`](Self::wait) for it.
    ///
    /// # Errors
    ///
    /// `NotFound` (asyncio's `ProcessLookupError`) when the child's exit was
    /// already seen ([`returncode`](Self::returncode) is set).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let p = asyncio::create_subprocess_exec("sleep", ["60"]).await.unwrap();
    ///     p.kill().unwrap();
    ///     assert_eq!(p.wait().await.unwrap(), -9);
    /// });
    /// ```
    pub fn kill(&self) -> io::Result<()> {
        self.check_running()?;
        // The watcher owns the child and kills it (a reaped pid is never
        // signalled).
        let _ = self.kill.send(());
        Ok(())
    }

    fn check_running(&self) -> io::Result<()> {
        match self.returncode() {
            None => Ok(()),
            Some(code) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {} has already exited with {code}", self.pid),
            )),
        }
    }
}

fn is_broken_pipe(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

async fn read_all(reader: Option<&mut StreamReader>) -> io::Result<Vec<u8>> {
    match reader {
        Some(r) => r.read_to_end().await,
        None => Ok(Vec::new()),
    }
}
