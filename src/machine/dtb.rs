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
    let tree = fdt::Fdt::new(blob).map_err(|e| format!("not a valid device tree ({e:?})"))?;
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
    copy_node(&mut w, root, 0, &chosen).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())
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

fn copy_node(
    w: &mut vm_fdt::FdtWriter,
    node: fdt::node::FdtNode<'_, '_>,
    depth: usize,
    chosen: &Chosen<'_>,
) -> Result<(), CopyError> {
    if depth > MAX_DEPTH {
        return Err(CopyError::TooDeep);
    }
    let is_root = depth == 0;
    let is_chosen = depth == 1 && node.name == "chosen";
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
        has_chosen |= is_root && c.name == "chosen";
        copy_node(w, c, depth + 1, chosen)?;
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

    #[test]
    fn chosen_is_replaced_and_the_rest_kept() {
        let out = patch_chosen(
            &sample(),
            Some("console=ttyS0"),
            Some((0x8800_0000, 0x8810_0000)),
        )
        .unwrap();
        let t = fdt::Fdt::new(&out).unwrap();
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
        let t = fdt::Fdt::new(&same).unwrap();
        let ch = t.find_node("/chosen").unwrap();
        assert_eq!(ch.property("bootargs").unwrap().as_str(), Some("old"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(patch_chosen(b"not a tree", Some("x"), None).is_err());
        let mut b = sample();
        b.truncate(b.len() / 2);
        assert!(patch_chosen(&b, Some("x"), None).is_err());
    }
}
