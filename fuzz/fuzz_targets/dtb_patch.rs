//! A user's device tree (`-dtb FILE`, firmware/src/dtb.rs) on arbitrary blobs: never a panic, and
//! a tree that is accepted comes back parseable with `/chosen` holding what was asked.
//! Input: byte 0 flags (bit 0 bootargs, bit 1 initrd), byte 1 bootargs length N, N bytes of
//! bootargs, 16 bytes initrd start/end (little endian), then the blob.
#![no_main]

use emu_firmware::dtb::patch_chosen;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(*n).min(rest.len());
    let (args, rest) = rest.split_at(n);
    let bootargs = String::from_utf8_lossy(args).replace('\0', " ");
    let (initrd, blob) = if rest.len() >= 16 {
        let (r, blob) = rest.split_at(16);
        let start = u64::from_le_bytes(r[..8].try_into().unwrap_or_default());
        let end = u64::from_le_bytes(r[8..].try_into().unwrap_or_default());
        ((start, end), blob)
    } else {
        ((0, 0), rest)
    };
    let bootargs = (flags & 1 != 0).then_some(bootargs.as_str());
    let initrd = (flags & 2 != 0).then_some(initrd);
    let Ok(out) = patch_chosen(blob, bootargs, initrd) else {
        return;
    };
    let tree = fdt::Fdt::new(&out).expect("an accepted tree is written back parseable");
    let chosen = tree.find_node("/chosen").expect("/chosen exists after patching");
    if let Some(b) = bootargs {
        let got = chosen.property("bootargs").and_then(|p| p.as_str());
        assert_eq!(got, Some(b), "bootargs");
    }
    if let Some((start, _)) = initrd {
        let got = chosen
            .property("linux,initrd-start")
            .and_then(|p| p.value.try_into().ok())
            .map(u64::from_be_bytes);
        assert_eq!(got, Some(start), "linux,initrd-start");
    }
});
