//! Value renumbering: after the other passes, many entries of the value table belong to ops
//! that are gone. Renumbering the values that remain densely, in definition order, shrinks the
//! interpreter's register file and the backend's variable count.

use crate::ir::print::op_dst;
use crate::ir::{IrBlock, Op, Terminal, Type, Value};

/// Renumber `block`'s values densely in definition order (a verified block defines every value
/// it uses).
pub fn compact_values(block: &mut IrBlock) {
    let mut defined = vec![false; block.values.len()];
    let mut defs = 0;
    for op in &block.ops {
        if let Some(d) = op_dst(op).and_then(|d| defined.get_mut(d.0 as usize)) {
            defs += usize::from(!*d);
            *d = true;
        }
    }
    if defs == block.values.len() {
        return;
    }
    let mut r = Renumber::default();
    r.reset(block.values.len());
    for op in block.ops.iter_mut() {
        r.op(op, &block.values);
    }
    r.finish(&mut block.values);
}

/// The renumbering, one op at a time in block order: a value gets the next number where it is
/// first seen, which in a verified block is its definition. (A used value without a definition,
/// not in a verified block, gets a number of its own where it is first used.)
#[derive(Default)]
pub(crate) struct Renumber {
    new_of: Vec<u32>,
    values: Vec<Type>,
}

const NONE: u32 = u32::MAX;

impl Renumber {
    /// Start a block of `values` values.
    pub(crate) fn reset(&mut self, values: usize) {
        self.new_of.clear();
        self.new_of.resize(values, NONE);
        self.values.clear();
    }

    /// Renumber the values `op` uses and defines; `types` is the block's value table.
    #[inline]
    pub(crate) fn op(&mut self, op: &mut Op, types: &[Type]) {
        let Renumber { new_of, values } = self;
        let map = |v: Value| {
            let (Some(slot), Some(&ty)) = (new_of.get_mut(v.0 as usize), types.get(v.0 as usize))
            else {
                return v;
            };
            if *slot == NONE {
                *slot = values.len() as u32;
                values.push(ty);
            }
            Value(*slot)
        };
        map_values(op, map);
    }

    /// Replace the block's value table `types` by the renumbered one.
    pub(crate) fn finish(&self, types: &mut Vec<Type>) {
        types.clear();
        types.extend_from_slice(&self.values);
    }
}

/// Rewrite the values `op` uses, then the one it defines, through `f`: one dispatch on the op
/// kind (the renumbering walk is bound by mispredicted dispatches, not by the work).
fn map_values(op: &mut Op, mut f: impl FnMut(Value) -> Value) {
    match op {
        Op::InsnStart { .. } | Op::Label(_) | Op::Br(_) => {}
        Op::Const { dst, .. } | Op::LoadGlobal { dst, .. } => *dst = f(*dst),
        Op::Mov { dst, src, .. } | Op::Unary { dst, src, .. } | Op::Ext { dst, src, .. } => {
            *src = f(*src);
            *dst = f(*dst);
        }
        Op::StoreGlobal { src, .. } => *src = f(*src),
        Op::Binary { dst, a, b, .. } | Op::SetCond { dst, a, b, .. } => {
            *a = f(*a);
            *b = f(*b);
            *dst = f(*dst);
        }
        Op::BrCond { a, b, .. } => {
            *a = f(*a);
            *b = f(*b);
        }
        Op::Select {
            dst,
            cond_val,
            a,
            b,
            ..
        } => {
            *cond_val = f(*cond_val);
            *a = f(*a);
            *b = f(*b);
            *dst = f(*dst);
        }
        Op::Load { dst, addr, .. } => {
            *addr = f(*addr);
            *dst = f(*dst);
        }
        Op::Store { src, addr, .. } => {
            *src = f(*src);
            *addr = f(*addr);
        }
        Op::Call { args, dst, .. } => {
            for a in args.iter_mut() {
                *a = f(*a);
            }
            if let Some(d) = dst {
                *d = f(*d);
            }
        }
        Op::Exit(t) => match t {
            Terminal::Goto { .. } | Terminal::Exit { .. } => {}
            Terminal::Indirect { pc } | Terminal::ExitDynamic { pc, .. } => *pc = f(*pc),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::test_util::{block, ops_text};

    #[test]
    fn renumbers_densely_in_definition_order() {
        let mut b = block(
            " v3:i64 = load_global 0x100\n v7:i32 = trunc.i64 v3\n v5:i128 = zext.i32 v7\n \
             v9:i64 = call test.add3 v3, v3, v3\n decl v0:i8\n decl v1:i8\n decl v2:i8\n decl v4:i8\n \
             decl v6:i8\n decl v8:i8\n indirect v9\n",
        );
        compact_values(&mut b);
        assert_eq!(b.values, [Type::I64, Type::I32, Type::I128, Type::I64]);
        assert_eq!(
            ops_text(&b),
            [
                "v0:i64 = load_global 0x100",
                "v1:i32 = trunc.i64 v0",
                "v2:i128 = zext.i32 v1",
                "v3:i64 = call test.add3 v0, v0, v0",
                "indirect v3",
            ]
        );
        crate::ir::verify::verify(&b).unwrap();
    }
}
