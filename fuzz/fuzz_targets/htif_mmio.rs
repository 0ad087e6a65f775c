//! HTIF (devices/src/htif.rs) `tohost`/`fromhost` under arbitrary accesses, with arbitrary guest
//! RAM behind the syscall proxy (magic-memory blocks, `SYS_write` buffers that run past RAM).
//!
//! Checks: once the guest has exited, the exit code never changes; output the proxy writes never
//! exceeds what the guest's commands could ask for.
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::{GuestRam, Htif, HtifPort, HtifReg};
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x1_0000;

/// Counts the bytes written to it.
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);
impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let ram = Arc::new(GuestRam::new(RAM_BASE, RAM_SIZE).expect("64 KiB RAM"));
    // Byte 0 times 16 bytes become the start of RAM (syscall blocks and buffers).
    let image_len = usize::from(input.u8()) * 16;
    let image = input.bytes(image_len);
    assert!(ram.write(RAM_BASE, image));
    let out = Count::default();
    let err = Count::default();
    let htif = Arc::new(Mutex::new(Htif::new(
        vec![ram.clone()],
        Box::new(out.clone()),
        Box::new(err.clone()),
    )));
    let exit = htif.lock().exit_handle();
    let mut ports = [
        HtifPort::new(htif.clone(), HtifReg::ToHost),
        HtifPort::new(htif.clone(), HtifReg::FromHost),
    ];
    let mut exited: Option<u64> = None;
    for i in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        let which = usize::from(input.u8() & 1);
        let op = next_mmio_op(&mut input, 8);
        let port = &mut ports[which];
        match op {
            MmioOp::Other(sel) => {
                // A well-formed command: syscall block, putchar or getchar.
                let payload = RAM_BASE + u64::from(sel) * 8;
                let cmd: u64 = match sel & 3 {
                    0 => payload,
                    1 => (1 << 56) | (1 << 48) | u64::from(sel),
                    2 => 1 << 56,
                    _ => u64::from(sel) << 1 | 1,
                };
                ports[0].write(0, &cmd.to_le_bytes());
            }
            _ => {
                let _ = apply_mmio(port, op);
            }
        }
        match (exited, exit.code()) {
            (Some(a), b) => assert_eq!(Some(a), b, "exit code changed after exit"),
            (None, b) => exited = b,
        }
        // Each command writes at most one SYS_write buffer (bounded by RAM) or a line.
        let written = out.0.load(Ordering::Relaxed) + err.0.load(Ordering::Relaxed);
        assert!(written <= (i as u64 + 1) * (RAM_SIZE + 64));
    }
});
