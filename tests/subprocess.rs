#![cfg(unix)]
//! create_subprocess_exec / create_subprocess_shell / Process with real
//! programs (sh, cat, echo, sleep, true, false). Each test names the CPython
//! test (`test_subprocess.py::SubprocessMixin`) it mirrors.

use std::io;

use asyncio::{DEVNULL, PIPE, Runner, STDOUT, create_subprocess_exec, create_subprocess_shell};

fn run<F: Future>(fut: F) -> F::Output {
    Runner::new().worker_threads(2).run(fut)
}

const NO_ARGS: [&str; 0] = [];

/// test_subprocess.py::SubprocessMixin::test_stdin_stdout
#[test]
fn a_child_reads_stdin_and_writes_stdout_through_pipes() {
    run(async {
        let mut p = create_subprocess_exec("cat", NO_ARGS)
            .stdin(PIPE)
            .stdout(PIPE)
            .await
            .unwrap();
        assert!(p.pid() > 0);
        assert_eq!(p.returncode(), None);
        let stdin = p.stdin.take().unwrap();
        stdin.write(b"python The Winner\n");
        stdin.drain().await.unwrap();
        let line = p.stdout.as_mut().unwrap().readline().await.unwrap();
        assert_eq!(line, b"python The Winner\n");
        stdin.close();
        stdin.wait_closed().await.unwrap();
        assert_eq!(p.stdout.as_mut().unwrap().read_to_end().await.unwrap(), b"");
        assert_eq!(p.wait().await.unwrap(), 0);
        assert_eq!(p.returncode(), Some(0));
    });
}

/// test_subprocess.py::SubprocessMixin::test_shell
#[test]
fn a_shell_command_gives_its_exit_code() {
    run(async {
        let p = create_subprocess_shell("exit 7").await.unwrap();
        assert_eq!(p.wait().await.unwrap(), 7);
        let p = create_subprocess_exec("false", NO_ARGS).await.unwrap();
        assert_eq!(p.wait().await.unwrap(), 1);
        let p = create_subprocess_exec("true", NO_ARGS).await.unwrap();
        assert_eq!(p.wait().await.unwrap(), 0);
    });
}

/// test_subprocess.py::SubprocessMixin::test_devnull_input,
/// test_devnull_output, test_devnull_error
#[test]
fn devnull_works_on_every_stream_and_leaves_the_field_empty() {
    run(async {
        let mut p = create_subprocess_shell("cat; echo out; echo err >&2")
            .stdin(DEVNULL)
            .stdout(PIPE)
            .stderr(DEVNULL)
            .await
            .unwrap();
        assert!(p.stdin.is_none() && p.stderr.is_none());
        let (out, err) = p.communicate(None).await.unwrap();
        assert_eq!(out, b"out\n");
        assert!(err.is_empty());

        let mut p = create_subprocess_shell("echo out; echo err >&2")
            .stdout(DEVNULL)
            .stderr(PIPE)
            .await
            .unwrap();
        assert!(p.stdout.is_none());
        assert_eq!(
            p.communicate(None).await.unwrap(),
            (vec![], b"err\n".to_vec())
        );
    });
}

/// test_subprocess.py::SubprocessMixin::test_communicate (stderr=STDOUT
/// merges the two)
#[test]
fn stderr_to_stdout_merges_the_streams() {
    run(async {
        let mut p = create_subprocess_shell("echo one; echo two >&2; echo three")
            .stdout(PIPE)
            .stderr(STDOUT)
            .await
            .unwrap();
        assert!(p.stderr.is_none());
        let (out, err) = p.communicate(None).await.unwrap();
        assert_eq!(out, b"one\ntwo\nthree\n");
        assert!(err.is_empty());
    });
}

/// test_subprocess.py::SubprocessMixin::test_communicate, test_pause_reading:
/// large outputs on both pipes, and a large input, cannot deadlock
#[test]
fn communicate_with_large_input_and_outputs_does_not_deadlock() {
    run(async {
        let size = 4 << 20;
        let input: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut p = create_subprocess_shell("head -c 4194304 /dev/zero >&2; cat")
            .stdin(PIPE)
            .stdout(PIPE)
            .stderr(PIPE)
            .await
            .unwrap();
        let (out, err) = p.communicate(Some(&input)).await.unwrap();
        assert!(out == input, "stdout is the input, byte for byte");
        assert_eq!(err.len(), size);
        assert!(err.iter().all(|&b| b == 0));
        assert_eq!(p.returncode(), Some(0));
    });
}

/// test_subprocess.py::SubprocessMixin::test_communicate_none_input,
/// test_empty_input: a piped stdin is closed, so `cat` ends
#[test]
fn communicate_closes_a_piped_stdin_with_no_or_empty_input() {
    run(async {
        for input in [None, Some(&b""[..])] {
            let mut p = create_subprocess_exec("cat", NO_ARGS)
                .stdin(PIPE)
                .stdout(PIPE)
                .await
                .unwrap();
            assert_eq!(p.communicate(input).await.unwrap(), (vec![], vec![]));
            assert_eq!(p.returncode(), Some(0));
        }
    });
}

/// test_subprocess.py::SubprocessMixin::test_communicate_ignore_broken_pipe
#[test]
fn communicate_ignores_a_child_that_does_not_read_its_input() {
    run(async {
        let mut p = create_subprocess_exec("true", NO_ARGS)
            .stdin(PIPE)
            .await
            .unwrap();
        let big = vec![b'x'; 4 << 20];
        assert_eq!(p.communicate(Some(&big)).await.unwrap(), (vec![], vec![]));
        assert_eq!(p.returncode(), Some(0));
    });
}

/// test_subprocess.py::SubprocessMixin::test_stdin_broken_pipe
#[test]
fn writing_to_a_child_that_exited_makes_drain_fail() {
    run(async {
        let p = create_subprocess_exec("true", NO_ARGS)
            .stdin(PIPE)
            .await
            .unwrap();
        p.wait().await.unwrap();
        let stdin = p.stdin.as_ref().unwrap();
        let err = loop {
            stdin.write(&[0u8; 128 * 1024]);
            if let Err(e) = stdin.drain().await {
                break e;
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    });
}

/// test_subprocess.py::SubprocessMixin::test_kill, test_terminate,
/// test_send_signal: the return code is minus the signal
#[test]
fn a_signalled_child_has_a_negative_return_code() {
    run(async {
        let p = create_subprocess_exec("sleep", ["60"]).await.unwrap();
        p.kill().unwrap();
        assert_eq!(p.wait().await.unwrap(), -9);

        let p = create_subprocess_exec("sleep", ["60"]).await.unwrap();
        p.terminate().unwrap();
        assert_eq!(p.wait().await.unwrap(), -15);

        // The child says it is ready before it is signalled (SIGHUP = 1).
        let mut p = create_subprocess_shell("echo ready; exec sleep 60")
            .stdout(PIPE)
            .await
            .unwrap();
        assert_eq!(
            p.stdout.as_mut().unwrap().readline().await.unwrap(),
            b"ready\n"
        );
        p.send_signal(1).unwrap();
        assert_eq!(p.wait().await.unwrap(), -1);
        assert_eq!(p.returncode(), Some(-1));

        // test_subprocess.py::SubprocessTransportTests::test_proc_exited:
        // signalling a child that is gone is ProcessLookupError.
        assert_eq!(p.kill().unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(p.terminate().unwrap_err().kind(), io::ErrorKind::NotFound);
    });
}

/// test_subprocess.py::SubprocessMixin::test_subprocess_concurrent_wait
#[test]
fn concurrent_waits_all_get_the_code() {
    run(async {
        let p = create_subprocess_shell("exit 3").await.unwrap();
        let (a, b, c) = futures::join!(p.wait(), p.wait(), p.wait());
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (3, 3, 3));
    });
}

/// test_subprocess.py::SubprocessMixin::test_cancel_process_wait: a cancelled
/// wait leaves the child alone
#[test]
fn a_cancelled_wait_leaves_the_child_running() {
    run(async {
        let mut p = create_subprocess_shell("read x; echo got $x")
            .stdin(PIPE)
            .stdout(PIPE)
            .await
            .unwrap();
        let waited = asyncio::wait_for(p.wait(), 0.01).await;
        assert!(waited.unwrap_err().is_timeout());
        assert_eq!(p.returncode(), None);
        let (out, _) = p.communicate(Some(b"it\n")).await.unwrap();
        assert_eq!(out, b"got it\n");
    });
}

/// test_subprocess.py::SubprocessMixin::test_close_dont_kill_finished and
/// asyncio's child watcher: a dropped Process leaves the child running
#[test]
fn a_dropped_process_leaves_the_child_running() {
    run(async {
        let mut p = create_subprocess_shell("read x; echo alive $x")
            .stdin(PIPE)
            .stdout(PIPE)
            .await
            .unwrap();
        let (stdin, mut stdout) = (p.stdin.take().unwrap(), p.stdout.take().unwrap());
        drop(p);
        stdin.write(b"still\n");
        stdin.drain().await.unwrap();
        assert_eq!(stdout.readline().await.unwrap(), b"alive still\n");
    });
}

/// kill_on_drop(true): a dropped Process kills its child (its stdout then
/// ends)
#[test]
fn kill_on_drop_kills_the_child_when_the_process_is_dropped() {
    run(async {
        let mut p = create_subprocess_exec("sleep", ["60"])
            .stdout(PIPE)
            .kill_on_drop(true)
            .await
            .unwrap();
        let mut stdout = p.stdout.take().unwrap();
        drop(p);
        assert_eq!(stdout.read_to_end().await.unwrap(), b"");
    });
}

/// test_subprocess.py::SubprocessMixin::test_read_stdout_after_process_exit
#[test]
fn output_can_be_read_after_the_child_exited() {
    run(async {
        let mut p = create_subprocess_exec("echo", ["left", "behind"])
            .stdout(PIPE)
            .await
            .unwrap();
        assert_eq!(p.wait().await.unwrap(), 0);
        assert_eq!(
            p.stdout.as_mut().unwrap().read_to_end().await.unwrap(),
            b"left behind\n"
        );
    });
}

/// test_subprocess.py::SubprocessMixin::test_create_subprocess_env_shell,
/// test_create_subprocess_env_exec, cwd
#[test]
fn env_and_cwd_reach_the_child() {
    run(async {
        let dir = std::env::temp_dir();
        let mut p = create_subprocess_exec("sh", ["-c", "echo $FOO; pwd"])
            .env("FOO", "bar")
            .cwd(&dir)
            .stdout(PIPE)
            .await
            .unwrap();
        let (out, _) = p.communicate(None).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("bar"));
        assert_eq!(
            std::fs::canonicalize(lines.next().unwrap()).unwrap(),
            std::fs::canonicalize(&dir).unwrap()
        );
    });
}

/// test_subprocess.py::SubprocessMixin::test_popen_error: a program that does
/// not exist is a clear error naming it, and nothing runs
#[test]
fn a_missing_program_is_an_error_naming_it() {
    run(async {
        let err = create_subprocess_exec("no-such-program-xyz", ["arg"])
            .stdin(PIPE)
            .stdout(PIPE)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no-such-program-xyz"), "{err}");

        let err = create_subprocess_exec("true", NO_ARGS)
            .cwd("/no/such/dir")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
    });
}

/// Process and its futures are Send and Debug.
#[test]
fn process_and_its_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    run(async {
        let b = create_subprocess_exec("true", NO_ARGS);
        let mut p = b.await.unwrap();
        send(&p);
        send(&p.wait());
        send(&p.communicate(None));
        assert!(format!("{p:?}").contains("pid"));
        p.wait().await.unwrap();
    });
}

/// test_subprocess.py::SubprocessMixin::test_stdin_stdout (asyncio's pipe
/// transport `write_eof` closes the pipe): write_eof on a child's stdin gives
/// it the end of its input
#[test]
fn write_eof_on_stdin_gives_the_child_its_end_of_input() {
    run(async {
        let mut p = create_subprocess_exec("cat", NO_ARGS)
            .stdin(PIPE)
            .stdout(PIPE)
            .await
            .unwrap();
        let stdin = p.stdin.as_ref().unwrap();
        stdin.write(b"all of it");
        stdin.write_eof();
        let out = asyncio::wait_for(p.stdout.as_mut().unwrap().read_to_end(), 10)
            .await
            .expect("cat saw the end of its input");
        assert_eq!(out.unwrap(), b"all of it");
        assert_eq!(p.wait().await.unwrap(), 0);
        // Closing after write_eof ends the writer normally.
        let stdin = p.stdin.take().unwrap();
        stdin.close();
        stdin.wait_closed().await.unwrap();
    });
}
