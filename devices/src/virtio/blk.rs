//! virtio-blk (VIRTIO 1.2 §5.2): one request queue; each request is
//!
//! ```text
//! struct virtio_blk_req { le32 type; le32 reserved; le64 sector;   // device-readable
//!                         u8 data[];                                // readable (OUT) or writable (IN, GET_ID)
//!                         u8 status; }                              // device-writable, last byte
//! ```
//!
//! Offered: VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, and
//! VIRTIO_BLK_F_RO for a read-only image. Types IN, OUT, FLUSH and GET_ID are implemented;
//! others are answered VIRTIO_BLK_S_UNSUPP. A FLUSH completes OK only after the backend's flush
//! (`File::sync_all`) succeeded; once a flush failed, every later flush fails too (the data
//! written before it may be lost, and saying OK later would hide that).
//!
//! The image is a raw file behind [`BlockBackend`]; [`FileBackend`] opens it with an advisory
//! lock (`flock`: exclusive for read-write, shared for read-only), so a second emu opening the
//! same image is refused.

use super::mmio::read_config_bytes;
use super::queue::sub_ranges;
use super::{Completion, DescChain, GuestMemory, Queue, QueueError, VirtioDevice, VIRTIO_ID_BLOCK};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Feature bits (§5.2.3).
pub const VIRTIO_BLK_F_SIZE_MAX: u64 = 1 << 1;
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Request types (§5.2.6).
pub const VIRTIO_BLK_T_IN: u32 = 0;
pub const VIRTIO_BLK_T_OUT: u32 = 1;
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Request status (§5.2.6).
pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// Sector size of the request interface, whatever blk_size says (§5.2.6).
pub const SECTOR_SIZE: u64 = 512;
/// Length of the GET_ID string (§5.2.6: 20 bytes, NUL-padded).
pub const VIRTIO_BLK_ID_BYTES: usize = 20;
/// Queue size, and so the longest chain.
pub const BLK_QUEUE_SIZE: u16 = 256;
/// seg_max: data segments per request (QEMU: queue size - 2, header and status excluded).
pub const BLK_SEG_MAX: u32 = BLK_QUEUE_SIZE as u32 - 2;
/// Largest data transfer of one request; a larger one is answered IOERR.
pub const BLK_MAX_REQUEST: u64 = 32 << 20;
/// Bytes copied per step between the image and guest memory.
const CHUNK: usize = 64 * 1024;
/// Header length: type, reserved, sector.
const HEADER_LEN: u64 = 16;

/// Errors opening a disk image.
#[derive(Debug, Error)]
pub enum BlockError {
    /// the image could not be opened
    #[error("could not open disk image '{path}': {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// another process holds the image's lock
    #[error("disk image '{path}' is already in use by another process (it is locked); use a copy, or readonly=on in both")]
    Locked { path: PathBuf },
}

/// The host side of a disk: a byte-addressed image.
pub trait BlockBackend: Send {
    /// Image size in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// Make written data durable (`fsync`).
    fn flush(&mut self) -> std::io::Result<()>;
}

/// A raw image file, locked against other users while open.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
    len: u64,
}

impl FileBackend {
    /// Open `path` read-only (shared lock) or read-write (exclusive lock).
    pub fn open(path: &Path, read_only: bool) -> Result<Self, BlockError> {
        let open_err = |source| BlockError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(open_err)?;
        let locked = if read_only {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(BlockError::Locked {
                    path: path.to_owned(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let len = file.metadata().map_err(open_err)?.len();
        Ok(FileBackend { file, len })
    }
}

impl BlockBackend for FileBackend {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// The block device.
pub struct VirtioBlk {
    backend: Box<dyn BlockBackend>,
    read_only: bool,
    /// GET_ID answer (serial), NUL-padded.
    id: [u8; VIRTIO_BLK_ID_BYTES],
    /// A flush failed: the image may have lost writes.
    flush_failed: bool,
}

impl VirtioBlk {
    pub fn new(backend: Box<dyn BlockBackend>, read_only: bool) -> Self {
        VirtioBlk {
            backend,
            read_only,
            id: [0; VIRTIO_BLK_ID_BYTES],
            flush_failed: false,
        }
    }

    /// Set the serial returned by GET_ID (truncated to 20 bytes).
    pub fn set_serial(&mut self, serial: &str) {
        self.id = [0; VIRTIO_BLK_ID_BYTES];
        for (d, s) in self.id.iter_mut().zip(serial.bytes()) {
            *d = s;
        }
    }

    /// Capacity in 512-byte sectors (a partial last sector is not exposed).
    pub fn capacity(&self) -> u64 {
        self.backend.len() / SECTOR_SIZE
    }

    /// The byte range `[sector*512, +len)` if it lies inside the image.
    fn image_range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(len)?;
        (end <= self.capacity() * SECTOR_SIZE).then_some(start)
    }

    /// Copy image bytes into the guest ranges; the number of bytes written into the guest.
    fn do_in(&mut self, mem: &GuestMemory, ranges: &[(u64, u64)], mut pos: u64) -> Result<u64, u8> {
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0;
        for &(addr, len) in ranges {
            let mut off = 0;
            while off < len {
                let n = (len - off).min(CHUNK as u64) as usize;
                let chunk = buf.get_mut(..n).ok_or(VIRTIO_BLK_S_IOERR)?;
                self.backend
                    .read_at(chunk, pos)
                    .map_err(|_| VIRTIO_BLK_S_IOERR)?;
                if !mem.write(addr + off, chunk) {
                    return Err(VIRTIO_BLK_S_IOERR);
                }
                off += n as u64;
                pos += n as u64;
                done += n as u64;
            }
        }
        Ok(done)
    }

    /// Copy guest ranges into the image.
    fn do_out(&mut self, mem: &GuestMemory, ranges: &[(u64, u64)], mut pos: u64) -> Result<(), u8> {
        let mut buf = vec![0u8; CHUNK];
        for &(addr, len) in ranges {
            let mut off = 0;
            while off < len {
                let n = (len - off).min(CHUNK as u64) as usize;
                let chunk = buf.get_mut(..n).ok_or(VIRTIO_BLK_S_IOERR)?;
                if !mem.read(addr + off, chunk) {
                    return Err(VIRTIO_BLK_S_IOERR);
                }
                self.backend
                    .write_at(chunk, pos)
                    .map_err(|_| VIRTIO_BLK_S_IOERR)?;
                off += n as u64;
                pos += n as u64;
            }
        }
        Ok(())
    }

    /// Execute one request; returns (status, bytes written into the data part).
    fn execute(&mut self, chain: &DescChain, mem: &GuestMemory) -> Result<(u8, u64), QueueError> {
        let mut header = [0u8; HEADER_LEN as usize];
        if !chain.read_at(mem, 0, &mut header) {
            return Err(QueueError::Malformed(
                "virtio-blk request header shorter than 16 bytes",
            ));
        }
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = header;
        let ty = u32::from_le_bytes([t0, t1, t2, t3]);
        let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        // The status byte is the last writable byte; data sits between header and status.
        let wlen = chain.writable_len();
        let in_len = wlen - 1;
        let out_len = chain.readable_len() - HEADER_LEN;
        let status = match ty {
            VIRTIO_BLK_T_IN => {
                if in_len > BLK_MAX_REQUEST || !in_len.is_multiple_of(SECTOR_SIZE) {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let Some(pos) = self.image_range(sector, in_len) else {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let ranges = sub_ranges(&chain.writable, 0, in_len).unwrap_or_default();
                return Ok(match self.do_in(mem, &ranges, pos) {
                    Ok(n) => (VIRTIO_BLK_S_OK, n),
                    Err(s) => (s, 0),
                });
            }
            VIRTIO_BLK_T_OUT => {
                if self.read_only
                    || out_len > BLK_MAX_REQUEST
                    || !out_len.is_multiple_of(SECTOR_SIZE)
                {
                    VIRTIO_BLK_S_IOERR
                } else if let Some(pos) = self.image_range(sector, out_len) {
                    let ranges =
                        sub_ranges(&chain.readable, HEADER_LEN, out_len).unwrap_or_default();
                    match self.do_out(mem, &ranges, pos) {
                        Ok(()) => VIRTIO_BLK_S_OK,
                        Err(s) => s,
                    }
                } else {
                    VIRTIO_BLK_S_IOERR
                }
            }
            VIRTIO_BLK_T_FLUSH => {
                if !self.flush_failed && !self.read_only {
                    if let Err(e) = self.backend.flush() {
                        log::error!("virtio-blk: flush failed: {e}; later flushes will fail too");
                        self.flush_failed = true;
                    }
                }
                if self.flush_failed {
                    VIRTIO_BLK_S_IOERR
                } else {
                    VIRTIO_BLK_S_OK
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                let n = in_len.min(VIRTIO_BLK_ID_BYTES as u64) as usize;
                let id = self.id.get(..n).unwrap_or_default();
                if !chain.write_at(mem, 0, id) {
                    return Err(QueueError::Malformed("virtio-blk GET_ID buffer"));
                }
                return Ok((VIRTIO_BLK_S_OK, n as u64));
            }
            _ => VIRTIO_BLK_S_UNSUPP,
        };
        Ok((status, 0))
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn device_features(&self) -> u64 {
        let ro = if self.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | ro
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn queue_max_size(&self) -> u16 {
        BLK_QUEUE_SIZE
    }

    /// §5.2.4: capacity u64 @0, size_max u32 @8, seg_max u32 @12, geometry @16,
    /// blk_size u32 @20.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut cfg = [0u8; 24];
        cfg[0..8].copy_from_slice(&self.capacity().to_le_bytes());
        cfg[12..16].copy_from_slice(&BLK_SEG_MAX.to_le_bytes());
        cfg[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        read_config_bytes(&cfg, offset, data);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemory,
    ) -> Result<Completion, QueueError> {
        let Some(q) = queues.get_mut(index) else {
            return Ok(Completion::default());
        };
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            // §5.2.6.1: header readable, status writable; anything else is a driver bug.
            if chain.readable_len() < HEADER_LEN || chain.writable_len() == 0 {
                return Err(QueueError::Malformed(
                    "virtio-blk request without header or status byte",
                ));
            }
            let (status, data_len) = self.execute(&chain, mem)?;
            let wlen = chain.writable_len();
            if !chain.write_at(mem, wlen - 1, &[status]) {
                return Err(QueueError::Malformed("virtio-blk status byte"));
            }
            q.add_used(mem, chain.head, (data_len + 1) as u32)?;
            used = true;
        }
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }
}
