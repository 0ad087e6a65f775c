//! The translation-block cache (DESIGN.md §2): blocks keyed by [`BlockKey`], indexed by guest
//! physical page for invalidation, with their chain slots.
//!
//! A block's id ([`TbId`]) is its index in the cache; ids are baked into compiled code (the exit
//! code names the exiting block) and are never reused until a full flush, which also frees all
//! code memory. Invalidating a block removes it from the lookup map and unlinks every chain slot
//! pointing to it; its code stays in memory (unreachable) until the next flush.
//!
//! Chaining rule: a `Goto` exit of block S is linked directly to block D only when both are
//! compiled, have the same translation flags, and D starts in the same guest *virtual* page as
//! S starts (then D's physical page is fixed by S's own lookup, so skipping D's lookup is sound).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backend::ChainSlots;
use crate::env::PAGE_MASK;
use crate::guest::BlockKey;
use crate::interp::InterpBlock;
use crate::ir::{IrBlock, Op, Terminal};

/// Index of a block in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TbId(pub u32);

/// Where a block is on its way to tier 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Interpreted only.
    Interp,
    /// Sent to the compile thread.
    Queued,
    /// Native code installed.
    Compiled,
    /// The backend cannot compile it; it stays interpreted.
    Failed,
}

/// One cached translation. `repr(C)` with the fields every dispatch reads first (key, code,
/// tier, validity, successors), so the first cache line of an entry serves most dispatches:
/// with ~50 k blocks the entries do not stay in cache, and the loads of a dispatch were its
/// costliest instructions.
#[repr(C)]
pub struct TbEntry {
    pub key: BlockKey,
    /// Entry point of the compiled code (an address in the engine's code arena), once
    /// installed.
    pub code: Option<usize>,
    /// The block each `Goto` exit went to last time, under the chaining rule (any tier):
    /// the dispatch loop continues there without computing the key and looking it up.
    /// Kept in the entry (no pointer to chase) for the first [`SUCCESSOR_SLOTS`] exits; the
    /// others are looked up each time. `NO_SUCCESSOR`: none recorded.
    successors: [u32; SUCCESSOR_SLOTS],
    /// Dispatches from the engine's run loop (chained runs are not counted).
    pub heat: u32,
    pub tier: Tier,
    valid: bool,
    pub interp: InterpBlock,
    /// The optimized IR, for the compiler. Dropped for blocks lying in one guest page
    /// ([`TbCache::insert`]): most blocks are never compiled, and the engine lifts such a
    /// block again when it gets hot (its code cannot have changed: a write would have
    /// invalidated it).
    pub ir: Option<Arc<IrBlock>>,
    /// The block's guest bytes and instructions (`IrBlock::guest_size`, `insn_count`), to
    /// check a new lift against.
    pub guest_size: u32,
    pub insn_count: u32,
    /// One code pointer per `Goto` exit (0: not linked); read by the compiled code.
    slots: Box<[AtomicU64]>,
    /// Which block each slot is linked to.
    slot_targets: Vec<Option<TbId>>,
    /// Slots of other blocks linked to this one: (source block, slot).
    incoming: Vec<(TbId, u32)>,
    /// Guest physical pages the block's code lies in.
    pages: Vec<u64>,
    /// Compiled code reads the chain slots: the block's own, or a region's it belongs to
    /// (only then is linking them worth it).
    pub slots_read: bool,
    /// Budget exits from compiled code that landed here (the engine's region trigger).
    pub samples: u16,
    /// The id of the region's head once the engine tried to compile a region headed by this
    /// block (its own id) or sent it as a member of another's (`NO_SUCCESSOR` before): such a
    /// block does not head a region again.
    pub region: u32,
}

impl TbEntry {
    /// The chain slots, for the backend.
    pub fn chain_slots(&self) -> ChainSlots {
        ChainSlots {
            addr: self.slots.as_ptr(),
            len: self.slots.len(),
        }
    }

    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// The block a slot is linked to, if any.
    pub fn slot_target(&self, slot: u32) -> Option<TbId> {
        self.slot_targets.get(slot as usize).copied().flatten()
    }
}

/// `Goto` exits per block whose successor [`TbEntry`] remembers.
const SUCCESSOR_SLOTS: usize = 4;
/// An empty successor slot (no block has this id: ids are entry indices).
pub const NO_SUCCESSOR: u32 = u32::MAX;

/// Number of `Goto` exits of a block (its chain slots).
pub fn goto_count(block: &IrBlock) -> usize {
    block
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Exit(Terminal::Goto { .. })))
        .count()
}

/// The guest physical pages holding `size` bytes of code from `phys_pc` (assuming the block is
/// physically contiguous, see `Engine` docs).
pub fn covered_pages(phys_pc: u64, size: u32) -> Vec<u64> {
    let first = phys_pc & PAGE_MASK;
    let last = phys_pc.wrapping_add(u64::from(size.max(1)) - 1) & PAGE_MASK;
    if first == last {
        vec![first]
    } else {
        vec![first, last]
    }
}

/// A fast hasher for block keys (looked up on every dispatch): the std SipHash costs more than
/// the lookup is worth, and keys are not attacker-chosen in a way that matters here (a guest can
/// at worst slow its own translation lookups).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        // FxHash's step: rotate, xor, multiply by an odd constant.
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
}

type KeyMap = HashMap<BlockKey, TbId, std::hash::BuildHasherDefault<KeyHasher>>;

/// Entries of the direct-mapped front of the lookup (a power of two).
const FRONT_ENTRIES: usize = 16384;

/// A front entry's empty key. Never a real block's: blocks start in guest RAM, and no RAM
/// ends at physical address `u64::MAX` (a block needs at least 2 bytes there).
const NO_KEY: BlockKey = BlockKey {
    pc: u64::MAX,
    phys_pc: u64::MAX,
    flags: u32::MAX,
};

/// The cache.
pub struct TbCache {
    entries: Vec<TbEntry>,
    map: KeyMap,
    by_page: HashMap<u64, Vec<TbId>>,
    /// A direct-mapped cache in front of `map` for the dispatch loop (QEMU's `tb_jmp_cache`
    /// plays this role): most lookups hit here and skip hashing and probing a map of tens of
    /// thousands of blocks. Holds only valid blocks: invalidation and flushes clear entries.
    front: Box<[(BlockKey, TbId)]>,
    /// Lookups that missed the front (statistics).
    front_misses: u64,
}

impl Default for TbCache {
    fn default() -> Self {
        TbCache {
            entries: Vec::new(),
            map: KeyMap::default(),
            by_page: HashMap::new(),
            front: vec![(NO_KEY, TbId(u32::MAX)); FRONT_ENTRIES].into_boxed_slice(),
            front_misses: 0,
        }
    }
}

/// The front-cache slot of `key`.
fn front_index(key: &BlockKey) -> usize {
    let pc = key.pc;
    ((pc >> 1) ^ (pc >> 13) ^ u64::from(key.flags).wrapping_mul(0x9e37)) as usize
        & (FRONT_ENTRIES - 1)
}

impl TbCache {
    pub fn new() -> TbCache {
        TbCache::default()
    }

    /// [`TbCache::lookup`] through the direct-mapped front, which it refills on a miss (the
    /// engine's dispatch loop).
    #[inline]
    pub fn lookup_fast(&mut self, key: &BlockKey) -> Option<TbId> {
        let i = front_index(key);
        if let Some((k, id)) = self.front.get(i) {
            if k == key {
                return Some(*id);
            }
        }
        self.front_misses += 1;
        let id = self.map.get(key).copied()?;
        if let Some(slot) = self.front.get_mut(i) {
            *slot = (*key, id);
        }
        Some(id)
    }

    /// Lookups through [`TbCache::lookup_fast`] that missed its front, since the cache was made.
    pub fn front_misses(&self) -> u64 {
        self.front_misses
    }

    /// Number of blocks ever inserted since the last flush (valid or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of blocks currently reachable through lookup.
    pub fn valid_len(&self) -> usize {
        self.map.len()
    }

    pub fn lookup(&self, key: &BlockKey) -> Option<TbId> {
        self.map.get(key).copied()
    }

    pub fn get(&self, id: TbId) -> Option<&TbEntry> {
        self.entries.get(id.0 as usize)
    }

    pub fn get_mut(&mut self, id: TbId) -> Option<&mut TbEntry> {
        self.entries.get_mut(id.0 as usize)
    }

    /// Insert a translated block (replacing any block with the same key). `keep_ir`: keep (a
    /// copy of) its IR even if it lies in one page (see [`TbEntry::ir`]); most blocks keep
    /// only their interpreter form, so the IR is borrowed and copied only when kept.
    pub fn insert(&mut self, key: BlockKey, ir: &IrBlock, keep_ir: bool) -> TbId {
        if let Some(old) = self.lookup(&key) {
            self.invalidate(old);
        }
        let id = TbId(self.entries.len() as u32);
        let pages = covered_pages(key.phys_pc, ir.guest_size);
        let n = goto_count(ir);
        let interp = InterpBlock::new(ir);
        let (guest_size, insn_count) = (ir.guest_size, ir.insn_count);
        let ir = (keep_ir || pages.len() > 1).then(|| Arc::new(ir.clone()));
        self.entries.push(TbEntry {
            key,
            ir,
            guest_size,
            insn_count,
            interp,
            heat: 0,
            tier: Tier::Interp,
            code: None,
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            slot_targets: vec![None; n],
            incoming: Vec::new(),
            successors: [NO_SUCCESSOR; SUCCESSOR_SLOTS],
            pages: pages.clone(),
            valid: true,
            slots_read: false,
            samples: 0,
            region: NO_SUCCESSOR,
        });
        self.map.insert(key, id);
        if let Some(slot) = self.front.get_mut(front_index(&key)) {
            *slot = (key, id);
        }
        for p in pages {
            self.by_page.entry(p).or_default().push(id);
        }
        id
    }

    /// Install `code` as block `id`'s compiled code (tier `Compiled`), and point every chain
    /// slot linked to the block at it (a region replacing the block's own code).
    pub fn set_code(&mut self, id: TbId, code: usize) {
        let Some(e) = self.get_mut(id) else {
            return;
        };
        e.code = Some(code);
        e.tier = Tier::Compiled;
        let incoming = e.incoming.clone();
        for (src, slot) in incoming {
            if let Some(s) = self.get(src).filter(|s| s.slot_target(slot) == Some(id)) {
                if let Some(a) = s.slots.get(slot as usize) {
                    a.store(code as u64, Ordering::Release);
                }
            }
        }
    }

    /// Link `src`'s chain slot `slot` to `dst` if the chaining rule allows it. Returns whether
    /// the slot is now linked.
    pub fn link(&mut self, src: TbId, slot: u32, dst: TbId) -> bool {
        let (Some(s), Some(d)) = (self.get(src), self.get(dst)) else {
            return false;
        };
        let Some(dst_code) = d.code else {
            return false;
        };
        let ok = Self::chainable(s, d)
            && s.slots_read
            && (slot as usize) < s.slots.len()
            && s.slot_target(slot).is_none();
        if !ok {
            return s.slot_target(slot) == Some(dst);
        }
        if let Some(s) = self.get_mut(src) {
            if let (Some(a), Some(t)) = (
                s.slots.get(slot as usize),
                s.slot_targets.get_mut(slot as usize),
            ) {
                a.store(dst_code as u64, Ordering::Release);
                *t = Some(dst);
            }
        }
        if let Some(d) = self.get_mut(dst) {
            d.incoming.push((src, slot));
        }
        true
    }

    /// Whether a `Goto` from `s` may continue in `d` without `d`'s lookup: the same
    /// translation flags, and `d` starts in the virtual page `s` starts in, so the mapping
    /// that gave `s`'s physical page gives `d`'s (the module docs' chaining rule).
    fn chainable(s: &TbEntry, d: &TbEntry) -> bool {
        s.valid
            && d.valid
            && s.key.flags == d.key.flags
            && s.key.pc & PAGE_MASK == d.key.pc & PAGE_MASK
    }

    /// Remember that `src`'s `Goto` exit `slot` led to `dst` (see [`TbCache::successor`]), if
    /// the chaining rule allows skipping `dst`'s lookup.
    pub fn set_successor(&mut self, src: TbId, slot: u32, dst: TbId) {
        let ok = match (self.get(src), self.get(dst)) {
            (Some(s), Some(d)) => Self::chainable(s, d),
            _ => false,
        };
        if let Some(t) = ok
            .then(|| self.get_mut(src))
            .flatten()
            .filter(|s| (slot as usize) < s.slots.len())
            .and_then(|s| s.successors.get_mut(slot as usize))
        {
            *t = dst.0;
        }
    }

    /// The block `src`'s `Goto` exit `slot` continues in, if it was recorded and is still valid.
    #[inline]
    pub fn successor(&self, src: TbId, slot: u32) -> Option<TbId> {
        let dst = TbId(*self.get(src)?.successors.get(slot as usize)?);
        self.get(dst)?.valid.then_some(dst)
    }

    /// Remove a block from lookup and unlink every slot pointing to it (and its own links).
    pub fn invalidate(&mut self, id: TbId) {
        let Some(e) = self.get_mut(id) else {
            return;
        };
        if !e.valid {
            return;
        }
        e.valid = false;
        let key = e.key;
        let incoming = std::mem::take(&mut e.incoming);
        let outgoing: Vec<(u32, TbId)> = e
            .slot_targets
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| t.take().map(|t| (i as u32, t)))
            .collect();
        for a in e.slots.iter() {
            a.store(0, Ordering::Release);
        }
        if self.map.get(&key) == Some(&id) {
            self.map.remove(&key);
        }
        if let Some(slot) = self.front.get_mut(front_index(&key)) {
            if slot.1 == id {
                *slot = (NO_KEY, TbId(u32::MAX));
            }
        }
        for (src, slot) in incoming {
            if let Some(s) = self.get_mut(src) {
                if s.slot_target(slot) == Some(id) {
                    if let Some(a) = s.slots.get(slot as usize) {
                        a.store(0, Ordering::Release);
                    }
                    if let Some(t) = s.slot_targets.get_mut(slot as usize) {
                        *t = None;
                    }
                }
            }
        }
        for (slot, dst) in outgoing {
            if let Some(d) = self.get_mut(dst) {
                d.incoming.retain(|&(s, sl)| !(s == id && sl == slot));
            }
        }
    }

    /// Invalidate every block with code in guest physical page `page`. Returns how many.
    pub fn invalidate_page(&mut self, page: u64) -> usize {
        let ids = self.by_page.remove(&(page & PAGE_MASK)).unwrap_or_default();
        let mut n = 0;
        for id in ids {
            if self.get(id).is_some_and(|e| e.valid) {
                self.invalidate(id);
                n += 1;
            }
        }
        n
    }

    /// Drop every block. The caller frees the code memory at the same time.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.map.clear();
        self.by_page.clear();
        self.front.fill((NO_KEY, TbId(u32::MAX)));
    }

    /// Make a write to physical page `page` invalidate block `id` too (its code is a region
    /// that holds code from `page`).
    pub fn invalidate_with(&mut self, id: TbId, page: u64) {
        let page = page & PAGE_MASK;
        if self.pages(id).contains(&page) {
            return;
        }
        let ids = self.by_page.entry(page).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// The pages of a block.
    pub fn pages(&self, id: TbId) -> &[u64] {
        self.get(id).map(|e| e.pages.as_slice()).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Builder;

    fn block(pc: u64, gotos: &[u64]) -> IrBlock {
        let mut b = Builder::new(pc);
        b.insn_start(pc, 0);
        let l = b.new_label();
        let z = b.iconst(crate::ir::Type::I64, 0);
        b.br_cond(crate::ir::Cond::Eq, crate::ir::Type::I64, z, z, l);
        for &g in gotos {
            b.goto(g);
        }
        b.label(l);
        b.goto(pc + 4);
        b.set_guest_size(4);
        b.finish()
    }

    fn key(pc: u64) -> BlockKey {
        BlockKey {
            pc,
            phys_pc: pc + 0x8000_0000,
            flags: 1,
        }
    }

    #[test]
    fn successors_follow_the_chaining_rule_and_die_with_their_block() {
        let mut c = TbCache::new();
        let a = c.insert(key(0x1000), &block(0x1000, &[0x1100]), true);
        let b = c.insert(key(0x1100), &block(0x1100, &[]), true);
        let far = c.insert(key(0x2000), &block(0x2000, &[]), true);
        let other_flags = c.insert(
            BlockKey {
                flags: 2,
                ..key(0x1200)
            },
            &block(0x1200, &[]),
            true,
        );
        // Any tier: neither block is compiled.
        c.set_successor(a, 0, b);
        assert_eq!(c.successor(a, 0), Some(b));
        c.set_successor(a, 1, far);
        assert_eq!(c.successor(a, 1), None, "other virtual page");
        c.set_successor(a, 1, other_flags);
        assert_eq!(c.successor(a, 1), None, "other translation flags");
        c.set_successor(a, 7, b);
        assert_eq!(c.successor(a, 7), None, "no such exit");
        c.invalidate(b);
        assert_eq!(
            c.successor(a, 0),
            None,
            "an invalidated block is not continued in"
        );
    }

    #[test]
    fn link_follows_the_same_page_rule_and_invalidation_unlinks() {
        let mut c = TbCache::new();
        let a = c.insert(key(0x1000), &block(0x1000, &[0x1100]), true);
        let b = c.insert(key(0x1100), &block(0x1100, &[]), true);
        let far = c.insert(key(0x2000), &block(0x2000, &[]), true);
        assert_eq!(c.get(a).map(|e| e.chain_slots().len), Some(2));
        // Not compiled: no link.
        assert!(!c.link(a, 0, b));
        for id in [a, b, far] {
            if let Some(e) = c.get_mut(id) {
                e.code = Some(0x1234);
                e.slots_read = true;
            }
        }
        assert!(!c.link(a, 0, far), "other virtual page");
        assert!(c.link(a, 0, b));
        assert_eq!(c.get(a).and_then(|e| e.slot_target(0)), Some(b));
        let slot0 = c.get(a).map(|e| e.slots[0].load(Ordering::Acquire));
        assert_eq!(slot0, Some(0x1234));

        assert_eq!(c.lookup_fast(&key(0x1100)), Some(b));
        assert_eq!(c.invalidate_page(0x8000_1000), 2);
        assert_eq!(c.lookup(&key(0x1100)), None);
        assert_eq!(
            c.lookup_fast(&key(0x1100)),
            None,
            "invalidation clears the front"
        );
        assert_eq!(c.lookup_fast(&key(0x2000)), Some(far));
        assert_eq!(c.lookup(&key(0x2000)), Some(far));
        let slot0 = c.get(a).map(|e| e.slots[0].load(Ordering::Acquire));
        assert_eq!(slot0, Some(0));
        assert_eq!(covered_pages(0xffe, 4), vec![0, 0x1000]);
    }
}
