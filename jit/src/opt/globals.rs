//! Redundant guest-register (global) load/store removal.
//!
//! - Forwarding: a `load_global` of an offset and type whose value is already known — from an
//!   earlier `load_global` or `store_global` of the same offset and type — becomes a `mov` of
//!   that value. Knowledge is dropped at a label (a join), by a store that overlaps the bytes,
//!   and by a call to a helper that writes state. It survives a conditional branch: the ops
//!   after it are reached only by falling through.
//! - Dead stores: a `store_global` overwritten by a later store covering the same bytes is
//!   removed if nothing in between can observe the state: no load of overlapping bytes, no
//!   memory access (it may fault and exit), no helper that reads state or may raise, and no
//!   label, branch or exit.

use crate::helper::HelperDef;
use crate::ir::{IrBlock, Label, Op, Type, Value};

#[derive(Clone, Copy)]
struct Known {
    offset: u32,
    ty: Type,
    value: Value,
}

fn overlaps(a_off: u32, a_ty: Type, b_off: u32, b_ty: Type) -> bool {
    let (a0, a1) = (u64::from(a_off), u64::from(a_off) + u64::from(a_ty.bytes()));
    let (b0, b1) = (u64::from(b_off), u64::from(b_off) + u64::from(b_ty.bytes()));
    a0 < b1 && b0 < a1
}

/// Remove redundant global loads and stores in `block` in place.
pub fn redundant_globals(block: &mut IrBlock) {
    let mut fwd = Forwarder::default();
    for op in block.ops.iter_mut() {
        fwd.step(op, &block.helpers);
    }
    let mut stores = DeadStores::default();
    let mut dead = vec![false; block.ops.len()];
    for (i, op) in block.ops.iter().enumerate() {
        stores.step(i, op, &block.helpers, |j| {
            if let Some(d) = dead.get_mut(j) {
                *d = true;
            }
        });
    }
    let mut i = 0;
    block.ops.retain(|_| {
        let keep = !dead.get(i).copied().unwrap_or(false);
        i += 1;
        keep
    });
}

/// Globals the forwarding and dead-store steps track in a table indexed by `offset / 8`: the
/// 8-byte-aligned `I64` ones (guest integer and FP registers) in the first
/// [`SLOT_TABLE_BYTES`] of the state. Any other global (narrower, wider, unaligned or
/// further out) goes to a short list. A block's globals are nearly all table ones, so a
/// lookup costs an index instead of a scan of everything known.
const SLOT_TABLE_BYTES: u32 = 1 << 20;

/// The table index of a global, if it is a table one.
#[inline]
fn table_slot(offset: u32, ty: Type) -> Option<usize> {
    (ty == Type::I64 && offset.is_multiple_of(8) && offset < SLOT_TABLE_BYTES)
        .then_some((offset / 8) as usize)
}

/// The table indices of the 8-byte slots bytes `offset..offset + ty.bytes()` touch.
#[inline]
fn touched_slots(offset: u32, ty: Type) -> std::ops::Range<usize> {
    let first = u64::from(offset) / 8;
    let last = (u64::from(offset) + u64::from(ty.bytes()) - 1) / 8;
    let cap = u64::from(SLOT_TABLE_BYTES / 8);
    (first.min(cap) as usize)..((last + 1).min(cap) as usize)
}

/// Entries of a table that forgets everything at once: an entry holds data only while its
/// epoch is the table's (`0` never is).
struct EpochTable<T> {
    entries: Vec<(u32, T)>,
    epoch: u32,
}

impl<T> Default for EpochTable<T> {
    fn default() -> Self {
        EpochTable {
            entries: Vec::new(),
            epoch: 1,
        }
    }
}

impl<T: Copy> EpochTable<T> {
    /// Forget every entry.
    #[inline]
    fn clear(&mut self) {
        if self.epoch == u32::MAX {
            self.entries.iter_mut().for_each(|e| e.0 = 0);
            self.epoch = 1;
        } else {
            self.epoch += 1;
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<T> {
        self.entries
            .get(i)
            .filter(|e| e.0 == self.epoch)
            .map(|e| e.1)
    }

    #[inline]
    fn set(&mut self, i: usize, v: T) {
        if i >= self.entries.len() {
            self.entries.resize(i + 1, (0, v));
        }
        if let Some(e) = self.entries.get_mut(i) {
            *e = (self.epoch, v);
        }
    }

    /// Forget entry `i`, returning what it held.
    #[inline]
    fn take(&mut self, i: usize) -> Option<T> {
        let epoch = self.epoch;
        let e = self.entries.get_mut(i).filter(|e| e.0 == epoch)?;
        e.0 = 0;
        Some(e.1)
    }
}

/// Load forwarding, one op at a time in block order.
#[derive(Default)]
pub(crate) struct Forwarder {
    /// Table globals: the value each holds.
    table: EpochTable<Value>,
    /// Other globals known.
    known: Vec<Known>,
    /// Branches seen to each label (labels come after every branch to them).
    branches_to: Vec<u32>,
    /// The label of the last branch, while only exits have followed it: a label reached
    /// from that branch alone then sees what was known at the branch, which is what is
    /// known now (a superblock's `brcond L; goto; L:`).
    after_branch: Option<Label>,
}

impl Forwarder {
    /// Start a block.
    pub(crate) fn reset(&mut self) {
        self.forget();
        self.branches_to.clear();
        self.after_branch = None;
    }

    /// Note a branch to `l`.
    #[inline]
    fn branch(&mut self, l: Label) {
        let i = l.0 as usize;
        if i >= self.branches_to.len() {
            self.branches_to.resize(i + 1, 0);
        }
        if let Some(n) = self.branches_to.get_mut(i) {
            *n += 1;
        }
        self.after_branch = Some(l);
    }

    #[inline]
    fn forget(&mut self) {
        self.table.clear();
        self.known.clear();
    }

    /// Turn `op` into a `mov` if it loads a known global; record what it makes known.
    #[inline]
    pub(crate) fn step(&mut self, op: &mut Op, helpers: &[&'static HelperDef]) {
        let after_branch = self.after_branch.take();
        match *op {
            Op::LoadGlobal { dst, ty, offset } => {
                let found = match table_slot(offset, ty) {
                    Some(i) => self.table.get(i),
                    None => self
                        .known
                        .iter()
                        .find(|k| k.offset == offset && k.ty == ty)
                        .map(|k| k.value),
                };
                match found {
                    Some(src) => *op = Op::Mov { dst, ty, src },
                    None => self.record(offset, ty, dst),
                }
            }
            Op::StoreGlobal { src, ty, offset } => {
                if !self.known.is_empty() {
                    self.known.retain(|k| !overlaps(k.offset, k.ty, offset, ty));
                }
                if table_slot(offset, ty).is_none() {
                    for i in touched_slots(offset, ty) {
                        self.table.take(i);
                    }
                }
                self.record(offset, ty, src);
            }
            Op::Call { helper, .. }
                if helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.writes_state) =>
            {
                self.forget();
            }
            Op::Label(l) => {
                // A join forgets, unless its only way in is the branch just before (the ops
                // in between, exits, never fall through into it).
                let only_from_branch = after_branch == Some(l)
                    && self.branches_to.get(l.0 as usize).copied() == Some(1);
                if !only_from_branch {
                    self.forget();
                }
            }
            Op::BrCond { label, .. } | Op::Br(label) => self.branch(label),
            Op::Exit(_) => self.after_branch = after_branch,
            _ => {}
        }
    }

    #[inline]
    fn record(&mut self, offset: u32, ty: Type, value: Value) {
        match table_slot(offset, ty) {
            Some(i) => self.table.set(i, value),
            None => self.known.push(Known { offset, ty, value }),
        }
    }
}

/// Dead-store detection, one op at a time in block order (after load forwarding: a
/// forwarded load observes nothing).
#[derive(Default)]
pub(crate) struct DeadStores {
    /// Table globals: the op index of the store not yet observed.
    table: EpochTable<usize>,
    /// Other stores not yet observed: (op index, offset, type).
    pending: Vec<(usize, u32, Type)>,
}

impl DeadStores {
    /// Start a block.
    pub(crate) fn reset(&mut self) {
        self.observe_all();
    }

    #[inline]
    fn observe_all(&mut self) {
        self.table.clear();
        self.pending.clear();
    }

    /// Look at op `i`; `dead(j)` for each earlier store it proves dead.
    #[inline]
    pub(crate) fn step(
        &mut self,
        i: usize,
        op: &Op,
        helpers: &[&'static HelperDef],
        mut dead: impl FnMut(usize),
    ) {
        match *op {
            Op::StoreGlobal { ty, offset, .. } => {
                let (o, end) = (u64::from(offset), u64::from(offset) + u64::from(ty.bytes()));
                if !self.pending.is_empty() {
                    self.pending.retain(|&(j, po, pty)| {
                        let (p0, p1) = (u64::from(po), u64::from(po) + u64::from(pty.bytes()));
                        let covered = o <= p0 && p1 <= end;
                        if covered {
                            dead(j);
                        }
                        !covered
                    });
                }
                match table_slot(offset, ty) {
                    Some(s) => {
                        if let Some(j) = self.table.take(s) {
                            dead(j);
                        }
                        self.table.set(s, i);
                    }
                    None => {
                        // Table stores this one covers whole are dead; the others it only
                        // overlaps stay pending.
                        for s in touched_slots(offset, ty) {
                            let (p0, p1) = (s as u64 * 8, s as u64 * 8 + 8);
                            if o <= p0 && p1 <= end {
                                if let Some(j) = self.table.take(s) {
                                    dead(j);
                                }
                            }
                        }
                        self.pending.push((i, offset, ty));
                    }
                }
            }
            Op::LoadGlobal { ty, offset, .. } => {
                if !self.pending.is_empty() {
                    self.pending
                        .retain(|&(_, po, pty)| !overlaps(po, pty, offset, ty));
                }
                for s in touched_slots(offset, ty) {
                    self.table.take(s);
                }
            }
            Op::Call { helper, .. } => {
                let observes = helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.reads_state || h.effects.may_raise);
                if observes {
                    self.observe_all();
                }
            }
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Label(_)
            | Op::Br(_)
            | Op::BrCond { .. }
            | Op::Exit(_) => self.observe_all(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::test_util::{block, ops_text};

    #[test]
    fn forwards_loads_within_a_region() {
        let mut b = block(
            " v0:i64 = load_global 0x100\n v1:i64 = load_global 0x100\n \
             v2:i32 = load_global 0x100\n store_global.i64 0x108, v0\n v3:i64 = load_global 0x108\n \
             call test.set_reg v0, v0\n v4:i64 = load_global 0x108\n brcond.i64 eq v0, v0, L0\n \
             v5:i64 = load_global 0x108\nL0:\n v6:i64 = load_global 0x108\n goto 0\n",
        );
        redundant_globals(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[1], "v1:i64 = mov v0");
        assert_eq!(t[2], "v2:i32 = load_global 0x100"); // other type: a real load
        assert_eq!(t[4], "v3:i64 = mov v0");
        assert_eq!(t[6], "v4:i64 = load_global 0x108"); // after a state-writing helper
        assert_eq!(t[8], "v5:i64 = mov v4"); // fallthrough of a branch
        assert_eq!(t[10], "v6:i64 = load_global 0x108"); // after a label
    }

    /// A superblock's side exit (`brcond L; goto; L:`) keeps what is known: `L` is reached
    /// only from the branch. A second branch to the label, or an op that falls into it,
    /// makes it a join again.
    #[test]
    fn forwards_across_a_side_exit() {
        let mut b = block(
            " v0:i64 = load_global 0x100\n brcond.i64 eq v0, v0, L0\n goto 0x10\nL0:\n \
             v1:i64 = load_global 0x100\n brcond.i64 eq v0, v0, L1\n brcond.i64 ne v0, v0, L1\n \
             goto 0x20\nL1:\n v2:i64 = load_global 0x100\n brcond.i64 eq v0, v0, L2\n \
             v3:i64 = load_global 0x108\nL2:\n v4:i64 = load_global 0x100\n \
             brcond.i64 eq v0, v0, L3\nL3:\n v5:i64 = load_global 0x100\n goto 0\n",
        );
        redundant_globals(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[4], "v1:i64 = mov v0", "{t:?}");
        assert_eq!(t[9], "v2:i64 = load_global 0x100", "two branches to L1");
        assert_eq!(
            t[13], "v4:i64 = load_global 0x100",
            "v3's load falls into L2"
        );
        assert_eq!(t[16], "v5:i64 = mov v4", "brcond straight into its label");
    }

    #[test]
    fn removes_only_unobserved_overwritten_stores() {
        let mut b = block(
            " v0:i64 = const 1\n store_global.i64 0x100, v0\n store_global.i64 0x100, v0\n \
             store_global.i64 0x108, v0\n v1:i32 = load_global 0x10c\n store_global.i64 0x108, v0\n \
             store_global.i64 0x110, v0\n v2:i64 = call test.read_pc\n store_global.i64 0x110, v0\n \
             store_global.i64 0x118, v0\n call test.set_reg v0, v0\n store_global.i64 0x118, v0\n \
             goto 0\n",
        );
        redundant_globals(&mut b);
        let t = ops_text(&b);
        assert_eq!(
            t,
            [
                "v0:i64 = const 0x1",
                "store_global.i64 0x100, v0",
                "store_global.i64 0x108, v0",
                "v1:i32 = load_global 0x10c",
                "store_global.i64 0x108, v0",
                "store_global.i64 0x110, v0",
                "v2:i64 = call test.read_pc",
                "store_global.i64 0x110, v0",
                "call test.set_reg v0, v0",
                "store_global.i64 0x118, v0",
                "goto 0x0",
            ]
        );
    }
}
