//! Physical memory protection (Privileged ISA §3.7), after QEMU 7.2 `target/riscv/pmp.c`:
//! 16 entries, granularity 4 bytes (NA4 available), OFF/TOR/NA4/NAPOT, the L bit.

use emu_jit::env::AccessKind;

use super::cpu::Privilege;

/// Number of implemented entries (QEMU 7.2 `MAX_RISCV_PMPS`).
pub const PMP_ENTRIES: usize = 16;

pub const PMP_R: u8 = 1 << 0;
pub const PMP_W: u8 = 1 << 1;
pub const PMP_X: u8 = 1 << 2;
pub const PMP_A_SHIFT: u8 = 3;
pub const PMP_A: u8 = 3 << PMP_A_SHIFT;
pub const PMP_L: u8 = 1 << 7;

/// pmpcfg.A (Table 3.9).
pub const PMP_A_OFF: u8 = 0;
pub const PMP_A_TOR: u8 = 1;
pub const PMP_A_NA4: u8 = 2;
pub const PMP_A_NAPOT: u8 = 3;

/// pmpaddr holds physical address bits 55:2 on RV64 (§3.7.1).
const PMPADDR_MASK: u64 = (1 << 54) - 1;

/// One active entry, decoded: the byte range `[start, end)` it matches and its pmpcfg byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Region {
    start: u128,
    end: u128,
    cfg: u8,
}

/// The PMP registers of one hart, with their decoded regions: every write recomputes them, so
/// a check is a short loop over the active entries (usually none to two) instead of decoding
/// all 16 on every access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pmp {
    cfg: [u8; PMP_ENTRIES],
    addr: [u64; PMP_ENTRIES],
    /// The entries with a non-empty range, lowest-numbered (highest priority, §3.7.1) first;
    /// only `regions[..nregions]` is meaningful.
    regions: [Region; PMP_ENTRIES],
    nregions: usize,
    /// Whether any entry's A field is not OFF (an empty TOR range counts: S/U accesses matching
    /// no entry are then denied).
    any_active: bool,
}

impl Pmp {
    /// pmpcfg byte `i` (0 past the implemented entries).
    pub fn cfg(&self, i: usize) -> u8 {
        self.cfg.get(i).copied().unwrap_or(0)
    }

    /// Decode every entry again (after any register write).
    fn recompute(&mut self) {
        let mut n = 0;
        for i in 0..PMP_ENTRIES {
            let (range, cfg) = (self.range(i), self.cfg(i));
            if let (Some((start, end)), Some(slot)) = (range, self.regions.get_mut(n)) {
                *slot = Region { start, end, cfg };
                n += 1;
            }
        }
        self.nregions = n;
        self.any_active = (0..PMP_ENTRIES).any(|i| self.mode(i) != PMP_A_OFF);
    }

    fn active_regions(&self) -> &[Region] {
        self.regions.get(..self.nregions).unwrap_or(&[])
    }

    fn mode(&self, i: usize) -> u8 {
        self.cfg
            .get(i)
            .map_or(PMP_A_OFF, |c| (c & PMP_A) >> PMP_A_SHIFT)
    }

    fn locked(&self, i: usize) -> bool {
        self.cfg.get(i).is_some_and(|c| c & PMP_L != 0)
    }

    /// pmpaddr[i] is locked by its own L bit or by a locked TOR entry above it (§3.7.1.2).
    fn addr_locked(&self, i: usize) -> bool {
        self.locked(i) || (self.mode(i + 1) == PMP_A_TOR && self.locked(i + 1))
    }

    /// Write one configuration byte (WARL): ignored when locked; the reserved R=0,W=1 encoding
    /// and the reserved bits 6:5 read as zero.
    pub fn write_cfg(&mut self, i: usize, val: u8) {
        if self.locked(i) {
            return;
        }
        let mut v = val & !0x60;
        if v & PMP_W != 0 && v & PMP_R == 0 {
            v &= !(PMP_R | PMP_W);
        }
        if let Some(c) = self.cfg.get_mut(i) {
            *c = v;
        }
        self.recompute();
    }

    pub fn read_addr(&self, i: usize) -> u64 {
        self.addr.get(i).copied().unwrap_or(0)
    }

    pub fn write_addr(&mut self, i: usize, val: u64) {
        if self.addr_locked(i) {
            return;
        }
        if let Some(a) = self.addr.get_mut(i) {
            *a = val & PMPADDR_MASK;
        }
        self.recompute();
    }

    /// The byte range `[start, end)` entry `i` matches, if it is active.
    fn range(&self, i: usize) -> Option<(u128, u128)> {
        let a = u128::from(self.read_addr(i));
        match self.mode(i) {
            PMP_A_TOR => {
                let lo = if i == 0 {
                    0
                } else {
                    u128::from(self.read_addr(i - 1)) << 2
                };
                let hi = a << 2;
                (lo < hi).then_some((lo, hi))
            }
            PMP_A_NA4 => Some((a << 2, (a << 2) + 4)),
            PMP_A_NAPOT => {
                let ones = (!self.read_addr(i)).trailing_zeros().min(64);
                let size = 1u128 << (ones + 3);
                let base = (a & !((1u128 << ones) - 1)) << 2;
                Some((base, base + size))
            }
            _ => None,
        }
    }

    /// Whether an access of `size` bytes at physical `addr` is allowed (§3.7.1): the
    /// lowest-numbered entry matching any byte decides; it must match all of them. M-mode is
    /// checked only against locked entries; S/U are denied when no entry matches and any is
    /// active.
    pub fn check(&self, addr: u64, size: u64, kind: AccessKind, prv: Privilege) -> bool {
        let lo = u128::from(addr);
        let hi = lo + u128::from(size.max(1));
        for r in self.active_regions() {
            let (s, e) = (r.start, r.end);
            if hi <= s || lo >= e {
                continue;
            }
            if lo < s || hi > e {
                return false;
            }
            let cfg = r.cfg;
            if prv == Privilege::Machine && cfg & PMP_L == 0 {
                return true;
            }
            let need = match kind {
                AccessKind::Load => PMP_R,
                AccessKind::Store => PMP_W,
                AccessKind::Fetch => PMP_X,
            };
            return cfg & need != 0;
        }
        prv == Privilege::Machine || !self.any_active
    }

    /// Whether every byte of the 4 KiB page at `page` gets the same PMP decision, so a TLB
    /// entry may cover it (QEMU `pmp_get_tlb_size`).
    pub fn page_uniform(&self, page: u64, page_size: u64) -> bool {
        let lo = u128::from(page);
        let hi = lo + u128::from(page_size);
        self.active_regions()
            .iter()
            .all(|r| hi <= r.start || lo >= r.end || (r.start <= lo && hi <= r.end))
    }

    /// What privilege `prv` may do anywhere in the page `[page, page + page_size)`: the
    /// `PMP_R | PMP_W | PMP_X` bits [`Pmp::check`] grants to every access inside it, or None
    /// when the page is not [`Pmp::page_uniform`]. One pass over the entries replaces
    /// `page_uniform` plus a `check` per access kind when the TLB is filled.
    pub fn page_perms(&self, page: u64, page_size: u64, prv: Privilege) -> Option<u8> {
        const RWX: u8 = PMP_R | PMP_W | PMP_X;
        let lo = u128::from(page);
        let hi = lo + u128::from(page_size);
        let mut first = None;
        for r in self.active_regions() {
            if hi <= r.start || lo >= r.end {
                continue;
            }
            if lo < r.start || hi > r.end {
                return None;
            }
            // The lowest-numbered entry covering the page decides every access in it; the
            // others are only checked for uniformity, as `page_uniform` does.
            first.get_or_insert(if prv == Privilege::Machine && r.cfg & PMP_L == 0 {
                RWX
            } else {
                r.cfg & RWX
            });
        }
        // No entry matches: as in `check`.
        let unmatched = if prv == Privilege::Machine || !self.any_active {
            RWX
        } else {
            0
        };
        Some(first.unwrap_or(unmatched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn napot(base: u64, size: u64) -> u64 {
        (base | (size / 2 - 1)) >> 2
    }

    #[test]
    fn no_entries_allow_everything_any_active_denies_su() {
        let mut p = Pmp::default();
        assert!(p.check(0x8000_0000, 8, AccessKind::Load, Privilege::User));
        p.write_addr(0, 0x1000 >> 2);
        p.write_cfg(0, (PMP_A_TOR << PMP_A_SHIFT) | PMP_R);
        assert!(p.check(0x800, 4, AccessKind::Load, Privilege::User));
        assert!(!p.check(0x800, 4, AccessKind::Store, Privilege::Supervisor));
        assert!(!p.check(0x2000, 4, AccessKind::Load, Privilege::Supervisor));
        // M-mode ignores unlocked entries and allows unmatched accesses.
        assert!(p.check(0x800, 4, AccessKind::Store, Privilege::Machine));
        assert!(p.check(0x2000, 4, AccessKind::Store, Privilege::Machine));
        // A partial match fails.
        assert!(!p.check(0xffc, 8, AccessKind::Load, Privilege::User));
    }

    #[test]
    fn napot_na4_and_lock() {
        let mut p = Pmp::default();
        p.write_addr(0, napot(0x8000_0000, 0x1_0000));
        p.write_cfg(0, (PMP_A_NAPOT << PMP_A_SHIFT) | PMP_R | PMP_X | PMP_L);
        p.write_addr(1, 0x100 >> 2);
        p.write_cfg(1, (PMP_A_NA4 << PMP_A_SHIFT) | PMP_R | PMP_W);
        assert!(p.check(0x8000_fff8, 8, AccessKind::Fetch, Privilege::User));
        assert!(!p.check(0x8001_0000, 4, AccessKind::Load, Privilege::User));
        // Locked: enforced on M too, and no longer writable.
        assert!(!p.check(0x8000_0000, 4, AccessKind::Store, Privilege::Machine));
        p.write_cfg(0, 0);
        p.write_addr(0, 0);
        assert_ne!(p.cfg(0), 0);
        assert_eq!(p.read_addr(0), napot(0x8000_0000, 0x1_0000));
        assert!(p.check(0x100, 4, AccessKind::Store, Privilege::User));
        assert!(!p.check(0x104, 4, AccessKind::Load, Privilege::User));
        assert!(p.page_uniform(0x8000_1000, 0x1000));
        assert!(!p.page_uniform(0, 0x1000));
    }

    #[test]
    fn decoded_regions_follow_every_register_write() {
        let mut p = Pmp::default();
        let page = 0x8020_0000u64;
        assert!(p.check(page, 8, AccessKind::Store, Privilege::Supervisor));
        // pmpaddr first, cfg off: still allowed (no active entry).
        p.write_addr(0, napot(0x8000_0000, 0x100_0000));
        assert!(p.check(page, 8, AccessKind::Store, Privilege::Supervisor));
        // cfg write: a read-only NAPOT region now decides.
        p.write_cfg(0, (PMP_A_NAPOT << PMP_A_SHIFT) | PMP_R);
        assert!(!p.check(page, 8, AccessKind::Store, Privilege::Supervisor));
        assert!(p.check(page, 8, AccessKind::Load, Privilege::Supervisor));
        // pmpaddr write moves the region: the page is now unmatched and denied for S.
        p.write_addr(0, napot(0x9000_0000, 0x1000));
        assert!(!p.check(page, 8, AccessKind::Load, Privilege::Supervisor));
        assert!(p.check(0x9000_0ff8, 8, AccessKind::Load, Privilege::Supervisor));
        // A lower-priority TOR entry granting RW decides once entry 0 is off.
        p.write_addr(1, 0x9000_1000 >> 2);
        p.write_cfg(1, (PMP_A_TOR << PMP_A_SHIFT) | PMP_R | PMP_W);
        assert!(!p.check(0x9000_0ff8, 8, AccessKind::Store, Privilege::Supervisor));
        p.write_cfg(0, 0);
        assert!(p.check(0x9000_0ff8, 8, AccessKind::Store, Privilege::Supervisor));
        assert!(!p.page_uniform(0x9000_1000 - 0x800, 0x1000));
        // An empty TOR range is active: unmatched S/U accesses stay denied.
        p.write_cfg(1, 0);
        p.write_addr(2, 0);
        p.write_cfg(2, PMP_A_TOR << PMP_A_SHIFT);
        assert!(!p.check(page, 8, AccessKind::Load, Privilege::User));
        assert!(p.check(page, 8, AccessKind::Load, Privilege::Machine));
        p.write_cfg(2, 0);
        assert!(p.check(page, 8, AccessKind::Load, Privilege::User));
    }

    /// `page_perms` must agree with `page_uniform` plus one `check` per access kind, the
    /// pair it replaces when the TLB is filled.
    #[test]
    fn page_perms_matches_uniform_and_check() {
        let pages = [
            0u64,
            0x7fff_f000,
            0x8000_0000,
            0x8000_1000,
            0x8002_0000,
            0x8040_0000,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // (split pages, uniform pages with some access denied, uniform pages allowing all)
        let mut seen = [0u32; 3];
        for _ in 0..500 {
            let mut p = Pmp::default();
            for i in 0..(next() % 5) as usize {
                // Addresses near the test pages, some page-aligned, some not.
                let page = pages[(next() % pages.len() as u64) as usize];
                let addr = page + (next() % 3) * 0x800 + (next() % 2) * 4;
                let a = match next() % 3 {
                    0 => addr >> 2,
                    1 => napot(addr & !0xfff, 0x1000 << (next() % 4)),
                    _ => u64::MAX,
                };
                p.write_addr(i, a);
                p.write_cfg(i, (next() & 0x9f) as u8);
            }
            for page in pages {
                for prv in [Privilege::User, Privilege::Supervisor, Privilege::Machine] {
                    let want = p.page_uniform(page, 0x1000).then(|| {
                        [
                            (AccessKind::Load, PMP_R),
                            (AccessKind::Store, PMP_W),
                            (AccessKind::Fetch, PMP_X),
                        ]
                        .into_iter()
                        .filter(|&(kind, _)| p.check(page, 0x1000, kind, prv))
                        .fold(0, |bits, (_, bit)| bits | bit)
                    });
                    assert_eq!(
                        p.page_perms(page, 0x1000, prv),
                        want,
                        "{p:?} {page:#x} {prv:?}"
                    );
                    seen[match want {
                        None => 0,
                        Some(b) if b != PMP_R | PMP_W | PMP_X => 1,
                        Some(_) => 2,
                    }] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 100), "cases exercised: {seen:?}");
    }

    #[test]
    fn reserved_rw_encoding_is_cleared() {
        let mut p = Pmp::default();
        p.write_cfg(3, PMP_W | PMP_X | (PMP_A_NA4 << PMP_A_SHIFT));
        assert_eq!(p.cfg(3), PMP_X | (PMP_A_NA4 << PMP_A_SHIFT));
    }
}
