//! Copy propagation: after `dst = mov src`, later uses of `dst` use `src` directly, leaving the
//! move dead for [`super::dce`]. Sound because every value is defined once and `src` is defined
//! before the move, so it is defined wherever `dst` was.

use super::map_uses;
use crate::ir::{IrBlock, Op, Value};

/// Propagate copies in `block` in place.
pub fn copy_propagate(block: &mut IrBlock) {
    // `root[v]`: the value `v` copies, resolved through chains of moves.
    let mut root: Vec<Value> = (0..block.values.len() as u32).map(Value).collect();
    let resolve = |root: &[Value], v: Value| root.get(v.0 as usize).copied().unwrap_or(v);
    for op in block.ops.iter_mut() {
        map_uses(op, |v| resolve(&root, v));
        if let Op::Mov { dst, src, .. } = *op {
            if let Some(r) = root.get_mut(dst.0 as usize) {
                *r = src;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::test_util::{block, ops_text};

    #[test]
    fn uses_go_to_the_root_of_a_chain() {
        let mut b = block(
            " v0:i64 = load_global 0x100\n v1:i64 = mov v0\n v2:i64 = mov v1\n \
             v3:i64 = add v2, v1\n store_global.i64 0x108, v2\n call test.raise_if v2\n indirect v2\n",
        );
        copy_propagate(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[2], "v2:i64 = mov v0");
        assert_eq!(t[3], "v3:i64 = add v0, v0");
        assert_eq!(t[4], "store_global.i64 0x108, v0");
        assert_eq!(t[5], "call test.raise_if v0");
        assert_eq!(t[6], "indirect v0");
    }
}
