//! Debian 13's riscv64 kernel (6.12) on the `virt` board, driven through the console like a
//! person would: boot to a busybox shell with the built-in SBI and with OpenSBI, `-smp 2`,
//! a file written to a virtio-blk disk survives a fresh boot, `poweroff` exits 0, two guests
//! ping each other over `-netdev socket`, and two boots with no input are identical.
//!
//! The guest files come from `scripts/debian-guest.sh riscv64` (run first by `.ci/run`); they
//! are found in `$EMU_GUEST_DIR`, else `${EMU_GUEST_CACHE:-~/.cache/emu-guest}/riscv64/current`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The marker the test initramfs prints once its modules are loaded.
const MARKER: &str = "EMU-INIT-READY";
/// Longest a boot may take on a loaded 2-core CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

struct GuestFiles {
    kernel: String,
    initrd: String,
    opensbi: String,
}

fn guest_files() -> GuestFiles {
    let dir = common::guest_dir();
    let file = |n: &str| {
        let p = dir.join(n);
        assert!(
            p.is_file(),
            "the Debian guest files are missing ({} not found): run `scripts/debian-guest.sh \
             riscv64` first (it downloads Debian 13's kernel, busybox and OpenSBI into \
             ~/.cache/emu-guest)",
            p.display()
        );
        p.to_str().unwrap().to_string()
    };
    GuestFiles {
        kernel: file("Image"),
        initrd: file("initrd.gz"),
        opensbi: file("fw_dynamic.bin"),
    }
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("linux_boot")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running emu whose console (UART0 on stdio) the test reads and types into.
struct Guest {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    /// How much of `out` earlier `expect` calls consumed.
    seen: usize,
    name: String,
}

impl Guest {
    fn start(name: &str, args: &[&str]) -> Guest {
        let (child, stdin, out) = common::spawn_collecting(args);
        Guest {
            stdin: Some(stdin),
            child,
            out,
            seen: 0,
            name: name.to_string(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Wait until `needle` appears after what earlier calls consumed; returns the text up to
    /// and including it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(i) = text.get(self.seen..).and_then(|t| t.find(needle)) {
                let end = self.seen + i + needle.len();
                let got = text[self.seen..end].to_string();
                self.seen = end;
                return got;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "{}: no {needle:?} within {timeout:?}; console so far:\n{text}",
                    self.name
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "{}: emu exited ({status}) before {needle:?}; console:\n{}",
                    self.name,
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type a command line into the shell.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Run `cmd` in the shell and return its output (between two markers).
    fn run(&mut self, cmd: &str) -> String {
        self.send(&format!("echo EMU-BEGIN; {cmd}; echo EMU-END"));
        // The shell echoes the command line itself: skip past the echo of "EMU-END".
        self.expect("EMU-END", BOOT_TIMEOUT);
        self.expect("EMU-BEGIN\r\n", BOOT_TIMEOUT);
        let got = self.expect("EMU-END", BOOT_TIMEOUT);
        got.trim_end_matches("EMU-END").to_string()
    }

    /// Wait for emu to exit; returns its status code.
    fn wait(&mut self, timeout: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "{}: emu did not exit within {timeout:?}; console:\n{}",
                    self.name,
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn boot_to_shell(&mut self) {
        self.expect(MARKER, BOOT_TIMEOUT);
        self.expect("EMU-SHELL", BOOT_TIMEOUT);
        // The prompt of busybox's ash.
        self.expect("# ", BOOT_TIMEOUT);
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_args(g: &GuestFiles) -> Vec<&str> {
    vec![
        "--arch", "riscv64", "-M", "virt", "-kernel", &g.kernel, "-initrd", &g.initrd, "-serial",
        "stdio",
    ]
}

#[test]
fn builtin_sbi_smp2_shell_and_disk_survives_a_reboot() {
    let g = guest_files();
    let dir = temp_dir("builtin_sbi");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 4 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=virtio", disk.display());

    let mut args = base_args(&g);
    args.extend([
        "-smp",
        "2",
        "-drive",
        &drive,
        "-device",
        "virtio-rng-device",
        "-append",
        "console=ttyS0 quiet",
    ]);
    let mut vm = Guest::start("boot 1", &args);
    vm.boot_to_shell();
    let cpuinfo = vm.run("cat /proc/cpuinfo");
    assert!(cpuinfo.contains("processor\t: 0"), "{cpuinfo}");
    assert!(
        cpuinfo.contains("processor\t: 1"),
        "-smp 2 must bring up hart 1: {cpuinfo}"
    );
    assert!(cpuinfo.contains("rv64imafdc"), "{cpuinfo}");
    // The kernel found the bit-manipulation extensions in the device tree (and so patched in
    // its Zbb string and bit operations, which then ran through the boot).
    assert!(cpuinfo.contains("_zba_zbb_zbc_zbs"), "{cpuinfo}");
    let online = vm.run("cat /sys/devices/system/cpu/online");
    assert!(online.contains("0-1"), "{online}");
    let devices = vm.run("ls /sys/bus/virtio/devices");
    assert!(
        devices.contains("virtio0") && devices.contains("virtio1"),
        "{devices}"
    );
    let ids = vm.run("cat /sys/bus/virtio/devices/*/device");
    // virtio-blk is device 2, virtio-rng device 4 (virtio 1.2 §5).
    assert!(ids.contains("0x0002") && ids.contains("0x0004"), "{ids}");
    // A file, written to the raw disk as a tar archive.
    vm.run(
        "mkdir -p /data && echo emu-was-here-42 > /data/note && tar cf /dev/vda /data/note && sync",
    );
    vm.send("poweroff -f");
    assert_eq!(vm.wait(BOOT_TIMEOUT), 0, "poweroff exits 0");

    // A fresh boot reads it back.
    let mut args = base_args(&g);
    args.extend(["-drive", &drive, "-append", "console=ttyS0 quiet"]);
    let mut vm = Guest::start("boot 2", &args);
    vm.boot_to_shell();
    let back = vm.run("tar xOf /dev/vda data/note");
    assert!(back.contains("emu-was-here-42"), "{back}");
    vm.send("poweroff -f");
    assert_eq!(vm.wait(BOOT_TIMEOUT), 0);
}

#[test]
fn opensbi_boots_to_a_shell() {
    let g = guest_files();
    let mut args = base_args(&g);
    args.extend(["-bios", &g.opensbi, "-append", "console=ttyS0 quiet"]);
    let mut vm = Guest::start("opensbi", &args);
    vm.expect("OpenSBI v", BOOT_TIMEOUT);
    vm.expect(
        "Platform Name               : riscv-virtio,qemu",
        BOOT_TIMEOUT,
    );
    vm.boot_to_shell();
    let v = vm.run("cat /proc/cpuinfo; uname -r");
    assert!(v.contains("hart\t\t: 0") && v.contains("6.12"), "{v}");
    vm.send("poweroff -f");
    assert_eq!(vm.wait(BOOT_TIMEOUT), 0);
}

#[test]
fn two_boots_with_no_input_are_identical() {
    let g = guest_files();
    let run = || {
        let mut args = base_args(&g);
        args.extend(["-append", "console=ttyS0 emu.test=poweroff", "--stats"]);
        let o = Command::new(env!("CARGO_BIN_EXE_emu"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let stats = String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.contains("instructions retired"))
            .map(|l| l.split(';').next().unwrap_or("").to_string())
            .expect("--stats prints the instruction count");
        (o.stdout, stats)
    };
    let (out1, n1) = run();
    let (out2, n2) = run();
    let text = String::from_utf8_lossy(&out1);
    assert!(text.contains(MARKER), "{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
    assert_eq!(n1, n2, "same instruction count");
    assert!(out1 == out2, "console output differs between two boots");
}

#[test]
fn two_guests_ping_each_other_over_a_socket_netdev() {
    let g = guest_files();
    // A port from the test's process id, so that parallel CI jobs do not collide.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let listen = format!("socket,id=n0,listen=:{port}");
    let connect = format!("socket,id=n0,connect=:{port}");
    let guest = |name: &str, netdev: &str, mac: &str, me: &str, peer: &str| {
        let mut args = base_args(&g);
        let dev = format!("virtio-net-device,netdev=n0,mac={mac}");
        let append = format!("console=ttyS0 quiet emu.ip={me}/24 emu.test=ping:{peer} emu.wait=10");
        args.extend(["-netdev", netdev, "-device", &dev, "-append", &append]);
        Guest::start(name, &args)
    };
    let mut a = guest("A", &listen, "52:54:00:00:00:0a", "10.0.2.10", "10.0.2.11");
    // B connects: A's listening socket must exist first.
    std::thread::sleep(Duration::from_millis(500));
    let mut b = guest("B", &connect, "52:54:00:00:00:0b", "10.0.2.11", "10.0.2.10");
    a.expect("EMU-PING-", BOOT_TIMEOUT);
    b.expect("EMU-PING-", BOOT_TIMEOUT);
    assert!(a.text().contains("EMU-PING-OK 10.0.2.11"), "{}", a.text());
    assert!(b.text().contains("EMU-PING-OK 10.0.2.10"), "{}", b.text());
    assert_eq!(a.wait(BOOT_TIMEOUT), 0);
    assert_eq!(b.wait(BOOT_TIMEOUT), 0);
}
