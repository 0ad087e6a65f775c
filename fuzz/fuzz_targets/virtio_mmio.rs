//! Virtio devices behind the MMIO transport (devices/src/virtio/) driven by an arbitrary driver:
//! register accesses, plus shortcuts that a fuzzer would rarely find alone — a full
//! initialisation (§3.1.1), descriptor chains posted on the available ring (§2.7.5–§2.7.6, with
//! loops, chains longer than the queue, indirect tables, huge lengths and addresses outside
//! RAM), notifications, host input, interrupt acks, resets, and raw patches of guest RAM (the
//! rings live in RAM the driver can scribble on at any time).
//!
//! Byte 0 picks the device (blk, net, console, rng). Checks: no panic and no hang whatever the
//! driver does (the device reports nonsense as DEVICE_NEEDS_RESET, §2.1.2); the interrupt line
//! is high exactly while InterruptStatus is non-zero (§4.2.2); every DMA write the device makes
//! lies inside RAM; a device that needs reset sets the config-change interrupt bit.
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::irq::{IrqLevels, IrqLine};
use emu_devices::virtio::mmio::*;
use emu_devices::virtio::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use emu_devices::virtio::{
    BlockBackend, GuestMemory, NetBackend, VirtioBlk, VirtioConsole, VirtioDevice, VirtioMmio,
    VirtioNet, VirtioRng, XorShiftEntropy, VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
};
use emu_devices::GuestRam;
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x1_0000;
/// Queue `q` keeps its rings at `RAM_BASE + q * QUEUE_AREA`: descriptors, then the available
/// ring at +0x1000, the used ring at +0x2000. Buffers go to BUFFERS.. (the end of RAM).
const QUEUE_AREA: u64 = 0x3000;
const BUFFERS: u64 = RAM_BASE + 0xc000;
const IRQ: u32 = 1;
/// Most frames the fuzz network backend holds.
const MAX_FRAMES: usize = 8;

/// A RAM disk.
struct MemDisk(Vec<u8>);

impl BlockBackend for MemDisk {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get(o..o.checked_add(buf.len())?))
            .ok_or_else(|| std::io::Error::other("read past the end of the disk"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let dst = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get_mut(o..o.checked_add(buf.len())?))
            .ok_or_else(|| std::io::Error::other("write past the end of the disk"))?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A network backend fed by the fuzz input.
#[derive(Clone, Default)]
struct FuzzNet(Arc<Mutex<VecDeque<Vec<u8>>>>);

impl NetBackend for FuzzNet {
    fn send(&mut self, frame: &[u8]) {
        assert!(
            frame.len() <= 65536,
            "transmitted frame of {} bytes",
            frame.len()
        );
    }
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let frame = self.0.lock().pop_front()?;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Some(n)
    }
}

struct Sink;
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn reg_write(dev: &mut dyn BusDevice, offset: u64, v: u32) {
    dev.write(offset, &v.to_le_bytes());
}

fn reg_read(dev: &mut dyn BusDevice, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.read(offset, &mut b);
    u32::from_le_bytes(b)
}

/// The driver side: what it has put on each queue so far.
struct Driver {
    ram: Arc<GuestRam>,
    num_queues: usize,
    queue_size: u16,
    /// Next free descriptor and the available index, per queue.
    next_desc: Vec<u16>,
    avail_idx: Vec<u16>,
}

impl Driver {
    fn queue_base(q: usize) -> u64 {
        RAM_BASE + q as u64 * QUEUE_AREA
    }

    /// §3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK.
    fn initialise(&mut self, dev: &mut dyn BusDevice, sel: u8) {
        reg_write(dev, VIRTIO_MMIO_STATUS, 0);
        reg_write(dev, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
        reg_write(
            dev,
            VIRTIO_MMIO_STATUS,
            VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
        );
        for half in 0..2 {
            reg_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, half);
            let offered = reg_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
            reg_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, half);
            // Accept everything offered, or (sel bit 3) a random subset.
            let mask = if sel & 8 != 0 { 0x5555_5555 } else { u32::MAX };
            let take = if half == 1 { offered } else { offered & mask };
            reg_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, take);
        }
        let s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
        reg_write(dev, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_FEATURES_OK);
        self.queue_size = 1 << (sel % 5);
        for q in 0..self.num_queues {
            let base = Self::queue_base(q);
            reg_write(dev, VIRTIO_MMIO_QUEUE_SEL, q as u32);
            reg_write(dev, VIRTIO_MMIO_QUEUE_NUM, u32::from(self.queue_size));
            for (lo, addr) in [
                (VIRTIO_MMIO_QUEUE_DESC_LOW, base),
                (VIRTIO_MMIO_QUEUE_DRIVER_LOW, base + 0x1000),
                (VIRTIO_MMIO_QUEUE_DEVICE_LOW, base + 0x2000),
            ] {
                reg_write(dev, lo, addr as u32);
                reg_write(dev, lo + 4, (addr >> 32) as u32);
            }
            reg_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
            // Fresh rings.
            let zeros = [0u8; 0x1000];
            for part in 0..3 {
                assert!(self.ram.write(base + part * 0x1000, &zeros));
            }
        }
        self.next_desc = vec![0; self.num_queues];
        self.avail_idx = vec![0; self.num_queues];
        reg_write(
            dev,
            VIRTIO_MMIO_STATUS,
            s | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
        );
    }

    /// Write a descriptor chain described by the input on queue `q` and make it available.
    fn post_chain(&mut self, input: &mut Input, q: usize) {
        let (Some(next_desc), Some(avail_idx)) = (self.next_desc.get(q), self.avail_idx.get(q))
        else {
            return;
        };
        let (mut next_desc, avail_idx) = (*next_desc, *avail_idx);
        let size = self.queue_size.max(1);
        let base = Self::queue_base(q);
        let count = input.u8();
        // Usually a chain that fits the queue; sometimes longer than it (the device must stop).
        let n = if count & 0x80 != 0 {
            u16::from(count & 0x7f) + 1
        } else {
            u16::from(count % 4) + 1
        };
        let head = next_desc % size;
        for i in 0..n {
            let idx = (head + i) % size;
            let ctl = input.u8();
            let addr = match ctl & 3 {
                0 | 1 => BUFFERS + u64::from(input.u16()) % 0x3f00,
                2 => RAM_BASE + u64::from(input.u16()),
                _ => input.u64(),
            };
            let len = match (ctl >> 2) & 3 {
                0 | 1 => u32::from(input.u8()) * 4 + 16,
                2 => u32::from(input.u16()),
                _ => input.u32(),
            };
            let mut flags = 0u16;
            if ctl & 0x10 != 0 {
                flags |= VIRTQ_DESC_F_WRITE;
            }
            if ctl & 0x20 != 0 && ctl & 0x40 != 0 {
                flags |= VIRTQ_DESC_F_INDIRECT;
            }
            let next = if ctl & 0x40 != 0 && ctl & 0x20 == 0 {
                // Anywhere, loops included.
                u16::from(input.u8())
            } else {
                (idx + 1) % size
            };
            if i + 1 < n || ctl & 0x80 != 0 {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            let mut desc = [0u8; 16];
            desc[0..8].copy_from_slice(&addr.to_le_bytes());
            desc[8..12].copy_from_slice(&len.to_le_bytes());
            desc[12..14].copy_from_slice(&flags.to_le_bytes());
            desc[14..16].copy_from_slice(&next.to_le_bytes());
            assert!(self.ram.write(base + 16 * u64::from(idx), &desc));
            // Readable buffers inside RAM start with input bytes (a blk request header, a
            // frame); writable ones are left for the device.
            if flags & VIRTQ_DESC_F_WRITE == 0 {
                let content = input.bytes(16);
                let _ = self.ram.write(addr, content);
            }
        }
        next_desc = next_desc.wrapping_add(n);
        // avail ring: flags u16, idx u16, ring[size] u16.
        let avail = base + 0x1000;
        let slot = avail + 4 + 2 * u64::from(avail_idx % size);
        assert!(self.ram.write(slot, &head.to_le_bytes()));
        let new_idx = avail_idx.wrapping_add(1);
        assert!(self.ram.write(avail + 2, &new_idx.to_le_bytes()));
        if let (Some(d), Some(a)) = (self.next_desc.get_mut(q), self.avail_idx.get_mut(q)) {
            *d = next_desc;
            *a = new_idx;
        }
    }
}

/// Drive `device` with the rest of the input; `feed` hands it host input (frames, keys).
fn run<D: VirtioDevice>(device: D, input: &mut Input, feed: impl Fn(&mut D, &[u8])) {
    let ram = Arc::new(GuestRam::new(RAM_BASE, RAM_SIZE).expect("64 KiB RAM"));
    let hook: emu_devices::virtio::DmaWriteHook = Arc::new(|addr, len| {
        assert!(
            addr >= RAM_BASE && len <= RAM_SIZE && addr - RAM_BASE <= RAM_SIZE - len,
            "DMA write {addr:#x}+{len:#x} outside RAM"
        );
    });
    let mem = GuestMemory::new(vec![ram.clone()], Some(hook));
    let levels = Arc::new(IrqLevels::new());
    let num_queues = device.num_queues();
    let mut mmio = VirtioMmio::new(device, mem, IrqLine::new(levels.clone(), IRQ));
    let mut driver = Driver {
        ram,
        num_queues,
        queue_size: 1,
        next_desc: vec![0; num_queues],
        avail_idx: vec![0; num_queues],
    };
    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        match next_mmio_op(input, VIRTIO_MMIO_SIZE) {
            MmioOp::Other(sel) => {
                let q = usize::from(sel >> 3) % num_queues.max(1);
                match sel & 7 {
                    0 => driver.initialise(&mut mmio, sel),
                    1 | 2 => driver.post_chain(input, q),
                    3 => reg_write(&mut mmio, VIRTIO_MMIO_QUEUE_NOTIFY, q as u32),
                    4 => {
                        let n = usize::from(input.u8() & 127);
                        feed(mmio.device_mut(), input.bytes(n));
                        mmio.poll();
                    }
                    5 => {
                        let offset = u64::from(input.u16());
                        let bytes = input.bytes(16);
                        let _ = driver.ram.write(RAM_BASE + offset, bytes);
                    }
                    6 => {
                        let st = reg_read(&mut mmio, VIRTIO_MMIO_INTERRUPT_STATUS);
                        reg_write(&mut mmio, VIRTIO_MMIO_INTERRUPT_ACK, st);
                    }
                    _ => reg_write(&mut mmio, VIRTIO_MMIO_STATUS, 0),
                }
            }
            op => {
                let _ = apply_mmio(&mut mmio, op);
            }
        }
        let isr = mmio.interrupt_status();
        assert_eq!(
            levels.level(IRQ),
            isr != 0,
            "interrupt line vs InterruptStatus {isr:#x}"
        );
        if mmio.status() & VIRTIO_CONFIG_S_NEEDS_RESET != 0 {
            // The config-change bit was set when the device broke; the driver may have acked
            // it since, so only check that the status bit survives until reset.
            assert_ne!(mmio.status(), 0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => {
            let disk = MemDisk(vec![0x5a; 64 * 1024]);
            let read_only = input.u8() & 1 != 0;
            let dev = VirtioBlk::new(Box::new(disk), read_only);
            run(dev, &mut input, |_, _| {});
        }
        1 => {
            let net = FuzzNet::default();
            let dev = VirtioNet::new([0x52, 0x54, 0, 0x12, 0x34, 0x56], Box::new(net.clone()));
            run(dev, &mut input, |_, frame| {
                let mut frames = net.0.lock();
                if frames.len() < MAX_FRAMES {
                    frames.push_back(frame.to_vec());
                }
            });
        }
        2 => {
            let mut dev = VirtioConsole::new(Box::new(Sink));
            let n = usize::from(input.u8());
            dev.push_input(input.bytes(n));
            run(dev, &mut input, |d, keys| d.push_input(keys));
        }
        _ => {
            let seed = input.u64();
            let dev = VirtioRng::new(Box::new(XorShiftEntropy::new(seed)));
            run(dev, &mut input, |_, _| {});
        }
    }
});
