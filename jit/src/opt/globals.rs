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
use crate::ir::{IrBlock, Op, Type, Value};

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

/// Load forwarding, one op at a time in block order.
#[derive(Default)]
pub(crate) struct Forwarder {
    known: Vec<Known>,
}

impl Forwarder {
    /// Start a block.
    pub(crate) fn reset(&mut self) {
        self.known.clear();
    }

    /// Turn `op` into a `mov` if it loads a known global; record what it makes known.
    #[inline]
    pub(crate) fn step(&mut self, op: &mut Op, helpers: &[&'static HelperDef]) {
        let known = &mut self.known;
        match *op {
            Op::LoadGlobal { dst, ty, offset } => {
                if let Some(k) = known.iter().find(|k| k.offset == offset && k.ty == ty) {
                    *op = Op::Mov {
                        dst,
                        ty,
                        src: k.value,
                    };
                } else {
                    known.push(Known {
                        offset,
                        ty,
                        value: dst,
                    });
                }
            }
            Op::StoreGlobal { src, ty, offset } => {
                known.retain(|k| !overlaps(k.offset, k.ty, offset, ty));
                known.push(Known {
                    offset,
                    ty,
                    value: src,
                });
            }
            Op::Call { helper, .. }
                if helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.writes_state) =>
            {
                known.clear();
            }
            Op::Label(_) => known.clear(),
            _ => {}
        }
    }
}

/// Dead-store detection, one op at a time in block order (after load forwarding: a
/// forwarded load observes nothing).
#[derive(Default)]
pub(crate) struct DeadStores {
    /// Stores not yet observed: (op index, offset, type).
    pending: Vec<(usize, u32, Type)>,
}

impl DeadStores {
    /// Start a block.
    pub(crate) fn reset(&mut self) {
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
        let pending = &mut self.pending;
        match *op {
            Op::StoreGlobal { ty, offset, .. } => {
                let (o, end) = (u64::from(offset), u64::from(offset) + u64::from(ty.bytes()));
                pending.retain(|&(j, po, pty)| {
                    let (p0, p1) = (u64::from(po), u64::from(po) + u64::from(pty.bytes()));
                    let covered = o <= p0 && p1 <= end;
                    if covered {
                        dead(j);
                    }
                    !covered
                });
                pending.push((i, offset, ty));
            }
            Op::LoadGlobal { ty, offset, .. } => {
                pending.retain(|&(_, po, pty)| !overlaps(po, pty, offset, ty));
            }
            Op::Call { helper, .. } => {
                let observes = helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.reads_state || h.effects.may_raise);
                if observes {
                    pending.clear();
                }
            }
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Label(_)
            | Op::Br(_)
            | Op::BrCond { .. }
            | Op::Exit(_) => pending.clear(),
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
