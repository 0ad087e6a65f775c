//! Test support shared by the IR file tests, the differential tests and the benches: a tiny
//! guest state ([`TestCpu`]) with 32 64-bit registers and a small RAM mapped through the softmmu
//! TLB, plus a few helpers with each kind of [`HelperEffects`].
//!
//! Not part of the emulator proper (`#[doc(hidden)]`), but it follows the same contracts as a
//! real frontend: [`GuestState`], TLB entries filled only for pages wholly inside the RAM, and a
//! slow path that reports guest faults as values (`exception_pending`).

use crate::env::{
    CpuCommon, MemSlowPath, TlbEntry, PAGE_MASK, PAGE_SIZE, TLB_INVALID, TLB_NOTDIRTY,
};
use crate::helper::{state_of, GuestState, HelperDef};
use crate::ir::{HelperEffects, MemOp};

/// Guest (virtual = physical) address of the test RAM.
pub const RAM_BASE: u64 = 0x1000_0000;
/// Size of the test RAM: 64 KiB, 16 pages.
pub const RAM_SIZE: u64 = 0x1_0000;

/// A minimal guest state for testing executors.
#[repr(C)]
pub struct TestCpu {
    pub common: CpuCommon,
    /// General-purpose registers, reachable as IR globals at [`reg_offset`].
    pub regs: [u64; 32],
    /// Address of the last faulting access (for assertions).
    pub fault_addr: u64,
    /// Number of slow-path calls (loads and stores), to check the fast path is taken.
    pub slow_calls: u64,
    /// The pc and instruction count each slow-path call saw, folded together: both tiers
    /// must show the slow path the accessing instruction's (MMIO reads the guest time).
    pub slow_seen: u64,
    /// The guest RAM, `RAM_SIZE` bytes at `RAM_BASE`.
    pub ram: Box<[u8]>,
}

// SAFETY: `TestCpu` is `#[repr(C)]` with `CpuCommon` as its first field; the executors pass the
// only borrow of the state into helpers and the slow path.
unsafe impl GuestState for TestCpu {}

/// Byte offset of register `i` (taken modulo 32) from the start of the state.
pub fn reg_offset(i: u32) -> u32 {
    (std::mem::offset_of!(TestCpu, regs) + 8 * (i as usize % 32)) as u32
}

/// Byte offset of [`TestCpu::fault_addr`].
pub fn fault_addr_offset() -> u32 {
    std::mem::offset_of!(TestCpu, fault_addr) as u32
}

impl TestCpu {
    /// The key of the block at the current pc for a test guest (identity mapping, no flags),
    /// or, when the guest says there is no code there (`fetchable` false), a pending fetch
    /// fault and `None`, as `Guest::block_key` reports one.
    pub fn block_key_at_pc(&mut self, fetchable: bool) -> Option<crate::guest::BlockKey> {
        if !fetchable {
            self.common.exception_pending = 1;
            return None;
        }
        let pc = self.common.pc;
        Some(crate::guest::BlockKey {
            pc,
            phys_pc: pc,
            flags: 0,
        })
    }

    /// A fresh state: registers zero, RAM zero, every RAM page mapped in MMU index 0 for read,
    /// write and fetch (identity virtual = physical).
    pub fn new() -> Box<TestCpu> {
        let mut cpu = Box::new(TestCpu {
            common: CpuCommon::new(MemSlowPath {
                load: slow_load,
                store: slow_store,
            }),
            regs: [0; 32],
            fault_addr: 0,
            slow_calls: 0,
            slow_seen: 0,
            ram: vec![0u8; RAM_SIZE as usize].into_boxed_slice(),
        });
        cpu.map_ram();
        cpu
    }

    /// Fill the TLB entries of MMU index 0 for all RAM pages.
    pub fn map_ram(&mut self) {
        let host = self.ram.as_ptr() as u64;
        let addend = host.wrapping_sub(RAM_BASE);
        let mut page = RAM_BASE;
        while page < RAM_BASE + RAM_SIZE {
            let idx = crate::env::tlb_index(page);
            self.common.tlb[0][idx] = TlbEntry {
                addr_read: page,
                addr_write: page,
                addr_code: page,
                addend,
            };
            page += PAGE_SIZE;
        }
    }

    /// Remove one page from the TLB (all its accesses then go through the slow path).
    pub fn unmap_page(&mut self, vaddr: u64) {
        self.common.tlb_flush_page(vaddr);
    }

    /// Mark a RAM page as holding translated code: loads still hit the TLB, stores (and
    /// store-intent loads) take the slow path, as for self-modifying-code detection.
    pub fn set_notdirty(&mut self, vaddr: u64) {
        let e = &mut self.common.tlb[0][crate::env::tlb_index(vaddr)];
        if e.addr_write & PAGE_MASK == vaddr & PAGE_MASK {
            e.addr_write |= TLB_NOTDIRTY;
        }
    }

    /// Pointer for the executors.
    pub fn state_ptr(&mut self) -> *mut CpuCommon {
        &mut self.common as *mut CpuCommon
    }

    /// The RAM index of `[addr, addr + len)`, if wholly inside the RAM.
    fn ram_range(addr: u64, len: u64) -> Option<std::ops::Range<usize>> {
        let off = addr.checked_sub(RAM_BASE)?;
        let end = off.checked_add(len)?;
        (end <= RAM_SIZE).then_some(off as usize..end as usize)
    }

    /// Read `len` (1..=8) bytes little-endian at a guest address; `None` outside the RAM.
    pub fn read_mem(&self, addr: u64, len: u32) -> Option<u64> {
        let r = Self::ram_range(addr, u64::from(len.min(8)))?;
        let bytes = self.ram.get(r)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// Write the low `len` (1..=8) bytes of `val` little-endian; `false` outside the RAM.
    pub fn write_mem(&mut self, addr: u64, len: u32, val: u64) -> bool {
        let Some(r) = Self::ram_range(addr, u64::from(len.min(8))) else {
            return false;
        };
        let Some(bytes) = self.ram.get_mut(r) else {
            return false;
        };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (val >> (8 * i)) as u8;
        }
        true
    }

    fn note_slow_call(&mut self) {
        self.slow_calls += 1;
        self.slow_seen = self.slow_seen.rotate_left(7)
            ^ self.common.pc
            ^ self.common.insn_count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn fault(&mut self, vaddr: u64) {
        self.common.exception_pending = 1;
        self.fault_addr = vaddr;
    }

    /// The access is inside the RAM and respects `MemOp::aligned`.
    fn check(&self, vaddr: u64, mem: MemOp) -> bool {
        let size = u64::from(mem.size());
        (!mem.aligned || vaddr.is_multiple_of(size)) && Self::ram_range(vaddr, size).is_some()
    }
}

/// Extend the low `size` bytes of `raw` as `mem` says.
fn extend(raw: u64, mem: MemOp) -> u64 {
    let bits = 8 * mem.size();
    if bits >= 64 {
        return raw;
    }
    let shift = 64 - bits;
    if mem.signed {
        (((raw << shift) as i64) >> shift) as u64
    } else {
        (raw << shift) >> shift
    }
}

extern "C" fn slow_load(common: *mut CpuCommon, vaddr: u64, bits: u32, _mmu_idx: u32) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    let mem = MemOp::from_bits(bits);
    cpu.note_slow_call();
    if !cpu.check(vaddr, mem) {
        cpu.fault(vaddr);
        return 0;
    }
    match cpu.read_mem(vaddr, mem.size()) {
        Some(raw) => extend(raw, mem),
        None => {
            cpu.fault(vaddr);
            0
        }
    }
}

extern "C" fn slow_store(common: *mut CpuCommon, vaddr: u64, val: u64, bits: u32, _mmu: u32) {
    let cpu: &mut TestCpu = state_of(common);
    let mem = MemOp::from_bits(bits);
    cpu.note_slow_call();
    if !cpu.check(vaddr, mem) || !cpu.write_mem(vaddr, mem.size(), val) {
        cpu.fault(vaddr);
    }
}

/// A slow load that observes and changes the state: it records register 2 into register 30,
/// sets register 3 to 0xdead, and loads 42 (install it in `common.slow.load`).
pub extern "C" fn observing_slow_load(common: *mut CpuCommon, _: u64, _: u32, _: u32) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    cpu.regs[30] = cpu.regs[2];
    cpu.regs[3] = 0xdead;
    42
}

/// IR text for [`observing_slow_load`]: register 2 := 5 and register 3 := 9, then a load
/// through MMU index 1 (never in the TLB: the slow path) at 0x1004, then register 4 := the
/// loaded value and register 2 := 9, and `goto 0x2000`. `faulting`: the load goes through MMU
/// index 0 at 0x20, outside RAM, and faults.
pub fn observed_slow_path_text(faulting: bool) -> String {
    let (addr, mmu) = if faulting {
        (0x20, "")
    } else {
        (RAM_BASE, "mmu=1 ")
    };
    format!(
        "block pc=0x1000\n insn 0x1000 0\n v0:i64 = const 5\n store_global.i64 {r2}, v0\n \
         v1:i64 = const 9\n store_global.i64 {r3}, v1\n insn 0x1004 0\n \
         v2:i64 = const {addr:#x}\n v3:i64 = load u64 {mmu}v2\n \
         insn 0x1008 0\n store_global.i64 {r4}, v3\n store_global.i64 {r2}, v1\n \
         goto 0x2000\n",
        r2 = reg_offset(2),
        r3 = reg_offset(3),
        r4 = reg_offset(4),
    )
}

/// What a run of [`observed_slow_path_text`] must leave, for every executor: with `faulting`
/// false, the slow path saw the earlier store, its own write to register 3 stays, and the
/// later stores are made; with `faulting` true, the fault's pc and count and the stores
/// before it.
pub fn assert_observed_slow_path(cpu: &TestCpu, faulting: bool) {
    if faulting {
        assert_eq!((cpu.common.pc, cpu.common.insn_count), (0x1004, 1));
        assert_eq!((cpu.regs[2], cpu.regs[3], cpu.regs[4]), (5, 9, 0));
    } else {
        assert_eq!(cpu.regs[30], 5, "the slow path saw the earlier store");
        assert_eq!(cpu.regs[3], 0xdead, "the slow path's write stays");
        assert_eq!((cpu.regs[2], cpu.regs[4]), (9, 42));
    }
}

extern "C" fn add3(_: *mut CpuCommon, a: u64, b: u64, c: u64, _: u64) -> u64 {
    a.wrapping_add(b).wrapping_add(c)
}

extern "C" fn raise_if(common: *mut CpuCommon, a: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    if a != 0 {
        cpu.fault(a);
    }
    0
}

extern "C" fn read_pc(common: *mut CpuCommon, _: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    cpu.common.pc
}

extern "C" fn read_icount(common: *mut CpuCommon, _: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    cpu.common.insn_count
}

extern "C" fn get_reg(common: *mut CpuCommon, i: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    cpu.regs[(i % 32) as usize]
}

extern "C" fn set_reg(common: *mut CpuCommon, i: u64, v: u64, _: u64, _: u64) -> u64 {
    let cpu: &mut TestCpu = state_of(common);
    cpu.regs[(i % 32) as usize] = v;
    0
}

extern "C" fn sum4(_: *mut CpuCommon, a: u64, b: u64, c: u64, d: u64) -> u64 {
    a.wrapping_add(b.wrapping_mul(3))
        .wrapping_add(c.wrapping_mul(5))
        .wrapping_add(d.wrapping_mul(7))
}

/// `a + b + c`; no effects.
pub static ADD3: HelperDef = HelperDef {
    name: "test.add3",
    func: add3,
    args: 3,
    ret: true,
    effects: HelperEffects {
        reads_state: false,
        writes_state: false,
        may_raise: false,
    },
};

/// `a + 3b + 5c + 7d` (argument order matters); no effects.
pub static SUM4: HelperDef = HelperDef {
    name: "test.sum4",
    func: sum4,
    args: 4,
    ret: true,
    effects: HelperEffects {
        reads_state: false,
        writes_state: false,
        may_raise: false,
    },
};

/// Records a pending exception (fault_addr = a) if `a != 0`.
pub static RAISE_IF: HelperDef = HelperDef {
    name: "test.raise_if",
    func: raise_if,
    args: 1,
    ret: false,
    effects: HelperEffects {
        reads_state: false,
        writes_state: true,
        may_raise: true,
    },
};

/// Returns `CpuCommon::pc` as written before the call.
pub static READ_PC: HelperDef = HelperDef {
    name: "test.read_pc",
    func: read_pc,
    args: 0,
    ret: true,
    effects: HelperEffects {
        reads_state: true,
        writes_state: false,
        may_raise: false,
    },
};

/// Returns `CpuCommon::insn_count` as written before the call.
pub static READ_ICOUNT: HelperDef = HelperDef {
    name: "test.read_icount",
    func: read_icount,
    args: 0,
    ret: true,
    effects: HelperEffects {
        reads_state: true,
        writes_state: false,
        may_raise: false,
    },
};

/// Returns register `a % 32`.
pub static GET_REG: HelperDef = HelperDef {
    name: "test.get_reg",
    func: get_reg,
    args: 1,
    ret: true,
    effects: HelperEffects {
        reads_state: true,
        writes_state: false,
        may_raise: false,
    },
};

/// Sets register `a % 32` to `b`.
pub static SET_REG: HelperDef = HelperDef {
    name: "test.set_reg",
    func: set_reg,
    args: 2,
    ret: false,
    effects: HelperEffects {
        reads_state: false,
        writes_state: true,
        may_raise: false,
    },
};

/// Every test helper, for the IR text parser.
pub fn test_helpers() -> Vec<&'static HelperDef> {
    vec![
        &ADD3,
        &SUM4,
        &RAISE_IF,
        &READ_PC,
        &READ_ICOUNT,
        &GET_REG,
        &SET_REG,
    ]
}

/// True if the TLB entry for `vaddr` in MMU index 0 is empty (for assertions).
pub fn tlb_empty(cpu: &TestCpu, vaddr: u64) -> bool {
    cpu.common.tlb[0][crate::env::tlb_index(vaddr)].addr_read == TLB_INVALID
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_hits_and_slow_path_handles_misaligned_and_faults() {
        let mut cpu = TestCpu::new();
        let w = MemOp::new(2, false, false);
        cpu.common.store(RAM_BASE + 8, 0xdead_beef, w, 0);
        assert_eq!(cpu.slow_calls, 0);
        assert_eq!(cpu.common.load(RAM_BASE + 8, w, 0), 0xdead_beef);
        // Misaligned across a page boundary: slow path, byte-wise.
        let d = MemOp::new(3, false, false);
        cpu.common
            .store(RAM_BASE + 0xffd, 0x1122_3344_5566_7788, d, 0);
        assert_eq!(
            cpu.common.load(RAM_BASE + 0xffd, d, 0),
            0x1122_3344_5566_7788
        );
        assert_eq!(cpu.slow_calls, 2);
        assert_eq!(cpu.common.exception_pending, 0);
        // Sign extension on the slow path.
        let sb = MemOp::new(1, true, false);
        cpu.common.store(RAM_BASE + 0x21, 0x8001, sb, 0);
        assert_eq!(
            cpu.common.load(RAM_BASE + 0x21, sb, 0),
            0xffff_ffff_ffff_8001
        );
        // Outside RAM.
        cpu.common.load(RAM_BASE + RAM_SIZE - 2, w, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!(cpu.fault_addr, RAM_BASE + RAM_SIZE - 2);
        // Aligned rule.
        cpu.common.exception_pending = 0;
        cpu.common.load(RAM_BASE + 2, MemOp::new(2, false, true), 0);
        assert_eq!(cpu.common.exception_pending, 1);
    }

    #[test]
    fn helpers_and_offsets() {
        let mut cpu = TestCpu::new();
        cpu.regs[3] = 77;
        let p = cpu.state_ptr();
        assert_eq!((GET_REG.func)(p, 3, 0, 0, 0), 77);
        (SET_REG.func)(p, 4, 9, 0, 0);
        assert_eq!(cpu.regs[4], 9);
        assert_eq!(reg_offset(1) - reg_offset(0), 8);
        assert_eq!((SUM4.func)(std::ptr::null_mut(), 1, 1, 1, 1), 16);
        assert!(!tlb_empty(&cpu, RAM_BASE));
        cpu.set_notdirty(RAM_BASE + 0x1000);
        let w = MemOp::new(3, false, true);
        cpu.common.store(RAM_BASE + 0x1008, 5, w, 0);
        assert_eq!(cpu.slow_calls, 1);
        assert_eq!(cpu.common.load(RAM_BASE + 0x1008, w, 0), 5);
        assert_eq!(cpu.slow_calls, 1);
        cpu.unmap_page(RAM_BASE);
        assert!(tlb_empty(&cpu, RAM_BASE));
    }
}
