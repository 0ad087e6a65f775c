//! Virtio devices driven through their MMIO registers exactly as a driver does (VIRTIO 1.2
//! §3.1.1 initialization, §4.2.3.2 queue setup, §2.7.13 supplying buffers, §2.7.14 used-ring
//! processing), with the rings laid out in a `GuestRam`.

use emu_devices::irq::{IrqLevels, IrqLine};
use emu_devices::virtio::blk::{
    BlockBackend, BlockError, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_S_IOERR,
    VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use emu_devices::virtio::mmio::*;
use emu_devices::virtio::net::{VIRTIO_NET_F_MAC, VIRTIO_NET_HDR_LEN};
use emu_devices::virtio::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use emu_devices::virtio::*;
use emu_devices::{BusDevice, GuestRam};
use parking_lot::Mutex;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x10_0000;
/// Data buffers live here; rings below.
const DATA: u64 = RAM_BASE + 0x8_0000;
const QSIZE: u16 = 16;
const IRQ: u32 = 3;

fn ring_base(q: usize) -> u64 {
    RAM_BASE + 0x1_0000 * q as u64
}

struct DrvQueue {
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

/// A minimal virtio driver.
struct Harness<D: VirtioDevice> {
    ram: Arc<GuestRam>,
    dev: VirtioMmio<D>,
    irq: Arc<IrqLevels>,
    dma_writes: Arc<Mutex<Vec<(u64, u64)>>>,
    queues: Vec<DrvQueue>,
}

impl<D: VirtioDevice> Harness<D> {
    fn new(device: D) -> Self {
        let ram = Arc::new(GuestRam::new(RAM_BASE, RAM_SIZE).unwrap());
        let dma_writes = Arc::new(Mutex::new(Vec::new()));
        let log = dma_writes.clone();
        let hook: DmaWriteHook = Arc::new(move |a, l| log.lock().push((a, l)));
        let mem = GuestMemory::new(vec![ram.clone()], Some(hook));
        let irq = Arc::new(IrqLevels::new());
        let dev = VirtioMmio::new(device, mem, IrqLine::new(irq.clone(), IRQ));
        Harness {
            ram,
            dev,
            irq,
            dma_writes,
            queues: Vec::new(),
        }
    }

    fn r32(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn w32(&mut self, off: u64, v: u32) {
        self.dev.write(off, &v.to_le_bytes());
    }

    fn device_features(&mut self) -> u64 {
        self.w32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        let lo = self.r32(VIRTIO_MMIO_DEVICE_FEATURES);
        self.w32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        let hi = self.r32(VIRTIO_MMIO_DEVICE_FEATURES);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// §3.1.1 driver initialization, accepting `features` (must be offered); sets up
    /// `nqueues` queues of QSIZE. Returns whether FEATURES_OK stuck.
    fn init_with(&mut self, features: u64, nqueues: usize) -> bool {
        self.w32(VIRTIO_MMIO_STATUS, 0);
        assert_eq!(self.r32(VIRTIO_MMIO_STATUS), 0);
        self.w32(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
        self.w32(
            VIRTIO_MMIO_STATUS,
            VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
        );
        self.w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        self.w32(VIRTIO_MMIO_DRIVER_FEATURES, features as u32);
        self.w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        self.w32(VIRTIO_MMIO_DRIVER_FEATURES, (features >> 32) as u32);
        let s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
        self.w32(VIRTIO_MMIO_STATUS, s);
        if self.r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
            return false;
        }
        self.queues.clear();
        for q in 0..nqueues {
            self.w32(VIRTIO_MMIO_QUEUE_SEL, q as u32);
            assert_eq!(self.r32(VIRTIO_MMIO_QUEUE_READY), 0);
            assert!(self.r32(VIRTIO_MMIO_QUEUE_NUM_MAX) >= u32::from(QSIZE));
            self.w32(VIRTIO_MMIO_QUEUE_NUM, u32::from(QSIZE));
            let base = ring_base(q);
            self.ram.write(base, &[0u8; 0x3000]);
            self.w32(VIRTIO_MMIO_QUEUE_DESC_LOW, base as u32);
            self.w32(VIRTIO_MMIO_QUEUE_DESC_HIGH, (base >> 32) as u32);
            self.w32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (base + 0x1000) as u32);
            self.w32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
            self.w32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (base + 0x2000) as u32);
            self.w32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
            self.w32(VIRTIO_MMIO_QUEUE_READY, 1);
            assert_eq!(self.r32(VIRTIO_MMIO_QUEUE_READY), 1);
            self.queues.push(DrvQueue {
                next_desc: 0,
                avail_idx: 0,
                used_seen: 0,
            });
        }
        self.w32(VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
        true
    }

    fn init(&mut self, nqueues: usize) {
        let f = self.device_features();
        assert!(f & VIRTIO_F_VERSION_1 != 0);
        assert!(self.init_with(f, nqueues));
    }

    /// Write raw descriptor `i` of queue `q`.
    fn put_desc(&mut self, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = ring_base(q) + 16 * u64::from(i);
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        assert!(self.ram.write(d, &b));
    }

    /// Publish `head` in the available ring of `q` (§2.7.13).
    fn publish(&mut self, q: usize, head: u16) {
        let avail = ring_base(q) + 0x1000;
        let dq = &mut self.queues[q];
        let slot = u64::from(dq.avail_idx % QSIZE);
        assert!(self.ram.write(avail + 4 + 2 * slot, &head.to_le_bytes()));
        dq.avail_idx = dq.avail_idx.wrapping_add(1);
        let idx = dq.avail_idx;
        assert!(self.ram.write(avail + 2, &idx.to_le_bytes()));
    }

    /// Chain `bufs` (addr, len, device-writable) into free descriptors and publish it.
    fn submit(&mut self, q: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.queues[q].next_desc;
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = (head + k as u16) % QSIZE;
            let last = k + 1 == bufs.len();
            let flags =
                if w { VIRTQ_DESC_F_WRITE } else { 0 } | if last { 0 } else { VIRTQ_DESC_F_NEXT };
            self.put_desc(q, i, addr, len, flags, (i + 1) % QSIZE);
        }
        self.queues[q].next_desc = (head + bufs.len() as u16) % QSIZE;
        self.publish(q, head);
        head
    }

    fn notify(&mut self, q: usize) {
        self.w32(VIRTIO_MMIO_QUEUE_NOTIFY, q as u32);
    }

    /// New used-ring entries of `q` (§2.7.14).
    fn used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let used = ring_base(q) + 0x2000;
        let idx = self.ram_u16(used + 2);
        let mut out = Vec::new();
        let dq = &mut self.queues[q];
        while dq.used_seen != idx {
            let e = used + 4 + 8 * u64::from(dq.used_seen % QSIZE);
            let id = self.ram.read_u32(e).unwrap();
            let len = self.ram.read_u32(e + 4).unwrap();
            out.push((id, len));
            dq.used_seen = dq.used_seen.wrapping_add(1);
        }
        out
    }

    fn ram_u16(&self, a: u64) -> u16 {
        let mut b = [0u8; 2];
        assert!(self.ram.read(a, &mut b));
        u16::from_le_bytes(b)
    }

    fn ram_bytes(&self, a: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        assert!(self.ram.read(a, &mut v));
        v
    }

    /// Interrupt handler: read and acknowledge InterruptStatus.
    fn ack(&mut self) -> u32 {
        let s = self.r32(VIRTIO_MMIO_INTERRUPT_STATUS);
        self.w32(VIRTIO_MMIO_INTERRUPT_ACK, s);
        s
    }

    fn line(&self) -> bool {
        self.irq.level(IRQ)
    }

    fn config(&mut self, off: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.dev.read(VIRTIO_MMIO_CONFIG + off, &mut v);
        v
    }
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let p = std::env::temp_dir().join(format!("emu-virtio-{}-{name}", std::process::id()));
        std::fs::write(&p, contents).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 512) as u8).collect()
}

fn blk_header(ty: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&ty.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

/// Submit a blk request: header at DATA, data buffer at DATA+0x1000 (readable for OUT, writable
/// otherwise), status at DATA+0x100. Returns (status, used length).
fn blk_request<D: VirtioDevice>(
    h: &mut Harness<D>,
    ty: u32,
    sector: u64,
    data_len: u32,
) -> (u8, u32) {
    h.ram.write(DATA, &blk_header(ty, sector));
    h.ram.write(DATA + 0x100, &[0xff]);
    let mut bufs = vec![(DATA, 16, false)];
    if data_len > 0 {
        // Split the data over two descriptors to exercise chain gathering.
        let first = data_len / 2;
        let w = ty != VIRTIO_BLK_T_OUT;
        bufs.push((DATA + 0x1000, first, w));
        bufs.push((DATA + 0x1000 + u64::from(first), data_len - first, w));
    }
    bufs.push((DATA + 0x100, 1, true));
    let head = h.submit(0, &bufs);
    h.notify(0);
    let used = h.used(0);
    assert_eq!(used.len(), 1, "one completion");
    assert_eq!(used[0].0, u32::from(head));
    (h.ram_bytes(DATA + 0x100, 1)[0], used[0].1)
}

fn open_blk(path: &std::path::Path, ro: bool) -> VirtioBlk {
    VirtioBlk::new(Box::new(FileBackend::open(path, ro).unwrap()), ro)
}

#[test]
fn transport_identifies_itself_and_refuses_bad_features() {
    let mut h = Harness::new(VirtioRng::default());
    assert_eq!(h.r32(VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
    assert_eq!(h.r32(VIRTIO_MMIO_VERSION), 2);
    assert_eq!(h.r32(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
    assert_eq!(h.r32(VIRTIO_MMIO_VENDOR_ID), 0x554d_4551);
    assert_eq!(h.device_features(), VIRTIO_F_VERSION_1);
    // Registers are 32-bit only: a byte read reads zero.
    let mut b = [0xaau8; 1];
    h.dev.read(VIRTIO_MMIO_MAGIC_VALUE, &mut b);
    assert_eq!(b, [0]);
    // A legacy driver (no VERSION_1) or an unoffered feature does not get FEATURES_OK.
    assert!(!h.init_with(0, 1));
    assert!(!h.init_with(VIRTIO_F_VERSION_1 | 1 << 5, 1));
    assert!(h.init_with(VIRTIO_F_VERSION_1, 1));
    assert_eq!(
        h.r32(VIRTIO_MMIO_STATUS),
        VIRTIO_CONFIG_S_ACKNOWLEDGE
            | VIRTIO_CONFIG_S_DRIVER
            | VIRTIO_CONFIG_S_FEATURES_OK
            | VIRTIO_CONFIG_S_DRIVER_OK
    );
    // Reset clears the queues.
    h.w32(VIRTIO_MMIO_STATUS, 0);
    h.w32(VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_eq!(h.r32(VIRTIO_MMIO_QUEUE_READY), 0);
    assert_eq!(h.r32(VIRTIO_MMIO_STATUS), 0);
}

#[test]
fn blk_reads_writes_flushes_and_identifies() {
    let image = pattern(64 * 1024);
    let f = TempFile::new("rw.img", &image);
    let mut blk = open_blk(&f.0, false);
    blk.set_serial("emu-disk-0");
    let mut h = Harness::new(blk);
    let feats = h.device_features();
    assert!(feats & VIRTIO_BLK_F_FLUSH != 0);
    assert!(feats & VIRTIO_BLK_F_RO == 0);
    h.init(1);
    assert_eq!(h.config(0, 8), 128u64.to_le_bytes()); // capacity in sectors
    assert_eq!(h.config(20, 4), 512u32.to_le_bytes()); // blk_size
    assert_eq!(h.config(0, 1), [128]); // byte-wide config access

    // IN: sectors 2..4.
    let (st, len) = blk_request(&mut h, VIRTIO_BLK_T_IN, 2, 1024);
    assert_eq!((st, len), (VIRTIO_BLK_S_OK, 1025));
    assert_eq!(h.ram_bytes(DATA + 0x1000, 1024), &image[1024..2048]);
    assert!(h.line(), "used-buffer interrupt");
    assert_eq!(h.ack(), VIRTIO_MMIO_INT_VRING);
    assert!(!h.line(), "ACK lowers the line");
    assert!(h
        .dma_writes
        .lock()
        .iter()
        .any(|&(a, l)| a == DATA + 0x1000 && l == 512));

    // OUT: sector 3, then FLUSH, and the file holds it.
    let data: Vec<u8> = (0..512).map(|i| (i as u8) ^ 0x5a).collect();
    h.ram.write(DATA + 0x1000, &data);
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_OUT, 3, 512),
        (VIRTIO_BLK_S_OK, 1)
    );
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_FLUSH, 0, 0),
        (VIRTIO_BLK_S_OK, 1)
    );
    let on_disk = std::fs::read(&f.0).unwrap();
    assert_eq!(&on_disk[1536..2048], &data[..]);
    assert_eq!(&on_disk[..1536], &image[..1536]);

    // Outside the image, and a request type not implemented.
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_IN, 127, 1024).0,
        VIRTIO_BLK_S_IOERR
    );
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_OUT, u64::MAX, 512).0,
        VIRTIO_BLK_S_IOERR
    );
    assert_eq!(blk_request(&mut h, 11, 0, 0).0, VIRTIO_BLK_S_UNSUPP);

    // GET_ID: 20 bytes, NUL-padded.
    let (st, len) = blk_request(&mut h, VIRTIO_BLK_T_GET_ID, 0, 20);
    assert_eq!((st, len), (VIRTIO_BLK_S_OK, 21));
    assert_eq!(
        &h.ram_bytes(DATA + 0x1000, 20)[..],
        b"emu-disk-0\0\0\0\0\0\0\0\0\0\0"
    );
}

#[test]
fn blk_read_only_refuses_writes() {
    let image = pattern(8192);
    let f = TempFile::new("ro.img", &image);
    let mut h = Harness::new(open_blk(&f.0, true));
    assert!(h.device_features() & VIRTIO_BLK_F_RO != 0);
    h.init(1);
    h.ram.write(DATA + 0x1000, &[0u8; 512]);
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_OUT, 0, 512),
        (VIRTIO_BLK_S_IOERR, 1)
    );
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_IN, 1, 512).0,
        VIRTIO_BLK_S_OK
    );
    assert_eq!(h.ram_bytes(DATA + 0x1000, 512), &image[512..1024]);
    assert_eq!(std::fs::read(&f.0).unwrap(), image);
}

#[test]
fn blk_image_lock_refuses_a_second_user() {
    let f = TempFile::new("lock.img", &[0u8; 4096]);
    let first = FileBackend::open(&f.0, false).unwrap();
    for ro in [false, true] {
        let err = FileBackend::open(&f.0, ro).unwrap_err();
        assert!(matches!(err, BlockError::Locked { .. }), "{err}");
        assert!(err.to_string().contains(&*f.0.to_string_lossy()), "{err}");
    }
    drop(first);
    // Read-only users share.
    let a = FileBackend::open(&f.0, true).unwrap();
    let b = FileBackend::open(&f.0, true).unwrap();
    assert!(FileBackend::open(&f.0, false).is_err());
    drop((a, b));
    assert!(FileBackend::open(&f.0, false).is_ok());
    // A missing image names the file.
    let missing = f.0.with_extension("missing");
    let err = FileBackend::open(&missing, true).unwrap_err();
    assert!(
        err.to_string().contains("could not open disk image"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
}

/// A disk whose fsync fails once, then would succeed.
struct FlakyDisk {
    data: Vec<u8>,
    fail_next_flush: bool,
}

impl BlockBackend for FlakyDisk {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        buf.copy_from_slice(&self.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.data[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.fail_next_flush) {
            Err(std::io::Error::other("EIO"))
        } else {
            Ok(())
        }
    }
}

#[test]
fn blk_failed_flush_is_ioerr_and_stays_failed() {
    let disk = FlakyDisk {
        data: vec![0; 4096],
        fail_next_flush: true,
    };
    let mut h = Harness::new(VirtioBlk::new(Box::new(disk), false));
    h.init(1);
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_OUT, 0, 512).0,
        VIRTIO_BLK_S_OK
    );
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_FLUSH, 0, 0).0,
        VIRTIO_BLK_S_IOERR
    );
    assert_eq!(
        blk_request(&mut h, VIRTIO_BLK_T_FLUSH, 0, 0).0,
        VIRTIO_BLK_S_IOERR
    );
}

#[test]
fn rng_fills_buffers_deterministically() {
    let mut outs = Vec::new();
    for _ in 0..2 {
        let mut h = Harness::new(VirtioRng::default());
        h.init(1);
        h.ram.write(DATA, &[0u8; 100]);
        let head = h.submit(0, &[(DATA, 40, true), (DATA + 40, 60, true)]);
        h.notify(0);
        assert_eq!(h.used(0), vec![(u32::from(head), 100)]);
        assert!(h.line());
        outs.push(h.ram_bytes(DATA, 100));
    }
    assert_eq!(outs[0], outs[1]);
    assert!(outs[0].iter().filter(|&&b| b == 0).count() < 10);
}

#[derive(Clone, Default)]
struct SharedOut(Arc<Mutex<Vec<u8>>>);

impl Write for SharedOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn console_transmits_and_receives() {
    let out = SharedOut::default();
    let mut h = Harness::new(VirtioConsole::new(Box::new(out.clone())));
    h.init(2);
    h.ram.write(DATA, b"hello, world\n");
    h.submit(1, &[(DATA, 7, false), (DATA + 7, 6, false)]);
    h.notify(1);
    assert_eq!(&out.0.lock()[..], b"hello, world\n");
    assert_eq!(h.used(1).len(), 1);
    assert_eq!(h.ack(), VIRTIO_MMIO_INT_VRING);

    // Input waits for a poll, then fills the posted buffers in order.
    let head = h.submit(0, &[(DATA + 0x100, 4, true)]);
    h.notify(0);
    assert!(h.used(0).is_empty());
    h.dev.device_mut().push_input(b"ls\nxyz");
    h.dev.poll();
    assert_eq!(h.used(0), vec![(u32::from(head), 4)]);
    assert_eq!(h.ram_bytes(DATA + 0x100, 4), b"ls\nx");
    h.submit(0, &[(DATA + 0x200, 16, true)]);
    h.dev.poll();
    assert_eq!(h.used(0).first().map(|u| u.1), Some(2));
    assert_eq!(h.ram_bytes(DATA + 0x200, 2), b"yz");
    assert!(h.line());
}

#[test]
fn net_frames_cross_between_two_devices_over_a_stream() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mac_a = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mac_b = [0x52, 0x54, 0, 0x12, 0x34, 0x57];
    let mut ha = Harness::new(VirtioNet::new(
        mac_a,
        Box::new(StreamBackend::from_connection(Box::new(a))),
    ));
    let mut hb = Harness::new(VirtioNet::new(
        mac_b,
        Box::new(StreamBackend::from_connection(Box::new(b))),
    ));
    assert!(ha.device_features() & VIRTIO_NET_F_MAC != 0);
    ha.init(2);
    hb.init(2);
    assert_eq!(hb.config(0, 6), mac_b);
    assert_eq!(hb.config(6, 2), [1, 0]); // link up

    // B posts a receive buffer; A transmits header + frame in two pieces.
    hb.ram.write(DATA, &[0xee; 2048]);
    let rx_head = hb.submit(0, &[(DATA, 2048, true)]);
    hb.notify(0);
    let mut frame = Vec::new();
    frame.extend_from_slice(&mac_b);
    frame.extend_from_slice(&mac_a);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend((0..46).map(|i| i as u8));
    ha.ram.write(DATA, &[0u8; VIRTIO_NET_HDR_LEN]);
    ha.ram.write(DATA + 0x100, &frame);
    ha.submit(
        1,
        &[
            (DATA, VIRTIO_NET_HDR_LEN as u32, false),
            (DATA + 0x100, frame.len() as u32, false),
        ],
    );
    ha.notify(1);
    assert_eq!(ha.used(1).len(), 1);
    assert_eq!(ha.dev.device().stats().tx_frames, 1);

    hb.dev.poll();
    let total = (VIRTIO_NET_HDR_LEN + frame.len()) as u32;
    assert_eq!(hb.used(0), vec![(u32::from(rx_head), total)]);
    let got = hb.ram_bytes(DATA, total as usize);
    assert_eq!(&got[VIRTIO_NET_HDR_LEN..], &frame[..]);
    assert_eq!(&got[10..12], &[1, 0], "num_buffers = 1");
    assert!(hb.line());

    // With no receive buffer posted, a frame waits in the backend.
    ha.submit(
        1,
        &[
            (DATA, VIRTIO_NET_HDR_LEN as u32, false),
            (DATA + 0x100, frame.len() as u32, false),
        ],
    );
    ha.notify(1);
    hb.dev.poll();
    assert!(hb.used(0).is_empty());
    hb.submit(0, &[(DATA + 0x1000, 2048, true)]);
    hb.dev.poll();
    assert_eq!(hb.used(0).len(), 1);
    assert_eq!(hb.dev.device().stats().rx_frames, 2);
}

/// Each malicious queue makes the device set DEVICE_NEEDS_RESET and raise a configuration
/// interrupt, quickly and without panicking; a reset brings it back.
#[test]
fn malicious_queues_need_reset() {
    type Setup = fn(&mut Harness<VirtioRng>);
    let cases: Vec<(&str, Setup)> = vec![
        ("loop", |h| {
            h.put_desc(0, 0, DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
            h.put_desc(0, 1, DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
            h.publish(0, 0);
        }),
        ("overlong chain", |h| {
            for i in 0..QSIZE {
                h.put_desc(
                    0,
                    i,
                    DATA,
                    8,
                    VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
                    (i + 1) % QSIZE,
                );
            }
            h.publish(0, 0);
        }),
        ("next out of range", |h| {
            h.put_desc(0, 0, DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 999);
            h.publish(0, 0);
        }),
        ("head out of range", |h| h.publish(0, QSIZE)),
        ("buffer outside RAM", |h| {
            h.put_desc(0, 0, 0x1000, 8, VIRTQ_DESC_F_WRITE, 0);
            h.publish(0, 0);
        }),
        ("buffer end overflows", |h| {
            h.put_desc(0, 0, u64::MAX - 3, 8, VIRTQ_DESC_F_WRITE, 0);
            h.publish(0, 0);
        }),
        ("buffer runs past RAM", |h| {
            h.put_desc(
                0,
                0,
                RAM_BASE + RAM_SIZE - 4,
                u32::MAX,
                VIRTQ_DESC_F_WRITE,
                0,
            );
            h.publish(0, 0);
        }),
        ("indirect", |h| {
            h.put_desc(0, 0, DATA, 32, VIRTQ_DESC_F_INDIRECT, 0);
            h.publish(0, 0);
        }),
        ("avail index far ahead", |h| {
            h.ram.write(ring_base(0) + 0x1002, &1000u16.to_le_bytes());
        }),
    ];
    for (name, setup) in cases {
        let mut h = Harness::new(VirtioRng::default());
        h.init(1);
        setup(&mut h);
        let t = std::time::Instant::now();
        h.notify(0);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{name}: bounded time"
        );
        assert!(
            h.r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET != 0,
            "{name}: NEEDS_RESET"
        );
        assert!(h.line(), "{name}: interrupt");
        assert_eq!(h.ack(), VIRTIO_MMIO_INT_CONFIG, "{name}");
        assert!(h.used(0).is_empty(), "{name}: nothing used");
        // Stopped: a further notify does nothing.
        h.notify(0);
        assert!(!h.line(), "{name}: stopped");
        // A reset and a fresh setup work again.
        h.init(1);
        assert_eq!(h.r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
        h.submit(0, &[(DATA, 8, true)]);
        h.notify(0);
        assert_eq!(h.used(0).len(), 1, "{name}: works after reset");
    }
}

#[test]
fn bad_queue_layout_needs_reset() {
    // A queue size that is not a power of two, set before QueueReady.
    let mut h = Harness::new(VirtioRng::default());
    h.init(1);
    h.w32(VIRTIO_MMIO_QUEUE_READY, 0);
    h.w32(VIRTIO_MMIO_QUEUE_NUM, 3);
    h.w32(VIRTIO_MMIO_QUEUE_READY, 1);
    h.notify(0);
    assert!(h.r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET != 0);
    // A used ring outside RAM.
    let mut h = Harness::new(VirtioRng::default());
    h.init(1);
    h.w32(VIRTIO_MMIO_QUEUE_READY, 0);
    h.w32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x1000);
    h.w32(VIRTIO_MMIO_QUEUE_READY, 1);
    h.submit(0, &[(DATA, 8, true)]);
    h.notify(0);
    assert!(h.r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET != 0);
}

#[test]
fn buffers_made_available_before_driver_ok_are_processed() {
    let mut h = Harness::new(VirtioRng::default());
    let f = h.device_features();
    assert!(h.init_with(f, 1));
    // Go back to "features OK, not yet DRIVER_OK" with a fresh queue, post and notify.
    let s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    h.w32(VIRTIO_MMIO_STATUS, 0);
    h.w32(
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    h.w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    h.w32(VIRTIO_MMIO_DRIVER_FEATURES, 1);
    h.w32(VIRTIO_MMIO_STATUS, s);
    h.w32(VIRTIO_MMIO_QUEUE_SEL, 0);
    h.w32(VIRTIO_MMIO_QUEUE_NUM, u32::from(QSIZE));
    h.w32(VIRTIO_MMIO_QUEUE_DESC_LOW, ring_base(0) as u32);
    h.w32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (ring_base(0) + 0x1000) as u32);
    h.w32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (ring_base(0) + 0x2000) as u32);
    h.w32(VIRTIO_MMIO_QUEUE_READY, 1);
    h.ram.write(ring_base(0), &[0u8; 0x3000]);
    h.queues[0] = DrvQueue {
        next_desc: 0,
        avail_idx: 0,
        used_seen: 0,
    };
    h.submit(0, &[(DATA, 16, true)]);
    h.notify(0);
    assert!(h.used(0).is_empty(), "not processed before DRIVER_OK");
    h.w32(VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_eq!(h.used(0).len(), 1, "taken at DRIVER_OK");
    assert!(h.line());
}

fn recv_within(be: &mut StreamBackend, buf: &mut [u8]) -> Option<usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Some(n) = be.recv(buf) {
            return Some(n);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

#[test]
fn stream_backend_tcp_server_and_client_roles() {
    let mut server = StreamBackend::listen_tcp("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    assert!(!server.is_connected());
    // No peer yet: the frame is dropped, not queued for a later peer.
    server.send(b"early");
    assert_eq!(server.dropped(), 1);
    let mut client = StreamBackend::connect_tcp(&addr).unwrap();
    let mut buf = vec![0u8; emu_devices::virtio::net_backend::MAX_FRAME];
    client.send(b"from client");
    assert_eq!(recv_within(&mut server, &mut buf), Some(11));
    assert_eq!(&buf[..11], b"from client");
    server.send(b"from server");
    assert_eq!(recv_within(&mut client, &mut buf), Some(11));
    assert_eq!(&buf[..11], b"from server");
    // The client leaves; the server notices and takes the next one.
    drop(client);
    for _ in 0..500 {
        assert_eq!(server.recv(&mut buf), None);
        if !server.is_connected() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!server.is_connected());
    let mut second = StreamBackend::connect_tcp(&addr).unwrap();
    second.send(b"again");
    assert_eq!(recv_within(&mut server, &mut buf), Some(5));
    // With nobody listening, connecting fails at once (as QEMU's socket client does).
    drop(server);
    assert!(StreamBackend::connect_tcp(&addr).is_err());
}

/// Random rings and registers (biased towards almost-valid values, where bugs hide) against
/// every device: no panic, bounded time, and a device that stops says so (NEEDS_RESET with a
/// configuration interrupt).
#[test]
fn random_rings_never_panic() {
    fn run<D: VirtioDevice>(make: &dyn Fn() -> D, nqueues: usize, seed: u64) {
        let mut rng = XorShiftEntropy::new(seed);
        let mut r = move || {
            let mut b = [0u8; 8];
            rng.fill(&mut b);
            u64::from_le_bytes(b)
        };
        let start = std::time::Instant::now();
        let (mut completed, mut resets) = (0, 0);
        for _ in 0..64 {
            let mut h = Harness::new(make());
            h.init(nqueues);
            for _ in 0..16 {
                let q = (r() % nqueues as u64) as usize;
                if r() % 8 != 0 {
                    // A well-formed chain with random sizes: readable part, then writable.
                    let nread = r() % 3;
                    let nwrite = 1 + r() % 2;
                    let mut bufs = Vec::new();
                    for k in 0..nread + nwrite {
                        let addr = DATA + (r() % 16) * 0x1000;
                        let len = [16, 512, 1024, 1, (r() % 0x1000) as u32 + 1][(r() % 5) as usize];
                        if k == 0 {
                            let t = [0, 1, 4, 8, 11][(r() % 5) as usize];
                            h.ram.write(addr, &blk_header(t, r() % 80));
                        }
                        bufs.push((addr, len, k >= nread));
                    }
                    h.submit(q, &bufs);
                } else {
                    // One corrupted descriptor or ring entry.
                    let i = (r() % u64::from(QSIZE)) as u16;
                    match r() % 3 {
                        0 => h.put_desc(q, i, r(), r() as u32, r() as u16, r() as u16),
                        1 => h.publish(q, r() as u16),
                        _ => {
                            let next = (r() % u64::from(QSIZE)) as u16;
                            let flags = (r() % 8) as u16;
                            h.put_desc(q, i, DATA, 64, flags, next);
                            h.publish(q, i);
                        }
                    }
                }
                if r() % 16 == 0 {
                    let reg = (r() % 0x40) * 4;
                    h.w32(reg, r() as u32);
                }
                h.notify(q);
                h.dev.poll();
                completed += h.used(q).len();
                let status = h.r32(VIRTIO_MMIO_STATUS);
                if status & VIRTIO_CONFIG_S_NEEDS_RESET != 0 {
                    resets += 1;
                    assert!(h.r32(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG != 0);
                    break;
                }
                if status == 0 {
                    break; // a random write reset the device
                }
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "bounded time"
        );
        // Both outcomes were exercised.
        eprintln!("seed {seed}: {completed} completed, {resets} resets");
        assert!(
            completed > 0 && resets > 0,
            "{completed} completed, {resets} resets"
        );
    }
    run(&VirtioRng::default, 1, 1);
    run(
        &|| {
            VirtioBlk::new(
                Box::new(FlakyDisk {
                    data: vec![0; 32 * 1024],
                    fail_next_flush: false,
                }),
                false,
            )
        },
        1,
        2,
    );
    run(&|| VirtioConsole::new(Box::new(std::io::sink())), 2, 3);
    run(
        &|| VirtioNet::new([2, 0, 0, 0, 0, 1], Box::new(NullBackend)),
        2,
        4,
    );
}
