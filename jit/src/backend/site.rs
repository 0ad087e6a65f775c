//! The memory slow path as compiled code calls it: one immediate says which access this is.
//!
//! A TLB miss must run the guest's slow path ([`crate::env::MemSlowPath`]) with the pc and
//! instruction count of the accessing instruction in the state (MMIO reads the exact guest
//! time; a fault needs nothing more). Compiled code used to store both before every call, in
//! every access's cold path: two stores, a 64-bit pc constant, an add and two more constants
//! for the access kind and MMU index. Without them Cranelift compiles a memory-heavy block
//! 17–20 % faster (`micro -- cranelift_compile`: block/32 339 → 273 µs, block/64 674 →
//! 561 µs), and the compile thread's speed decides how long hot blocks stay interpreted.
//!
//! Instead, the state holds the pc and count of the *block's* first instruction whenever its
//! code runs (every way into compiled code stores them, and jumps between the members of a
//! region store them too), and the call passes one constant, a [`SlowSite`]: the access kind,
//! the MMU index, and the instruction's distance from the block's start in pc and in
//! instructions retired. [`emu_slow_load_site`] and [`emu_slow_store_site`] set the exact pc
//! and count for the guest's slow path and, when it returns without a fault, put the block's
//! back for the next access. Where the state may hold something else (a member that calls
//! a helper that stores them or may change the state), or a distance does not fit, the
//! lowering stores pc and count itself and passes an absolute site.

use crate::env::CpuCommon;
use crate::ir::MemOp;

/// One slow-path call site, packed into the `u64` immediate compiled code passes:
/// bits 0..8 the access ([`crate::ir::MemOp::to_bits`]), 8..16 the MMU index, 16..32 the
/// instructions retired before the accessing one since the block's start, 32..63 its pc minus
/// the block's start pc, bit 63 set for an absolute site (pc and count stored by the caller;
/// the distances are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlowSite(pub u64);

const ABSOLUTE: u64 = 1 << 63;

impl SlowSite {
    /// An absolute site: the caller stored the accessing instruction's pc and count.
    pub fn absolute(mem: MemOp, mmu: u8) -> SlowSite {
        // `to_bits` has five bits.
        SlowSite(u64::from(mem.to_bits() & 0xff) | u64::from(mmu) << 8 | ABSOLUTE)
    }

    /// This site, relative: the accessing instruction is `retired` instructions and `pc_delta`
    /// bytes past the block's start, which the state holds. `None` if a distance does not fit.
    pub fn relative(self, retired: u32, pc_delta: u64) -> Option<SlowSite> {
        if retired > 0xffff || pc_delta >= 1 << 31 {
            return None;
        }
        Some(SlowSite(
            (self.0 & 0xffff) | u64::from(retired) << 16 | pc_delta << 32,
        ))
    }

    fn bits(self) -> u32 {
        (self.0 & 0xff) as u32
    }

    fn mmu(self) -> u32 {
        (self.0 >> 8 & 0xff) as u32
    }

    fn is_relative(self) -> bool {
        self.0 & ABSOLUTE == 0
    }

    fn retired(self) -> u64 {
        self.0 >> 16 & 0xffff
    }

    fn pc_delta(self) -> u64 {
        self.0 >> 32 & 0x7fff_ffff
    }
}

/// Put the accessing instruction's pc and count in the state for a relative site; returns
/// what to put back after the access (`None`: nothing).
///
/// # Safety
/// `state` points to a live `CpuCommon` no reference to which is alive.
unsafe fn enter(state: *mut CpuCommon, site: SlowSite) -> Option<(u64, u64)> {
    if !site.is_relative() {
        return None;
    }
    // SAFETY: caller contract.
    unsafe {
        let saved = ((*state).pc, (*state).insn_count);
        (*state).pc = saved.0.wrapping_add(site.pc_delta());
        (*state).insn_count = saved.1.wrapping_add(site.retired());
        Some(saved)
    }
}

/// After the access: unless it recorded a fault (whose pc and count must stay), the state
/// holds the block's start again.
///
/// # Safety
/// As [`enter`].
unsafe fn leave(state: *mut CpuCommon, saved: Option<(u64, u64)>) {
    // SAFETY: caller contract.
    unsafe {
        if let Some((pc, count)) = saved {
            if (*state).exception_pending == 0 {
                (*state).pc = pc;
                (*state).insn_count = count;
            }
        }
    }
}

/// `slow.load` for compiled code: `site` is a [`SlowSite`].
///
/// # Safety
/// Called by compiled code (or its thunks) only, with the state it runs on, exclusively
/// borrowed for the call as for any helper.
pub(crate) unsafe extern "C" fn emu_slow_load_site(
    state: *mut CpuCommon,
    addr: u64,
    site: u64,
) -> u64 {
    let site = SlowSite(site);
    // SAFETY: caller contract; the guest's slow path gets the same pointer.
    unsafe {
        let saved = enter(state, site);
        let load = (*state).slow.load;
        let v = load(state, addr, site.bits(), site.mmu());
        leave(state, saved);
        v
    }
}

/// `slow.store` for compiled code: `site` is a [`SlowSite`].
///
/// # Safety
/// As [`emu_slow_load_site`].
pub(crate) unsafe extern "C" fn emu_slow_store_site(
    state: *mut CpuCommon,
    addr: u64,
    value: u64,
    site: u64,
) {
    let site = SlowSite(site);
    // SAFETY: as in `emu_slow_load_site`.
    unsafe {
        let saved = enter(state, site);
        let store = (*state).slow.store;
        store(state, addr, value, site.bits(), site.mmu());
        leave(state, saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_round_trip_and_refuse_what_does_not_fit() {
        let mem = MemOp::from_bits(0x1b);
        let a = SlowSite::absolute(mem, 7);
        assert_eq!(
            (
                a.bits(),
                a.mmu(),
                a.retired(),
                a.pc_delta(),
                a.is_relative()
            ),
            (0x1b, 7, 0, 0, false)
        );
        let r = a.relative(63, 0x7fff_fffe).unwrap();
        assert_eq!(
            (
                r.bits(),
                r.mmu(),
                r.retired(),
                r.pc_delta(),
                r.is_relative()
            ),
            (0x1b, 7, 63, 0x7fff_fffe, true)
        );
        assert_eq!(a.relative(0x1_0000, 0), None);
        assert_eq!(a.relative(0, 1 << 31), None);
    }
}
