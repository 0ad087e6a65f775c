//! `-device virtconsole,chardev=ID`: the virtio console's host end is a `-chardev`.
//!
//! The command-line rules as QEMU has them (one-line errors naming `-device` and the id), and
//! Debian's kernel on the `virt` board with `console=hvc0`: its console output lands in a
//! `file` chardev, and a shell on `/dev/hvc0` is driven through a `stdio` chardev while UART0
//! goes to a file.
//!
//! The guest files come from `scripts/debian-guest.sh riscv64`, found as tests/linux_boot.rs
//! finds them; without them the boot tests are skipped with a message, except in CI (`CI`
//! set), where they fail.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a boot may take on a loaded 2-core CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

use common::emu;

fn temp_dir(test: &str) -> PathBuf {
    common::temp_dir("virtconsole", test)
}

/// emu with piped stdin and stdout: what it prints is collected by a reader thread, so a test
/// can wait for a line while the guest runs.
struct Session {
    child: Child,
    stdin: std::process::ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
    /// Where the output comes from, for failure messages.
    what: &'static str,
}

impl Session {
    fn start(args: &[&str], what: &'static str) -> Session {
        let (child, stdin, out) = common::spawn_collecting(args);
        Session {
            child,
            stdin,
            out,
            what,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Wait until the output contains `needle` (fail if emu exits or the boot timeout passes).
    fn expect(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            if start.elapsed() > BOOT_TIMEOUT || self.child.try_wait().unwrap().is_some() {
                let _ = self.child.kill();
                panic!("no {needle:?}{}; got:\n{}", self.what, self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    /// emu's exit status once it ends (fail after the boot timeout).
    fn exit_code(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            if start.elapsed() > BOOT_TIMEOUT {
                let _ = self.child.kill();
                panic!("emu did not exit{}:\n{}", self.what, self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn assert_one_line_error(args: &[&str], needles: &[&str]) {
    let o = emu(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
    assert!(err.starts_with("emu: "), "{args:?}: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} does not mention {n:?}");
    }
}

#[test]
fn chardev_errors_name_the_option_and_the_id() {
    fn virt<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["-M", "virt", "-kernel", "Image"];
        v.extend_from_slice(extra);
        v
    }
    // No such chardev, before or after the -device.
    assert_one_line_error(
        &virt(&["-device", "virtconsole,chardev=nope"]),
        &[
            "'-device'",
            "virtconsole,chardev=nope",
            "no -chardev with id 'nope'",
        ],
    );
    assert_one_line_error(
        &virt(&[
            "-device",
            "virtio-serial-device,chardev=c1",
            "-chardev",
            "null,id=c0",
        ]),
        &["'-device'", "'c1'"],
    );
    // stdio twice: UART0's default mon:stdio and a stdio chardev, or two stdio chardevs.
    assert_one_line_error(
        &virt(&[
            "-chardev",
            "stdio,id=c0",
            "-device",
            "virtconsole,chardev=c0",
        ]),
        &["'-device'", "stdio", "-serial mon:stdio", "mux=on"],
    );
    assert_one_line_error(
        &virt(&[
            "-chardev",
            "stdio,id=a,mux=on",
            "-chardev",
            "stdio,id=b,mux=on",
            "-serial",
            "chardev:a",
            "-device",
            "virtconsole,chardev=b",
        ]),
        &["'-device'", "stdio is already used by chardev 'a'"],
    );
    // One chardev on two devices needs mux=on.
    assert_one_line_error(
        &virt(&[
            "-chardev",
            "stdio,id=c0",
            "-serial",
            "chardev:c0",
            "-device",
            "virtconsole,chardev=c0",
        ]),
        &["'-device'", "chardev 'c0' is already in use", "mux=on"],
    );
    assert_one_line_error(
        &virt(&[
            "-serial",
            "null",
            "-chardev",
            "null,id=n",
            "-device",
            "virtconsole,chardev=n",
            "-device",
            "virtio-console-device,chardev=n",
        ]),
        &["'-device'", "'n' is already in use"],
    );
    // chardev= belongs to the console only; chardev ids are unique.
    assert_one_line_error(
        &virt(&[
            "-chardev",
            "null,id=n",
            "-device",
            "virtio-rng-device,chardev=n",
        ]),
        &["'-device'", "unknown device property 'chardev'"],
    );
    assert_one_line_error(
        &virt(&["-chardev", "null,id=n", "-chardev", "null,id=n"]),
        &["'-chardev'", "'n' used twice"],
    );
}

#[test]
fn help_lists_the_chardev_property() {
    let o = emu(&["-device", "help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("name \"virtconsole\", props: chardev=ID"),
        "{out}"
    );
    let o = emu(&["--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("virtconsole[,chardev=ID]"), "{out}");
    assert!(out.contains("-device virtconsole,chardev=ID"), "{out}");
}

/// The Debian guest's kernel and initramfs, or None (skipped, except in CI) when absent.
/// `-M virt -kernel KERNEL -initrd INITRD` followed by `rest`.
fn virt_boot<'a>(kernel: &'a str, initrd: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-M", "virt", "-kernel", kernel, "-initrd", initrd];
    args.extend_from_slice(rest);
    args
}

fn guest_files() -> Option<(String, String)> {
    let dir = common::guest_dir();
    let (kernel, initrd) = (dir.join("Image"), dir.join("initrd.gz"));
    if !kernel.is_file() || !initrd.is_file() {
        let msg = format!(
            "the Debian guest files are missing ({} not found): run `scripts/debian-guest.sh \
             riscv64` first",
            kernel.display()
        );
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
        return None;
    }
    Some((kernel.to_str()?.to_string(), initrd.to_str()?.to_string()))
}

/// The kernel's console on hvc0 goes to a file chardev; UART0 gets none of it.
#[test]
fn kernel_console_on_hvc0_lands_in_a_file_chardev() {
    let Some((kernel, initrd)) = guest_files() else {
        return;
    };
    let dir = temp_dir("file");
    let hvc = dir.join("hvc0.txt");
    let uart = dir.join("uart.txt");
    let chardev = format!("file,id=con0,path={}", hvc.display());
    let serial = format!("file:{}", uart.display());
    let o = emu(&virt_boot(
        &kernel,
        &initrd,
        &[
            "-serial",
            &serial,
            "-chardev",
            &chardev,
            "-device",
            "virtconsole,chardev=con0",
            "-append",
            "console=hvc0 emu.test=poweroff",
        ],
    ));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&std::fs::read(&hvc).unwrap()).into_owned();
    // Debian's kernel has virtio_mmio as a module, loaded by /init: hvc0 appears after that,
    // and the kernel's last words reach it.
    assert!(text.contains("reboot: Power down"), "hvc0: {text:?}");
    let uart = String::from_utf8_lossy(&std::fs::read(&uart).unwrap()).into_owned();
    assert!(!uart.contains("reboot: Power down"), "uart: {uart:?}");
}

/// A shell on hvc0 (busybox's cttyhack follows the active console), typed into through a
/// stdio chardev while UART0 goes to a file.
#[test]
fn shell_on_hvc0_through_a_stdio_chardev() {
    let Some((kernel, initrd)) = guest_files() else {
        return;
    };
    let dir = temp_dir("stdio");
    let uart = dir.join("uart.txt");
    let serial = format!("file:{}", uart.display());
    let mut emu = Session::start(
        &virt_boot(
            &kernel,
            &initrd,
            &[
                "-serial",
                &serial,
                "-chardev",
                "stdio,id=con0",
                "-device",
                "virtconsole,chardev=con0",
                "-append",
                "console=hvc0",
            ],
        ),
        " on hvc0",
    );
    // busybox ash's prompt.
    emu.expect("# ");
    // The arithmetic happens in the guest, so the answer cannot be the echo of the input.
    emu.send(b"echo EMU-HVC-$((6*7)) $(cat /sys/class/tty/console/active)\n");
    emu.expect("EMU-HVC-42 hvc0");
    emu.send(b"poweroff -f\n");
    let status = emu.exit_code();
    assert_eq!(status, Some(0), "{}", emu.text());
    let uart = String::from_utf8_lossy(&std::fs::read(&uart).unwrap()).into_owned();
    assert!(!uart.contains("EMU-HVC-42"), "uart: {uart:?}");
}

/// Two boots with the console on a file chardev and no input retire the same instructions
/// and write the same bytes (the console is polled at every round, input or not).
#[test]
fn two_boots_on_a_file_chardev_are_identical() {
    let Some((kernel, initrd)) = guest_files() else {
        return;
    };
    let dir = temp_dir("determinism");
    let run = |n: u32| {
        let hvc = dir.join(format!("hvc0-{n}.txt"));
        let chardev = format!("file,id=con0,path={}", hvc.display());
        let o = emu(&virt_boot(
            &kernel,
            &initrd,
            &[
                "-serial",
                "null",
                "-chardev",
                &chardev,
                "-device",
                "virtconsole,chardev=con0",
                "-append",
                "console=hvc0 emu.test=poweroff",
                "--stats",
            ],
        ));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "{err}");
        let insns = err
            .lines()
            .find(|l| l.contains("instructions retired"))
            .and_then(|l| l.split(';').next())
            .map(str::to_string)
            .expect("--stats prints the instruction count");
        (std::fs::read(&hvc).unwrap(), insns)
    };
    let (out1, n1) = run(1);
    let (out2, n2) = run(2);
    assert!(!out1.is_empty());
    assert_eq!(n1, n2, "same instruction count");
    assert!(out1 == out2, "hvc0 output differs between two boots");
}

/// UART0 and the console share one stdio chardev (`mux=on`): input goes to the console first
/// (QEMU's mux focuses the device attached last), Ctrl-A c hands it to UART0's shell.
#[test]
fn muxed_stdio_moves_input_with_ctrl_a_c() {
    let Some((kernel, initrd)) = guest_files() else {
        return;
    };
    let mut emu = Session::start(
        &virt_boot(
            &kernel,
            &initrd,
            &[
                "-chardev",
                "stdio,id=s,mux=on",
                "-serial",
                "chardev:s",
                "-device",
                "virtconsole,chardev=s",
                "-append",
                "console=ttyS0 quiet",
            ],
        ),
        "",
    );
    // The shell runs on ttyS0 (console=ttyS0).
    emu.expect("EMU-SHELL");
    emu.expect("# ");
    // Typed with the focus on the console: nobody reads hvc0, so nothing comes back.
    emu.send(b"echo EMU-A-$((1+1))\n");
    std::thread::sleep(Duration::from_millis(500));
    // Ctrl-A c: the focus moves to UART0, where the shell is.
    emu.send(b"\x01cecho EMU-B-$((2+2))\n");
    emu.expect("EMU-B-4");
    assert!(!emu.text().contains("EMU-A-"), "{}", emu.text());
    emu.send(b"poweroff -f\n");
    let status = emu.exit_code();
    assert_eq!(status, Some(0), "{}", emu.text());
}

/// A chardev outlives a guest reboot, as in QEMU: the board is built afresh, but the console's
/// file goes on where the first boot left it instead of being truncated again.
#[test]
fn a_file_chardev_survives_a_guest_reboot() {
    let Some((kernel, initrd)) = guest_files() else {
        return;
    };
    let dir = temp_dir("reboot");
    let hvc = dir.join("hvc0.txt");
    let chardev = format!("file,id=con0,path={}", hvc.display());
    let (mut child, mut stdin, out) = common::spawn_collecting(&virt_boot(
        &kernel,
        &initrd,
        &[
            "-serial",
            "stdio",
            "-chardev",
            &chardev,
            "-device",
            "virtconsole,chardev=con0",
            // The shell runs on ttyS0 (the only console when /init starts); the kernel's
            // messages go to both.
            "-append",
            "console=hvc0 console=ttyS0 quiet",
        ],
    ));
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let expect_n = |needle: &str, n: usize, child: &mut Child| {
        let start = Instant::now();
        while text().matches(needle).count() < n {
            if start.elapsed() > BOOT_TIMEOUT || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!("no {n}x {needle:?} on UART0; got:\n{}", text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    expect_n("EMU-SHELL", 1, &mut child);
    expect_n("# ", 1, &mut child);
    stdin.write_all(b"reboot -f\n").unwrap();
    stdin.flush().unwrap();
    expect_n("EMU-SHELL", 2, &mut child);
    expect_n("# ", 2, &mut child);
    stdin.write_all(b"poweroff -f\n").unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            panic!("emu did not exit:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, Some(0), "{}", text());
    let log = String::from_utf8_lossy(&std::fs::read(&hvc).unwrap()).into_owned();
    let restart = log.find("reboot: Restarting system");
    let power_down = log.find("reboot: Power down");
    assert!(
        restart.is_some() && power_down.is_some() && restart < power_down,
        "both boots in order: {log:?}"
    );
}
