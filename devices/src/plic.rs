//! SiFive PLIC (Platform-Level Interrupt Controller), as QEMU's `virt` board has it
//! (hw/intc/sifive_plic.c, hw/riscv/virt.c) and the RISC-V PLIC Specification 1.0.0:
//!
//! ```text
//! base + 0x00_0000 + 4*src         priority[src]      (src 1..NUM_SOURCES-1; 0 is reserved)
//! base + 0x00_1000 + 4*(src/32)    pending bits       (read-only)
//! base + 0x00_2000 + 0x80*ctx      enable bits of context ctx
//! base + 0x20_0000 + 0x1000*ctx    threshold of context ctx
//! base + 0x20_0004 + 0x1000*ctx    claim (read) / complete (write) of context ctx
//! ```
//!
//! Contexts follow QEMU's virt hart-config "MS": hart `h` has context `2h` (M-mode, drives mip
//! MEIP, bit 11) and context `2h+1` (S-mode, drives mip SEIP, bit 9).
//!
//! Sources are level-triggered (spec, "Interrupt Gateways"): while a source's line is high and
//! the source is not claimed, its pending bit is set; lowering the line clears it (as QEMU does).
//! A claim clears the pending bit and holds the gateway until the completion; if the line is
//! still high at completion, the source becomes pending again.
//!
//! [`Plic`] is a cheap handle (`Clone`) on shared state: one clone sits on the bus, others are
//! given to devices' [`IrqLine`]s (see [`Plic::irq_line`]) as their [`IrqSink`].

use crate::bus::BusDevice;
use crate::irq::{IrqLine, IrqSink};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// QEMU virt: `VIRT_PLIC`.
pub const PLIC_BASE: u64 = 0x0c00_0000;
/// QEMU virt: `VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2)`.
pub const PLIC_SIZE: u64 = 0x60_0000;
/// QEMU virt: `VIRT_IRQCHIP_NUM_SOURCES` (95 wired sources + the reserved source 0).
pub const PLIC_NUM_SOURCES: u32 = 96;
/// QEMU virt: `VIRT_IRQCHIP_NUM_PRIORITIES` (priorities 1..=7; 0 = never interrupts).
pub const PLIC_NUM_PRIORITIES: u32 = 7;

pub const PLIC_PRIORITY_BASE: u64 = 0x0;
pub const PLIC_PENDING_BASE: u64 = 0x1000;
pub const PLIC_ENABLE_BASE: u64 = 0x2000;
pub const PLIC_ENABLE_STRIDE: u64 = 0x80;
pub const PLIC_CONTEXT_BASE: u64 = 0x20_0000;
pub const PLIC_CONTEXT_STRIDE: u64 = 0x1000;
/// Offsets inside a context's block.
pub const PLIC_CONTEXT_THRESHOLD: u64 = 0x0;
pub const PLIC_CONTEXT_CLAIM: u64 = 0x4;

/// mip bit positions (Privileged ISA §3.1.9).
pub const MIP_SEIP: u64 = 1 << 9;
pub const MIP_MEIP: u64 = 1 << 11;

const WORDS: usize = PLIC_NUM_SOURCES.div_ceil(32) as usize;

struct Context {
    /// The hart's interrupt lines and the mip bit this context drives.
    irq_lines: Arc<AtomicU64>,
    mip_bit: u64,
    enable: [u32; WORDS],
    threshold: u32,
}

struct PlicState {
    priority: [u32; PLIC_NUM_SOURCES as usize],
    pending: [u32; WORDS],
    /// Claimed and not yet completed (the gateway holds further requests).
    claimed: [u32; WORDS],
    /// Current level of each source's input line.
    level: [u32; WORDS],
    contexts: Vec<Context>,
}

/// The PLIC; see the module documentation.
#[derive(Clone)]
pub struct Plic {
    state: Arc<Mutex<PlicState>>,
}

fn bit(words: &[u32; WORDS], src: u32) -> bool {
    words
        .get((src / 32) as usize)
        .is_some_and(|w| w & (1 << (src % 32)) != 0)
}

fn set_bit(words: &mut [u32; WORDS], src: u32, on: bool) {
    if let Some(w) = words.get_mut((src / 32) as usize) {
        if on {
            *w |= 1 << (src % 32);
        } else {
            *w &= !(1 << (src % 32));
        }
    }
}

/// Priority and threshold registers are WARL; QEMU keeps `value & 7` for 7 priorities.
fn legal_priority(value: u32) -> u32 {
    value & PLIC_NUM_PRIORITIES
}

impl PlicState {
    /// The highest-priority pending, enabled source whose priority exceeds `floor` (ties: the
    /// lowest source id, spec, "Interrupt Priorities"). 0 if none.
    fn best_above(&self, ctx: &Context, floor: u32) -> u32 {
        let mut best = 0;
        let mut best_prio = floor;
        for src in 1..PLIC_NUM_SOURCES {
            if bit(&self.pending, src) && bit(&ctx.enable, src) {
                let prio = self.priority.get(src as usize).copied().unwrap_or(0);
                if prio > best_prio {
                    best = src;
                    best_prio = prio;
                }
            }
        }
        best
    }

    /// The source that makes the context's notification line high (priority above threshold).
    fn best(&self, ctx: &Context) -> u32 {
        self.best_above(ctx, ctx.threshold)
    }

    /// Recompute every context's output into its hart's mip line.
    fn update(&self) {
        for ctx in &self.contexts {
            if self.best(ctx) != 0 {
                ctx.irq_lines.fetch_or(ctx.mip_bit, Ordering::AcqRel);
            } else {
                ctx.irq_lines.fetch_and(!ctx.mip_bit, Ordering::AcqRel);
            }
        }
    }

    fn claim(&mut self, ctx_idx: usize) -> u32 {
        let Some(ctx) = self.contexts.get(ctx_idx) else {
            return 0;
        };
        // Spec, "Interrupt Claim Process": "the claim operation is not affected by the
        // setting of the priority threshold register" (QEMU 7.2 applies the threshold here;
        // Linux relies on neither). Priority 0 still means "never interrupt".
        let src = self.best_above(ctx, 0);
        if src != 0 {
            set_bit(&mut self.pending, src, false);
            set_bit(&mut self.claimed, src, true);
        }
        src
    }

    fn complete(&mut self, ctx_idx: usize, src: u32) {
        // Spec, "Interrupt Completion": a completion for a source not enabled for the
        // context is ignored.
        let enabled = self
            .contexts
            .get(ctx_idx)
            .is_some_and(|ctx| bit(&ctx.enable, src));
        if src == 0 || src >= PLIC_NUM_SOURCES || !enabled {
            log::debug!("PLIC: ignored completion of source {src} by context {ctx_idx}");
            return;
        }
        set_bit(&mut self.claimed, src, false);
        if bit(&self.level, src) {
            set_bit(&mut self.pending, src, true);
        }
    }

    fn read32(&mut self, offset: u64) -> u32 {
        match offset {
            o if o < PLIC_PENDING_BASE => self
                .priority
                .get(((o - PLIC_PRIORITY_BASE) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if o < PLIC_ENABLE_BASE => self
                .pending
                .get(((o - PLIC_PENDING_BASE) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if o < PLIC_CONTEXT_BASE => {
                let ctx = ((o - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE) as usize;
                let word = ((o - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4) as usize;
                self.contexts
                    .get(ctx)
                    .and_then(|c| c.enable.get(word))
                    .copied()
                    .unwrap_or(0)
            }
            o => {
                let ctx = ((o - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE) as usize;
                match (o - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE {
                    PLIC_CONTEXT_THRESHOLD => {
                        self.contexts.get(ctx).map(|c| c.threshold).unwrap_or(0)
                    }
                    PLIC_CONTEXT_CLAIM => {
                        let src = self.claim(ctx);
                        self.update();
                        src
                    }
                    _ => 0,
                }
            }
        }
    }

    fn write32(&mut self, offset: u64, value: u32) {
        match offset {
            o if o < PLIC_PENDING_BASE => {
                let src = (o - PLIC_PRIORITY_BASE) / 4;
                // Source 0 does not exist (spec, "Interrupt Priorities"): its priority is
                // hardwired to 0.
                if src != 0 {
                    if let Some(p) = self.priority.get_mut(src as usize) {
                        *p = legal_priority(value);
                    }
                }
            }
            o if o < PLIC_ENABLE_BASE => {
                log::debug!("PLIC: write to read-only pending bits at {o:#x} ignored");
            }
            o if o < PLIC_CONTEXT_BASE => {
                let ctx = ((o - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE) as usize;
                let word = ((o - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4) as usize;
                // Bit 0 (source 0) is hardwired to 0; bits above the last source do not exist.
                let mut mask = u32::MAX;
                if word == 0 {
                    mask &= !1;
                }
                let valid = (PLIC_NUM_SOURCES as usize).saturating_sub(word * 32);
                if valid < 32 {
                    mask &= (1u32 << valid) - 1;
                }
                if let Some(e) = self
                    .contexts
                    .get_mut(ctx)
                    .and_then(|c| c.enable.get_mut(word))
                {
                    *e = value & mask;
                }
            }
            o => {
                let ctx = ((o - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE) as usize;
                match (o - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE {
                    PLIC_CONTEXT_THRESHOLD => {
                        if let Some(c) = self.contexts.get_mut(ctx) {
                            c.threshold = legal_priority(value);
                        }
                    }
                    PLIC_CONTEXT_CLAIM => self.complete(ctx, value),
                    _ => log::debug!("PLIC: write to reserved offset {o:#x} ignored"),
                }
            }
        }
        self.update();
    }
}

impl Plic {
    /// A PLIC for harts whose interrupt lines are `hart_irq_lines` (index = hart id), with an
    /// M-mode and an S-mode context per hart ("MS").
    pub fn new(hart_irq_lines: Vec<Arc<AtomicU64>>) -> Self {
        let contexts = hart_irq_lines
            .into_iter()
            .flat_map(|lines| {
                [MIP_MEIP, MIP_SEIP].map(|mip_bit| Context {
                    irq_lines: lines.clone(),
                    mip_bit,
                    enable: [0; WORDS],
                    threshold: 0,
                })
            })
            .take(((PLIC_SIZE - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE) as usize)
            .collect();
        let state = PlicState {
            priority: [0; PLIC_NUM_SOURCES as usize],
            pending: [0; WORDS],
            claimed: [0; WORDS],
            level: [0; WORDS],
            contexts,
        };
        state.update();
        Plic {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// An interrupt line into input `source` of this PLIC, for a device.
    pub fn irq_line(&self, source: u32) -> IrqLine {
        IrqLine::new(Arc::new(self.clone()), source)
    }

    /// Number of contexts (2 per hart).
    pub fn num_contexts(&self) -> usize {
        self.state.lock().contexts.len()
    }

    /// Whether source `src` is pending.
    pub fn is_pending(&self, src: u32) -> bool {
        bit(&self.state.lock().pending, src)
    }
}

impl IrqSink for Plic {
    fn set_level(&self, source: u32, level: bool) {
        if source == 0 || source >= PLIC_NUM_SOURCES {
            log::warn!("PLIC: interrupt source {source} does not exist");
            return;
        }
        let mut s = self.state.lock();
        if bit(&s.level, source) == level {
            return;
        }
        set_bit(&mut s.level, source, level);
        let claimed = bit(&s.claimed, source);
        set_bit(&mut s.pending, source, level && !claimed);
        s.update();
    }
}

impl BusDevice for Plic {
    /// PLIC registers are 32 bits wide (spec, "Memory Map"). An aligned 8-byte access covers
    /// two registers, low first; other sizes or misaligned accesses read 0 / are ignored
    /// (QEMU's `sifive_plic` accepts 4-byte accesses only).
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if data.len() == 4 && offset.is_multiple_of(4) && offset < PLIC_SIZE {
            let v = self.state.lock().read32(offset);
            data.copy_from_slice(&v.to_le_bytes());
        } else if data.len() == 8 && offset.is_multiple_of(8) && offset < PLIC_SIZE {
            // Two 32-bit registers, low first (a 64-bit hart's `ld`).
            let mut s = self.state.lock();
            let lo = s.read32(offset);
            let hi = s.read32(offset + 4);
            data.copy_from_slice(&(u64::from(lo) | u64::from(hi) << 32).to_le_bytes());
        } else {
            log::debug!("PLIC: {}-byte read at {offset:#x} ignored", data.len());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match (
            data.len(),
            <[u8; 8]>::try_from(data),
            <[u8; 4]>::try_from(data),
        ) {
            (4, _, Ok(b)) if offset.is_multiple_of(4) && offset < PLIC_SIZE => {
                self.state.lock().write32(offset, u32::from_le_bytes(b));
            }
            (8, Ok(b), _) if offset.is_multiple_of(8) && offset < PLIC_SIZE => {
                let v = u64::from_le_bytes(b);
                let mut s = self.state.lock();
                s.write32(offset, v as u32);
                s.write32(offset + 4, (v >> 32) as u32);
            }
            _ => log::debug!("PLIC: {}-byte write at {offset:#x} ignored", data.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(harts: usize) -> (Vec<Arc<AtomicU64>>, Plic) {
        let lines: Vec<_> = (0..harts).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let plic = Plic::new(lines.clone());
        (lines, plic)
    }

    fn rd(p: &mut Plic, off: u64) -> u32 {
        let mut b = [0u8; 4];
        p.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn wr(p: &mut Plic, off: u64, v: u32) {
        p.write(off, &v.to_le_bytes());
    }

    fn enable(ctx: u64, src: u32) -> u64 {
        PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * ctx + 4 * u64::from(src / 32)
    }

    fn threshold(ctx: u64) -> u64 {
        PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * ctx
    }

    fn claim(ctx: u64) -> u64 {
        threshold(ctx) + PLIC_CONTEXT_CLAIM
    }

    fn mip(l: &AtomicU64) -> u64 {
        l.load(Ordering::Acquire)
    }

    #[test]
    fn claim_complete_flow_level_triggered() {
        let (lines, mut p) = setup(1);
        assert_eq!(p.num_contexts(), 2);
        wr(&mut p, 4 * 10, 1); // priority[10] = 1
        wr(&mut p, enable(1, 10), 1 << 10); // S context
        p.set_level(10, true);
        assert_eq!(rd(&mut p, PLIC_PENDING_BASE), 1 << 10);
        assert_eq!(mip(&lines[0]), MIP_SEIP);
        assert_eq!(rd(&mut p, claim(1)), 10);
        assert_eq!(rd(&mut p, PLIC_PENDING_BASE), 0);
        // A device's line reaches the same state.
        let line = p.irq_line(10);
        line.lower();
        line.raise();
        assert!(!p.is_pending(10), "claimed: the gateway holds the request");
        assert_eq!(mip(&lines[0]), 0);
        assert_eq!(rd(&mut p, claim(1)), 0, "nothing else to claim");
        // Line still high at completion: pending again.
        wr(&mut p, claim(1), 10);
        assert_eq!(mip(&lines[0]), MIP_SEIP);
        assert_eq!(rd(&mut p, claim(1)), 10);
        // The device lowers the line while claimed; completion leaves nothing pending.
        p.set_level(10, false);
        wr(&mut p, claim(1), 10);
        assert!(!p.is_pending(10));
        assert_eq!(mip(&lines[0]), 0);
        // Lowering a pending, unclaimed line withdraws the request.
        p.set_level(10, true);
        assert!(p.is_pending(10));
        p.set_level(10, false);
        assert!(!p.is_pending(10));
        assert_eq!(mip(&lines[0]), 0);
    }

    #[test]
    fn priority_order_and_ties_by_lowest_id() {
        let (_, mut p) = setup(1);
        for (src, prio) in [(3, 2), (5, 7), (7, 7), (40, 1)] {
            wr(&mut p, 4 * src, prio);
            p.set_level(src as u32, true);
        }
        wr(&mut p, enable(0, 0), (1 << 3) | (1 << 5) | (1 << 7));
        wr(&mut p, enable(0, 40), 1 << 8);
        assert_eq!(rd(&mut p, PLIC_PENDING_BASE + 4), 1 << 8);
        assert_eq!(rd(&mut p, claim(0)), 5);
        assert_eq!(rd(&mut p, claim(0)), 7);
        assert_eq!(rd(&mut p, claim(0)), 3);
        assert_eq!(rd(&mut p, claim(0)), 40);
        assert_eq!(rd(&mut p, claim(0)), 0);
    }

    #[test]
    fn enable_and_threshold_mask() {
        let (lines, mut p) = setup(2);
        wr(&mut p, 4, 3);
        p.set_level(1, true);
        assert_eq!(mip(&lines[0]) | mip(&lines[1]), 0, "not enabled anywhere");
        wr(&mut p, enable(2, 1), 0b10); // hart 1, M context
        assert_eq!(mip(&lines[1]), MIP_MEIP);
        assert_eq!(mip(&lines[0]), 0);
        wr(&mut p, threshold(2), 3); // priority must exceed threshold
        assert_eq!(rd(&mut p, threshold(2)), 3);
        assert_eq!(mip(&lines[1]), 0);
        wr(&mut p, threshold(2), 2);
        assert_eq!(mip(&lines[1]), MIP_MEIP);
        // The claim ignores the threshold (spec, "Interrupt Claim Process").
        wr(&mut p, threshold(2), 7);
        assert_eq!(mip(&lines[1]), 0);
        assert_eq!(rd(&mut p, claim(2)), 1);
        wr(&mut p, claim(2), 1);
        wr(&mut p, threshold(2), 2);
        // Priority 0 never interrupts.
        wr(&mut p, 4, 0);
        assert_eq!(mip(&lines[1]), 0);
        // WARL: priority and threshold keep 3 bits; source 0 and bits past source 95 read 0.
        wr(&mut p, 4, 0xff);
        assert_eq!(rd(&mut p, 4), 7);
        wr(&mut p, 0, 5);
        assert_eq!(rd(&mut p, 0), 0);
        wr(&mut p, enable(0, 0), u32::MAX);
        assert_eq!(rd(&mut p, enable(0, 0)), !1);
        wr(&mut p, enable(0, 64), u32::MAX);
        assert_eq!(rd(&mut p, enable(0, 64)), u32::MAX); // sources 64..95
        wr(&mut p, enable(0, 96), u32::MAX);
        assert_eq!(rd(&mut p, enable(0, 96)), 0);
        // Pending bits are read-only.
        wr(&mut p, PLIC_PENDING_BASE, u32::MAX);
        assert_eq!(rd(&mut p, PLIC_PENDING_BASE), 1 << 1);
    }

    #[test]
    fn completion_of_a_source_not_enabled_is_ignored() {
        let (_, mut p) = setup(1);
        wr(&mut p, 4 * 2, 1);
        wr(&mut p, enable(1, 2), 1 << 2);
        p.set_level(2, true);
        assert_eq!(rd(&mut p, claim(1)), 2);
        wr(&mut p, claim(0), 2); // context 0 has source 2 disabled
        assert!(!p.is_pending(2));
        wr(&mut p, claim(1), 2);
        assert!(p.is_pending(2));
    }

    #[test]
    fn sixty_four_bit_access_is_two_registers() {
        let (_, mut p) = setup(1);
        p.write(8, &((5u64 << 32) | 3).to_le_bytes());
        assert_eq!(rd(&mut p, 8), 3);
        assert_eq!(rd(&mut p, 12), 5);
        let mut b = [0u8; 8];
        p.read(8, &mut b);
        assert_eq!(u64::from_le_bytes(b), (5 << 32) | 3);
    }

    #[test]
    fn bad_sources_and_offsets_are_harmless() {
        let (lines, mut p) = setup(1);
        p.set_level(0, true);
        p.set_level(PLIC_NUM_SOURCES, true);
        p.set_level(u32::MAX, true);
        assert_eq!(rd(&mut p, PLIC_PENDING_BASE), 0);
        wr(&mut p, claim(5), 1); // context 5 does not exist
        assert_eq!(rd(&mut p, claim(5)), 0);
        wr(&mut p, PLIC_SIZE - 4, 1);
        let mut b = [0xffu8; 2];
        p.read(4, &mut b);
        assert_eq!(b, [0, 0]);
        assert_eq!(mip(&lines[0]), 0);
    }

    #[test]
    fn random_accesses_never_panic_and_outputs_stay_consistent() {
        let (lines, mut p) = setup(2);
        for seed in 1..20u64 {
            for src in 1..PLIC_NUM_SOURCES {
                p.set_level(src, (seed >> (src % 5)) & 1 != 0);
            }
            crate::irq::test_util::random_accesses(&mut p, PLIC_SIZE, seed, 2000);
            let s = p.state.lock();
            for ctx in &s.contexts {
                let on = ctx.irq_lines.load(Ordering::Acquire) & ctx.mip_bit != 0;
                assert_eq!(on, s.best(ctx) != 0);
            }
            drop(s);
            for l in &lines {
                assert_eq!(mip(l) & !(MIP_MEIP | MIP_SEIP), 0);
            }
            assert!(rd(&mut p, claim(0)) < PLIC_NUM_SOURCES);
        }
    }
}
