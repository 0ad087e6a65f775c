//! A user's device tree (`-dtb FILE`) with `/chosen` filled in from the command line, as QEMU
//! does (hw/riscv/boot.c riscv_load_fdt + riscv_load_initrd: `bootargs`,
//! `linux,initrd-start`, `linux,initrd-end`). The tree is parsed (the `fdt` crate) and written
//! out again (vm-fdt, as the generated tree is) with those properties replaced.

/// Deepest node nesting copied; a deeper tree is refused (the file is user input).
const MAX_DEPTH: usize = 64;

/// Rewrite `blob` with `/chosen` holding `bootargs` and the initrd range (when given). Other
/// properties of `/chosen` are kept. The error says what is wrong with the file.
pub fn patch_chosen(
    blob: &[u8],
    bootargs: Option<&str>,
    initrd: Option<(u64, u64)>,
) -> Result<Vec<u8>, String> {
    // The `fdt` crate checks only the header and panics on a malformed structure block, so the
    // whole blob is validated first (found by fuzzing: fuzz/corpus/dtb_patch/regress-*).
    validate(blob)?;
    let tree = ::fdt::Fdt::new(blob).map_err(|e| format!("not a valid device tree ({e:?})"))?;
    let root = tree
        .find_node("/")
        .ok_or("the device tree has no root node")?;
    let reservations = tree
        .memory_reservations()
        .map(|r| vm_fdt::FdtReserveEntry::new(r.address() as u64, r.size() as u64))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad memory reservation: {e}"))?;
    let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&reservations).map_err(|e| e.to_string())?;
    let chosen = Chosen { bootargs, initrd };
    copy_node(&mut w, root, 0, false, &chosen).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())
}

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Offset just past the NUL ending the UTF-8 string at `off` in `b`, if there is one.
fn end_of_string(b: &[u8], off: usize) -> Option<usize> {
    let tail = b.get(off..)?;
    let nul = tail.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&tail[..nul]).ok()?;
    Some(off + nul + 1)
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|v| v & !3)
}

/// Check a flattened device tree completely (Devicetree Specification v0.4 §5): the header's
/// blocks lie inside the blob, the memory reservation list ends, and the structure block is a
/// well-formed token stream — one root node, properties before subnodes, every length and
/// string offset in bounds, names in UTF-8, nesting at most `MAX_DEPTH`, ending in FDT_END.
fn validate(blob: &[u8]) -> Result<(), String> {
    let bad = |what: &str| format!("not a valid device tree ({what})");
    let hdr = |i: usize| be32(blob, 4 * i).ok_or_else(|| bad("truncated header"));
    if hdr(0)? != FDT_MAGIC {
        return Err(bad("bad magic"));
    }
    let total = hdr(1)? as usize;
    let (off_struct, off_strings, off_rsv) = (hdr(2)? as usize, hdr(3)? as usize, hdr(4)? as usize);
    if hdr(5)? < 16 {
        return Err(bad("version older than 16"));
    }
    let (size_strings, size_struct) = (hdr(8)? as usize, hdr(9)? as usize);
    if total > blob.len() || total < 40 {
        return Err(bad("total size does not match the file"));
    }
    let within = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= total);
    if !within(off_struct, size_struct) || !within(off_strings, size_strings) {
        return Err(bad("a block lies outside the blob"));
    }
    // Memory reservations: 16-byte entries up to an all-zero one.
    let mut at = off_rsv;
    loop {
        if !within(at, 16) {
            return Err(bad("unterminated memory reservation list"));
        }
        let zero = blob
            .get(at..at + 16)
            .is_some_and(|e| e.iter().all(|&b| b == 0));
        at += 16;
        if zero {
            break;
        }
    }
    let structure = &blob[off_struct..off_struct + size_struct];
    let strings = &blob[off_strings..off_strings + size_strings];
    let mut pos = 0usize;
    let mut depth = 0usize;
    // Per open node: whether a subnode was seen (properties must come first).
    let mut had_child = [false; MAX_DEPTH + 1];
    let mut roots = 0;
    loop {
        let token = be32(structure, pos).ok_or_else(|| bad("structure block ends early"))?;
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(bad("more than one root node"));
                    }
                } else {
                    had_child[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("device tree nested deeper than {MAX_DEPTH} levels"));
                }
                had_child[depth] = false;
                let end = end_of_string(structure, pos)
                    .ok_or_else(|| bad("node name unterminated or not UTF-8"))?;
                pos = align4(end).ok_or_else(|| bad("bad node name"))?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(bad("unbalanced end of node"));
                }
                depth -= 1;
            }
            FDT_PROP => {
                if depth == 0 || had_child[depth] {
                    return Err(bad("property outside a node or after its subnodes"));
                }
                let len = be32(structure, pos).ok_or_else(|| bad("truncated property"))? as usize;
                let name =
                    be32(structure, pos + 4).ok_or_else(|| bad("truncated property"))? as usize;
                pos += 8;
                if pos.checked_add(len).is_none_or(|end| end > structure.len()) {
                    return Err(bad("property value outside the structure block"));
                }
                if end_of_string(strings, name).is_none() {
                    return Err(bad("property name outside the strings block or not UTF-8"));
                }
                pos = align4(pos + len).ok_or_else(|| bad("bad property"))?;
            }
            // Legal, but the `fdt` crate cannot walk NOPs between properties and nodes.
            FDT_NOP => {
                return Err(bad(
                    "FDT_NOP tokens are not supported; recompile it with dtc",
                ))
            }
            FDT_END => {
                return if depth == 0 && roots == 1 {
                    Ok(())
                } else {
                    Err(bad("structure block ends inside a node"))
                };
            }
            _ => return Err(bad("unknown structure token")),
        }
    }
}

struct Chosen<'a> {
    bootargs: Option<&'a str>,
    initrd: Option<(u64, u64)>,
}

impl Chosen<'_> {
    fn replaces(&self, prop: &str) -> bool {
        (prop == "bootargs" && self.bootargs.is_some())
            || (matches!(prop, "linux,initrd-start" | "linux,initrd-end") && self.initrd.is_some())
    }

    fn write(&self, w: &mut vm_fdt::FdtWriter) -> Result<(), vm_fdt::Error> {
        if let Some(b) = self.bootargs {
            w.property_string("bootargs", b)?;
        }
        if let Some((start, end)) = self.initrd {
            w.property_u64("linux,initrd-start", start)?;
            w.property_u64("linux,initrd-end", end)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
enum CopyError {
    Fdt(vm_fdt::Error),
    TooDeep,
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Fdt(e) => write!(f, "{e}"),
            CopyError::TooDeep => write!(f, "nodes nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl From<vm_fdt::Error> for CopyError {
    fn from(e: vm_fdt::Error) -> Self {
        CopyError::Fdt(e)
    }
}

/// Whether a node name is what the path component `chosen` finds: libfdt (which QEMU uses to
/// patch `/chosen`) and the `fdt` crate both match a unit address too (`chosen@0`).
fn names_chosen(name: &str) -> bool {
    name == "chosen" || name.starts_with("chosen@")
}

/// Copy `node` and its subtree into `w`; `is_chosen` marks the root's child that gets the
/// `/chosen` properties (the first one whose name matches, as a path lookup finds it).
fn copy_node(
    w: &mut vm_fdt::FdtWriter,
    node: ::fdt::node::FdtNode<'_, '_>,
    depth: usize,
    is_chosen: bool,
    chosen: &Chosen<'_>,
) -> Result<(), CopyError> {
    if depth > MAX_DEPTH {
        return Err(CopyError::TooDeep);
    }
    let is_root = depth == 0;
    let h = w.begin_node(if is_root { "" } else { node.name })?;
    for p in node.properties() {
        if is_chosen && chosen.replaces(p.name) {
            continue;
        }
        w.property(p.name, p.value)?;
    }
    if is_chosen {
        chosen.write(w)?;
    }
    let mut has_chosen = false;
    for c in node.children() {
        let this_one = is_root && !has_chosen && names_chosen(c.name);
        has_chosen |= this_one;
        copy_node(w, c, depth + 1, this_one, chosen)?;
    }
    if is_root && !has_chosen {
        let c = w.begin_node("chosen")?;
        chosen.write(w)?;
        w.end_node(c)?;
    }
    w.end_node(h)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_string("compatible", "riscv-virtio").unwrap();
        let c = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "old").unwrap();
        w.property_string("stdout-path", "/soc/serial@10000000")
            .unwrap();
        w.end_node(c).unwrap();
        let soc = w.begin_node("soc").unwrap();
        let s = w.begin_node("serial@10000000").unwrap();
        w.property_u32("interrupts", 10).unwrap();
        w.end_node(s).unwrap();
        w.end_node(soc).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    /// Found by fuzzing: the `fdt` crate panicked on malformed structure blocks. Every
    /// truncation and every single-byte corruption of a valid tree is now either refused with
    /// a message or patched into a parseable tree — never a panic.
    #[test]
    fn corrupted_trees_are_refused_not_panics() {
        let good = sample();
        for len in 0..good.len() {
            let _ = patch_chosen(&good[..len], Some("x"), None);
        }
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                if let Ok(out) = patch_chosen(&bad, Some("x"), Some((1, 2))) {
                    assert!(::fdt::Fdt::new(&out).is_ok(), "byte {i} = {v:#x}");
                }
            }
        }
    }

    #[test]
    fn structure_errors_name_the_problem() {
        let good = sample();
        let off_struct = u32::from_be_bytes(good[8..12].try_into().unwrap()) as usize;
        // The root's first property token becomes a NOP; a property name offset points past
        // the strings block; the root node name (empty) becomes non-UTF-8 garbage.
        let mut nop = good.clone();
        nop[off_struct + 8..off_struct + 12].copy_from_slice(&FDT_NOP.to_be_bytes());
        let mut name = good.clone();
        name[off_struct + 16..off_struct + 20].copy_from_slice(&0xffffu32.to_be_bytes());
        let mut utf8 = good.clone();
        utf8[off_struct + 4..off_struct + 8].copy_from_slice(&[0xff, 0xfe, 0, 0]);
        for (bad, want) in [
            (nop, "FDT_NOP"),
            (name, "property name outside the strings block"),
            (utf8, "node name unterminated or not UTF-8"),
        ] {
            let e = patch_chosen(&bad, None, None).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn chosen_is_replaced_and_the_rest_kept() {
        let out = patch_chosen(
            &sample(),
            Some("console=ttyS0"),
            Some((0x8800_0000, 0x8810_0000)),
        )
        .unwrap();
        let t = ::fdt::Fdt::new(&out).unwrap();
        let ch = t.find_node("/chosen").unwrap();
        assert_eq!(
            ch.property("bootargs").unwrap().as_str(),
            Some("console=ttyS0")
        );
        assert_eq!(
            ch.property("stdout-path").unwrap().as_str(),
            Some("/soc/serial@10000000")
        );
        let start = ch.property("linux,initrd-start").unwrap().value;
        assert_eq!(start, 0x8800_0000u64.to_be_bytes());
        let s = t.find_node("/soc/serial@10000000").unwrap();
        assert_eq!(s.property("interrupts").unwrap().as_usize(), Some(10));
        // Nothing to change: the old bootargs stay.
        let same = patch_chosen(&sample(), None, None).unwrap();
        let t = ::fdt::Fdt::new(&same).unwrap();
        let ch = t.find_node("/chosen").unwrap();
        assert_eq!(ch.property("bootargs").unwrap().as_str(), Some("old"));
    }

    #[test]
    fn a_unit_address_on_chosen_is_found_as_libfdt_finds_it() {
        // `chosen@80000000` is what the path `/chosen` finds (libfdt in QEMU, the `fdt`
        // crate): that node gets the properties, not a second, unreachable `chosen` (found by
        // fuzzing: fuzz/corpus/dtb_patch/regress-chosen-unit-address).
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        let c = w.begin_node("chosen@80000000").unwrap();
        w.property_string("bootargs", "old").unwrap();
        w.end_node(c).unwrap();
        let c = w.begin_node("chosen").unwrap();
        w.end_node(c).unwrap();
        w.end_node(root).unwrap();
        let out = patch_chosen(&w.finish().unwrap(), Some("console=ttyS0"), None).unwrap();
        let t = ::fdt::Fdt::new(&out).unwrap();
        let ch = t.find_node("/chosen").unwrap();
        assert_eq!(ch.name, "chosen@80000000");
        assert_eq!(
            ch.property("bootargs").unwrap().as_str(),
            Some("console=ttyS0")
        );
        let second = t.find_node("/").unwrap().children().nth(1).unwrap();
        assert_eq!(second.name, "chosen");
        assert!(second.property("bootargs").is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(patch_chosen(b"not a tree", Some("x"), None).is_err());
        let mut b = sample();
        b.truncate(b.len() / 2);
        assert!(patch_chosen(&b, Some("x"), None).is_err());
    }
}
