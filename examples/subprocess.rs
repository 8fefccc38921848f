//! asyncio's subprocess examples, in Rust (the Python is quoted above each
//! part).
//!
//! `cargo run --example subprocess`

use asyncio::{PIPE, create_subprocess_exec, create_subprocess_shell};

// async def run(cmd):
//     proc = await asyncio.create_subprocess_shell(
//         cmd,
//         stdout=asyncio.subprocess.PIPE,
//         stderr=asyncio.subprocess.PIPE)
//
//     stdout, stderr = await proc.communicate()
//
//     print(f'[{cmd!r} exited with {proc.returncode}]')
//     if stdout:
//         print(f'[stdout]\n{stdout.decode()}')
//     if stderr:
//         print(f'[stderr]\n{stderr.decode()}')
async fn run(cmd: &str) -> std::io::Result<()> {
    let mut proc = create_subprocess_shell(cmd)
        .stdout(PIPE)
        .stderr(PIPE)
        .await?;

    let (stdout, stderr) = proc.communicate(None).await?;

    println!("[{cmd:?} exited with {:?}]", proc.returncode());
    if !stdout.is_empty() {
        println!("[stdout]\n{}", String::from_utf8_lossy(&stdout));
    }
    if !stderr.is_empty() {
        println!("[stderr]\n{}", String::from_utf8_lossy(&stderr));
    }
    Ok(())
}

// async def get_date():
//     code = 'import datetime; print(datetime.datetime.now())'
//     proc = await asyncio.create_subprocess_exec(
//         sys.executable, '-c', code,
//         stdout=asyncio.subprocess.PIPE)
//     data = await proc.stdout.readline()
//     line = data.decode('ascii').rstrip()
//     await proc.wait()
//     return line
async fn get_date() -> std::io::Result<String> {
    let mut proc = create_subprocess_exec("date", ["-u"]).stdout(PIPE).await?;
    let data = proc
        .stdout
        .as_mut()
        .expect("stdout is piped")
        .readline()
        .await?;
    let line = String::from_utf8_lossy(&data).trim_end().to_string();
    proc.wait().await?;
    Ok(line)
}

// async def main():
//     await asyncio.gather(
//         run('ls /zzz'),
//         run('sleep 1; echo "hello"'))
//     print(f"Current date: {await get_date()}")
fn main() -> std::io::Result<()> {
    asyncio::run(async {
        let (a, b) = asyncio::gather!(run("ls /zzz"), run("sleep 0.2; echo \"hello\""))
            .await
            .expect("the runs neither panic nor get cancelled");
        a?;
        b?;
        println!("Current date: {}", get_date().await?);

        // Killing a child: the return code is minus the signal.
        let sleeper = create_subprocess_exec("sleep", ["60"]).await?;
        sleeper.kill()?;
        println!("sleep 60 killed: returncode {}", sleeper.wait().await?);
        Ok(())
    })
}
