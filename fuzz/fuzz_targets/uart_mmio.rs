//! NS16550A UART (devices/src/uart.rs) under arbitrary register accesses and host input.
//!
//! After every operation the interrupt line must be high exactly when IIR reports an interrupt
//! (QEMU's serial.c raises the line whenever IIR has one, without MCR.OUT2 gating), and the
//! transmitter must always be ready (output is synchronous).
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::irq::{IrqLevels, IrqLine};
use emu_devices::uart::{Ns16550a, UART0_SIZE, UART_IIR, UART_IIR_NO_INT, UART_LSR, UART_LSR_THRE};
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::Arc;

const IRQ: u32 = 10;

struct Sink;
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn read8(u: &mut Ns16550a, offset: u64) -> u8 {
    let mut b = [0u8; 1];
    u.read(offset, &mut b);
    b[0]
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let levels = Arc::new(IrqLevels::new());
    let mut uart = Ns16550a::new(IrqLine::new(levels.clone(), IRQ), Box::new(Sink));
    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        match next_mmio_op(&mut input, UART0_SIZE) {
            MmioOp::Other(n) => {
                // The host types up to 64 bytes.
                let bytes = input.bytes(usize::from(n & 63));
                let before = uart.input_space();
                let taken = uart.enqueue_input(bytes);
                assert!(taken <= bytes.len());
                assert!(uart.input_space() <= before);
            }
            op => {
                let _ = apply_mmio(&mut uart, op);
            }
        }
        // Reading LSR has no side effect on the interrupt state we check (it clears only
        // the OE/BI error bits, which the IIR check below then sees).
        let lsr = read8(&mut uart, UART_LSR);
        assert!(
            lsr & UART_LSR_THRE != 0,
            "the transmitter is always ready (output is synchronous)"
        );
        // IIR reads clear a pending THRE interrupt (PC16550D Table IV), so the line is checked
        // against the IIR value of this very read, before its side effect is visible.
        let line_before = levels.level(IRQ);
        let iir = read8(&mut uart, UART_IIR);
        assert_eq!(
            line_before,
            iir & UART_IIR_NO_INT == 0,
            "interrupt line vs IIR {iir:#x}"
        );
    }
});
