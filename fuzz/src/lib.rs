//! Shared pieces of emu's fuzz targets (see docs/fuzzing.md).
//!
//! Every target bounds its own work: an input is cut into at most a fixed number of operations,
//! so a slow input can never hang a run (libFuzzer's `-timeout` is the backstop, not the plan).

use emu_devices::BusDevice;

/// A cursor over fuzz input bytes. Reading past the end yields zeros, so every input, however
/// short, decodes into some well-formed operation sequence.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// Up to `max` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(max).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }

    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }
}

/// An access width a bus may issue: 1, 2, 4 or 8 bytes.
pub fn width(sel: u8) -> usize {
    1 << (sel & 3)
}

/// Most register accesses one device input performs.
pub const MAX_MMIO_OPS: usize = 256;

/// One MMIO operation decoded from the input, as a hart would issue it.
#[derive(Debug, Clone, Copy)]
pub enum MmioOp {
    Read {
        offset: u64,
        len: usize,
    },
    Write {
        offset: u64,
        value: u64,
        len: usize,
    },
    /// Not a register access: a target-specific event (time passes, a backend delivers data...).
    Other(u8),
}

/// Decode the next MMIO operation in a window of `window` bytes (see [`next_mmio_op_in`]).
pub fn next_mmio_op(input: &mut Input, window: u64) -> MmioOp {
    next_mmio_op_in(input, &[(0, window)])
}

/// Decode the next MMIO operation. `regions` are `(start, len)` ranges of the device's window
/// where its registers are (a large window such as the PLIC's is mostly empty); bits 6:4 of the
/// kind byte pick one and the 16-bit offset is taken modulo its length, mostly aligned to the
/// access width. A sixteenth of the operations use the raw 16-bit offset instead (unaligned,
/// between registers), so the edges get exercised too.
pub fn next_mmio_op_in(input: &mut Input, regions: &[(u64, u64)]) -> MmioOp {
    let kind = input.u8();
    let len = width(kind >> 2);
    let raw = u64::from(input.u16());
    let region = regions
        .get(usize::from((kind >> 4) & 7) % regions.len().max(1))
        .copied()
        .unwrap_or((0, 0));
    let offset = if kind & 0xf0 == 0xf0 || region.1 == 0 {
        raw
    } else {
        let o = region.0.wrapping_add(raw % region.1);
        if kind & 0x80 != 0 {
            o
        } else {
            o & !(len as u64 - 1)
        }
    };
    match kind & 3 {
        0 => MmioOp::Read { offset, len },
        1 | 2 => MmioOp::Write {
            offset,
            value: input.u64(),
            len,
        },
        _ => MmioOp::Other(input.u8()),
    }
}

/// Apply a register read or write to `dev`; returns the value read (0 for writes).
pub fn apply_mmio(dev: &mut dyn BusDevice, op: MmioOp) -> u64 {
    let mut buf = [0u8; 8];
    match op {
        MmioOp::Read { offset, len } => {
            let b = &mut buf[..len.min(8)];
            dev.read(offset, b);
            u64::from_le_bytes(buf)
        }
        MmioOp::Write { offset, value, len } => {
            let bytes = value.to_le_bytes();
            dev.write(offset, &bytes[..len.min(8)]);
            0
        }
        MmioOp::Other(_) => 0,
    }
}

/// Compile one block with a load and a store, so that the backend builds its process-wide
/// slow-path thunks (an arena deliberately never freed, jit/src/backend/mod.rs) before fuzzing
/// starts: LeakSanitizer would otherwise report that one-time allocation against the first
/// input. Call it from a target's `init`.
pub fn warm_up_tier1() {
    use emu_jit::ir::{Builder, MemOp, Type};
    let mut b = Builder::new(0x1000);
    b.insn_start(0x1000, 0);
    let a = b.iconst(Type::I64, 0x1000);
    let v = b.load(Type::I64, MemOp::new(3, false, false), 0, a);
    b.store(Type::I64, MemOp::new(3, false, false), 0, v, a);
    b.goto(0x1004);
    let block = b.finish();
    if let Err(e) = emu_jit::backend::compile_standalone(&block) {
        panic!("tier 1 unavailable: {e}");
    }
}
