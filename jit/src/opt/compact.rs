//! Value renumbering: after the other passes, many entries of the value table belong to ops
//! that are gone. Renumbering the values that remain densely, in definition order, shrinks the
//! interpreter's register file and the backend's variable count.

use super::map_uses;
use crate::ir::print::op_dst;
use crate::ir::{IrBlock, Op, Value};

/// Renumber `block`'s values densely in definition order (a verified block defines every value
/// it uses).
pub fn compact_values(block: &mut IrBlock) {
    const NONE: u32 = u32::MAX;
    let mut new_of = vec![NONE; block.values.len()];
    let mut values = Vec::new();
    for op in &block.ops {
        if let Some(d) = op_dst(op) {
            if let (Some(slot), Some(ty)) = (new_of.get_mut(d.0 as usize), block.value_type(d)) {
                if *slot == NONE {
                    *slot = values.len() as u32;
                    values.push(ty);
                }
            }
        }
    }
    if values.len() == block.values.len() {
        return;
    }
    // A used value without a definition (not in a verified block) keeps a slot of its own.
    for op in &block.ops {
        super::for_each_use(op, |v| {
            if let (Some(slot), Some(ty)) = (new_of.get_mut(v.0 as usize), block.value_type(v)) {
                if *slot == NONE {
                    *slot = values.len() as u32;
                    values.push(ty);
                }
            }
        });
    }
    let map = |v: Value| Value(new_of.get(v.0 as usize).copied().unwrap_or(v.0));
    for op in block.ops.iter_mut() {
        map_uses(op, map);
        set_dst(op, map);
    }
    block.values = values;
}

/// Rewrite the value `op` defines, if any.
fn set_dst(op: &mut Op, f: impl Fn(Value) -> Value) {
    match op {
        Op::Const { dst, .. }
        | Op::Mov { dst, .. }
        | Op::LoadGlobal { dst, .. }
        | Op::Unary { dst, .. }
        | Op::Binary { dst, .. }
        | Op::Ext { dst, .. }
        | Op::SetCond { dst, .. }
        | Op::Select { dst, .. }
        | Op::Load { dst, .. }
        | Op::Call { dst: Some(dst), .. } => *dst = f(*dst),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Type;
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
