//! HTIF, the Berkeley Host-Target Interface, as Spike (riscv-isa-sim `fesvr/htif.cc`,
//! `fesvr/syscall.cc`, `fesvr/device.cc`) and QEMU's `spike` board (`hw/char/riscv_htif.c`)
//! implement it.
//!
//! The guest talks to the host through two 64-bit words in its own RAM, `tohost` and
//! `fromhost`, found by symbol in the program's ELF. A write to `tohost` is a command:
//!
//! ```text
//! bits 63..56 device, 55..48 command, 47..0 payload
//! ```
//!
//! - device 0 (syscall proxy), command 0: if `payload & 1`, the program exits with code
//!   `payload >> 1`; otherwise `payload` is the address of a "magic memory" block of eight u64s
//!   (syscall number, arguments...). `SYS_write` and `SYS_exit` are implemented; the return
//!   value goes to `magic_mem[0]` and `fromhost` becomes 1.
//! - device 1 (block character device), command 1: putchar; command 0: getchar, which is left
//!   unanswered (emu has no console input yet), as Spike does while no key is pressed.
//!
//! The device is mapped twice on the bus ([`HtifPort`]), once over each word, because the two
//! symbols may lie in different pages. Its exit state is shared with the run loop through
//! [`HtifExit`].

use crate::bus::BusDevice;
use crate::memory::GuestRam;
use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `tohost` device numbers and commands (fesvr/device.cc).
pub const HTIF_DEV_SYSCALL: u64 = 0;
pub const HTIF_DEV_CONSOLE: u64 = 1;
pub const HTIF_CONSOLE_CMD_GETC: u64 = 0;
pub const HTIF_CONSOLE_CMD_PUTC: u64 = 1;

/// Syscall numbers of the proxy kernel ABI (riscv-pk `pk/syscall.h`, Linux's generic numbers).
pub const SYS_WRITE: u64 = 64;
pub const SYS_EXIT: u64 = 93;
const ENOSYS: i64 = 38;
const EBADF: i64 = 9;
const EFAULT: i64 = 14;

/// Largest `SYS_write` the proxy performs in one call; a longer write is shortened (the guest
/// sees a short count, which POSIX allows).
pub const MAX_WRITE: u64 = 1 << 20;

const PAYLOAD_MASK: u64 = (1 << 48) - 1;

/// The program's exit request, shared between HTIF and the run loop.
#[derive(Clone, Debug, Default)]
pub struct HtifExit(Arc<AtomicU64>);

impl HtifExit {
    /// `(code << 1) | 1` once the guest exited, 0 before (Spike's `exitcode` encoding).
    fn set(&self, code: u64) {
        self.0.store((code << 1) | 1, Ordering::Release);
    }

    /// The exit code, once the guest has asked to exit.
    pub fn code(&self) -> Option<u64> {
        let v = self.0.load(Ordering::Acquire);
        (v & 1 != 0).then_some(v >> 1)
    }
}

/// Which of the two words a [`HtifPort`] covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtifReg {
    ToHost,
    FromHost,
}

/// The HTIF state machine.
pub struct Htif {
    tohost: u64,
    fromhost: u64,
    ram: Vec<Arc<GuestRam>>,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
    exit: HtifExit,
}

impl Htif {
    /// A HTIF whose syscall proxy reads guest memory from `ram` and writes the guest's output
    /// to `stdout` / `stderr`.
    pub fn new(
        ram: Vec<Arc<GuestRam>>,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Self {
        Htif {
            tohost: 0,
            fromhost: 0,
            ram,
            stdout,
            stderr,
            exit: HtifExit::default(),
        }
    }

    /// The handle through which the run loop sees the exit request.
    pub fn exit_handle(&self) -> HtifExit {
        self.exit.clone()
    }

    /// Flush the output streams (the run loop calls this before the process exits).
    pub fn flush(&mut self) {
        let _ = self.stdout.flush();
        let _ = self.stderr.flush();
    }

    fn read_reg(&self, reg: HtifReg) -> u64 {
        match reg {
            HtifReg::ToHost => self.tohost,
            HtifReg::FromHost => self.fromhost,
        }
    }

    fn write_reg(&mut self, reg: HtifReg, offset: u64, data: &[u8]) {
        let old = self.read_reg(reg).to_le_bytes();
        let mut new = old;
        let start = offset as usize;
        let Some(dst) = start
            .checked_add(data.len())
            .and_then(|end| new.get_mut(start..end))
        else {
            log::warn!(
                "HTIF: ignoring access at offset {offset} of {} bytes",
                data.len()
            );
            return;
        };
        dst.copy_from_slice(data);
        let value = u64::from_le_bytes(new);
        match reg {
            HtifReg::FromHost => self.fromhost = value,
            HtifReg::ToHost => {
                self.tohost = value;
                // A 32-bit guest writes the low word first; the command is complete once the
                // top byte (the device) has been written, as in QEMU's htif_mm_write.
                if start + data.len() == 8 && value != 0 {
                    self.tohost = 0;
                    self.command(value);
                }
            }
        }
    }

    fn respond(&mut self, device: u64, cmd: u64, payload: u64) {
        self.fromhost = (device << 56) | (cmd << 48) | (payload & PAYLOAD_MASK);
    }

    fn command(&mut self, value: u64) {
        if self.exit.code().is_some() {
            return;
        }
        let device = value >> 56;
        let cmd = (value >> 48) & 0xff;
        let payload = value & PAYLOAD_MASK;
        match (device, cmd) {
            (HTIF_DEV_SYSCALL, 0) if payload & 1 != 0 => self.exit(payload >> 1),
            (HTIF_DEV_SYSCALL, 0) => {
                self.syscall(payload);
                if self.exit.code().is_none() {
                    self.respond(HTIF_DEV_SYSCALL, 0, 1);
                }
            }
            (HTIF_DEV_CONSOLE, HTIF_CONSOLE_CMD_PUTC) => {
                let _ = self.stdout.write_all(&[payload as u8]);
                if payload as u8 == b'\n' {
                    let _ = self.stdout.flush();
                }
                self.respond(
                    HTIF_DEV_CONSOLE,
                    HTIF_CONSOLE_CMD_PUTC,
                    0x100 | (payload & 0xff),
                );
            }
            // No console input: the request stays pending forever, which the guest sees as
            // "no key pressed" (Spike answers only when a key arrives).
            (HTIF_DEV_CONSOLE, HTIF_CONSOLE_CMD_GETC) => {}
            _ => log::warn!("HTIF: unknown command {value:#018x} (device {device}, cmd {cmd})"),
        }
    }

    fn exit(&mut self, code: u64) {
        self.exit.set(code);
        if code != 0 {
            // Spike's message (fesvr/htif.cc), which test harnesses grep for.
            let _ = writeln!(self.stderr, "*** FAILED *** (tohost = {code})");
        }
        self.flush();
    }

    fn ram_for(&self, addr: u64, len: u64) -> Option<&Arc<GuestRam>> {
        self.ram.iter().find(|r| r.contains(addr, len))
    }

    /// The syscall proxy (fesvr/syscall.cc): `magic_mem` holds the number and six arguments.
    fn syscall(&mut self, magic_mem: u64) {
        let Some(ram) = self.ram_for(magic_mem, 64).cloned() else {
            log::warn!("HTIF: syscall block at {magic_mem:#x} is outside RAM");
            return;
        };
        let mut block = [0u8; 64];
        ram.read(magic_mem, &mut block);
        let arg = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&block[8 * i..8 * i + 8]);
            u64::from_le_bytes(w)
        };
        let ret: i64 = match arg(0) {
            SYS_WRITE => self.sys_write(arg(1), arg(2), arg(3)),
            SYS_EXIT => {
                self.exit(arg(1));
                return;
            }
            n => {
                log::warn!("HTIF: unimplemented syscall {n}");
                -ENOSYS
            }
        };
        ram.write_u64(magic_mem, ret as u64);
    }

    fn sys_write(&mut self, fd: u64, buf: u64, len: u64) -> i64 {
        let len = len.min(MAX_WRITE);
        let Some(ram) = self.ram_for(buf, len).cloned() else {
            return -EFAULT;
        };
        let mut bytes = vec![0u8; len as usize];
        ram.read(buf, &mut bytes);
        let out = match fd {
            1 => &mut self.stdout,
            2 => &mut self.stderr,
            _ => return -EBADF,
        };
        match out.write_all(&bytes).and_then(|()| out.flush()) {
            Ok(()) => len as i64,
            Err(_) => -EFAULT,
        }
    }
}

/// One of HTIF's two words, as mapped on the bus.
pub struct HtifPort {
    htif: Arc<Mutex<Htif>>,
    reg: HtifReg,
}

impl HtifPort {
    pub fn new(htif: Arc<Mutex<Htif>>, reg: HtifReg) -> Self {
        HtifPort { htif, reg }
    }
}

impl BusDevice for HtifPort {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = self.htif.lock().read_reg(self.reg).to_le_bytes();
        let start = offset as usize;
        match start
            .checked_add(data.len())
            .and_then(|end| value.get(start..end))
        {
            Some(src) => data.copy_from_slice(src),
            None => data.fill(0),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.htif.lock().write_reg(self.reg, offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Capture {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock()).into_owned()
        }
    }

    const RAM: u64 = 0x8000_0000;

    fn setup() -> (
        Arc<GuestRam>,
        HtifPort,
        HtifPort,
        HtifExit,
        Capture,
        Capture,
    ) {
        let ram = Arc::new(GuestRam::new(RAM, 0x10000).unwrap());
        let (out, err) = (Capture::default(), Capture::default());
        let htif = Htif::new(
            vec![ram.clone()],
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        let exit = htif.exit_handle();
        let htif = Arc::new(Mutex::new(htif));
        let to = HtifPort::new(htif.clone(), HtifReg::ToHost);
        let from = HtifPort::new(htif, HtifReg::FromHost);
        (ram, to, from, exit, out, err)
    }

    fn read64(p: &mut HtifPort) -> u64 {
        let mut b = [0u8; 8];
        p.read(0, &mut b);
        u64::from_le_bytes(b)
    }

    #[test]
    fn exit_code_zero_and_nonzero() {
        let (_, mut to, _, exit, _, err) = setup();
        assert_eq!(exit.code(), None);
        to.write(0, &1u64.to_le_bytes());
        assert_eq!(exit.code(), Some(0));
        assert_eq!(err.text(), "");

        let (_, mut to, _, exit, _, err) = setup();
        to.write(0, &((5u64 << 1) | 1).to_le_bytes());
        assert_eq!(exit.code(), Some(5));
        assert_eq!(err.text(), "*** FAILED *** (tohost = 5)\n");
        // Later commands are ignored.
        to.write(0, &1u64.to_le_bytes());
        assert_eq!(exit.code(), Some(5));
    }

    #[test]
    fn split_32_bit_writes_complete_on_the_high_word() {
        let (_, mut to, _, exit, _, _) = setup();
        to.write(0, &7u32.to_le_bytes());
        assert_eq!(exit.code(), None);
        to.write(4, &0u32.to_le_bytes());
        assert_eq!(exit.code(), Some(3));
    }

    #[test]
    fn putchar_writes_stdout_and_answers_in_fromhost() {
        let (_, mut to, mut from, exit, out, _) = setup();
        for c in b"hi\n" {
            to.write(0, &((1u64 << 56) | (1 << 48) | u64::from(*c)).to_le_bytes());
            assert_eq!(
                read64(&mut from),
                (1u64 << 56) | (1 << 48) | 0x100 | u64::from(*c)
            );
            assert_eq!(read64(&mut to), 0, "tohost is consumed");
            from.write(0, &0u64.to_le_bytes());
        }
        assert_eq!(out.text(), "hi\n");
        assert_eq!(exit.code(), None);
    }

    #[test]
    fn syscall_write_exit_and_unknown() {
        let (ram, mut to, mut from, exit, out, err) = setup();
        let magic = RAM + 0x100;
        let msg = RAM + 0x200;
        assert!(ram.write(msg, b"hello"));
        let put = |args: &[u64]| {
            for (i, a) in args.iter().enumerate() {
                assert!(ram.write_u64(magic + 8 * i as u64, *a));
            }
        };
        put(&[SYS_WRITE, 1, msg, 5]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(read64(&mut from), 1);
        assert_eq!(ram.read_u64(magic), Some(5));
        assert_eq!(out.text(), "hello");

        put(&[SYS_WRITE, 2, msg, 4]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(err.text(), "hell");

        // Buffer outside RAM, bad fd, unknown syscall.
        put(&[SYS_WRITE, 1, 0x10, 4]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(ram.read_u64(magic), Some((-EFAULT) as u64));
        put(&[SYS_WRITE, 7, msg, 4]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(ram.read_u64(magic), Some((-EBADF) as u64));
        put(&[1234]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(ram.read_u64(magic), Some((-ENOSYS) as u64));
        assert_eq!(exit.code(), None);

        // A block outside RAM is ignored, not a panic.
        to.write(0, &0x1000u64.to_le_bytes());
        assert_eq!(exit.code(), None);

        put(&[SYS_EXIT, 3]);
        to.write(0, &magic.to_le_bytes());
        assert_eq!(exit.code(), Some(3));
    }

    #[test]
    fn odd_accesses_do_not_panic() {
        let (_, mut to, mut from, exit, _, _) = setup();
        let mut b = [0u8; 8];
        to.read(4, &mut b);
        assert_eq!(b, [0; 8]);
        to.write(6, &[1, 2, 3, 4]);
        from.write(u64::MAX, &[1]);
        assert_eq!(read64(&mut from), 0);
        assert_eq!(exit.code(), None);
    }
}
