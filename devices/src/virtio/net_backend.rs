//! Host sides of virtio-net: where the guest's Ethernet frames go. All are non-blocking and
//! polled by the device at slice boundaries; none is a device (they own sockets and files,
//! which devices may not).
//!
//! - [`StreamBackend`]: QEMU's `-netdev stream` / `-netdev socket` wire format over TCP or a
//!   UNIX socket — each frame preceded by its length as a 4-byte big-endian integer (QEMU
//!   `net/stream.c` and `net/socket.c`: `uint32_t len = htonl(size)` then the bytes; the
//!   receive side is `net_fill_rstate` in `net/net.c`), as server (listen) or client
//!   (connect), so two emu processes, or emu and QEMU, exchange frames.
//! - [`TapBackend`]: a Linux tap interface through `/dev/net/tun` (`TUNSETIFF`,
//!   `IFF_TAP | IFF_NO_PI`: one read or write is one frame).
//! - [`NullBackend`]: frames vanish, nothing arrives.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Largest frame carried either way (an Ethernet frame with a 64 KiB MTU); larger frames are
/// dropped and counted.
pub const MAX_FRAME: usize = 65536;
/// Outgoing bytes held while the peer does not read; frames beyond are dropped.
const TX_BUFFER_LIMIT: usize = 1 << 20;
/// Bytes read from a stream per read call.
const READ_CHUNK: usize = 64 * 1024;

/// A host network backend.
pub trait NetBackend: Send {
    /// Send one Ethernet frame (without virtio header). Never blocks; may drop.
    fn send(&mut self, frame: &[u8]);
    /// Receive one frame into `buf` (at least [`MAX_FRAME`] bytes), if one is ready.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Frames dropped so far (oversize, peer not reading, no peer).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Frames vanish; nothing arrives.
#[derive(Debug, Default)]
pub struct NullBackend;

impl NetBackend for NullBackend {
    fn send(&mut self, _frame: &[u8]) {}
    fn recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
}

/// A connected byte stream (TCP or UNIX), set non-blocking.
pub trait Connection: Read + Write + Send {}
impl Connection for TcpStream {}
impl Connection for UnixStream {}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> std::io::Result<Box<dyn Connection>> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(true)?;
                // Frames are small and latency matters more than segment count.
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(true)?;
                Box::new(s)
            }
        })
    }
}

/// QEMU's stream netdev wire format (see the module comment).
pub struct StreamBackend {
    listener: Option<Listener>,
    conn: Option<Box<dyn Connection>>,
    /// Received bytes not yet parsed into frames.
    rx: Vec<u8>,
    /// Bytes of an oversize incoming frame still to skip.
    discard: u64,
    tx: VecDeque<u8>,
    dropped: u64,
}

impl StreamBackend {
    fn with(listener: Option<Listener>, conn: Option<Box<dyn Connection>>) -> Self {
        StreamBackend {
            listener,
            conn,
            rx: Vec::new(),
            discard: 0,
            tx: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Over an already connected stream (tests use a `UnixStream::pair`).
    pub fn from_connection(conn: Box<dyn Connection>) -> Self {
        StreamBackend::with(None, Some(conn))
    }

    /// Client role over TCP (`-netdev stream,addr.type=inet,...` / `socket,connect=`).
    pub fn connect_tcp(addr: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
        Ok(StreamBackend::with(None, Some(Box::new(s))))
    }

    /// Client role over a UNIX socket.
    pub fn connect_unix(path: &Path) -> std::io::Result<Self> {
        let s = UnixStream::connect(path)?;
        s.set_nonblocking(true)?;
        Ok(StreamBackend::with(None, Some(Box::new(s))))
    }

    /// Server role over TCP (`server=on` / `socket,listen=`): the first peer to connect is
    /// accepted at a poll; until then frames are dropped.
    pub fn listen_tcp(addr: &str) -> std::io::Result<Self> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(StreamBackend::with(Some(Listener::Tcp(l)), None))
    }

    /// Server role over a UNIX socket.
    pub fn listen_unix(path: &Path) -> std::io::Result<Self> {
        let l = UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        Ok(StreamBackend::with(Some(Listener::Unix(l)), None))
    }

    /// The listening address (server role), e.g. after binding port 0.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.listener {
            Some(Listener::Tcp(l)) => l.local_addr().ok(),
            _ => None,
        }
    }

    /// Whether a peer is connected.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        if let Some(l) = &self.listener {
            match l.accept() {
                Ok(c) => {
                    log::info!("netdev stream: peer connected");
                    self.conn = Some(c);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => log::warn!("netdev stream: accept failed: {e}"),
            }
        }
    }

    fn disconnect(&mut self, why: &str) {
        log::warn!("netdev stream: peer gone ({why})");
        self.conn = None;
        self.rx.clear();
        self.tx.clear();
        self.discard = 0;
    }

    fn flush_tx(&mut self) {
        while !self.tx.is_empty() {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let (front, _) = self.tx.as_slices();
            match conn.write(front) {
                Ok(0) => return self.disconnect("write returned 0"),
                Ok(n) => {
                    self.tx.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.disconnect(&e.to_string()),
            }
        }
    }

    /// Read more bytes into `rx`; false if nothing more is available now.
    fn fill(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let mut chunk = [0u8; READ_CHUNK];
        match conn.read(&mut chunk) {
            Ok(0) => {
                self.disconnect("end of stream");
                false
            }
            Ok(n) => {
                self.rx
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) => {
                self.disconnect(&e.to_string());
                false
            }
        }
    }
}

impl NetBackend for StreamBackend {
    fn send(&mut self, frame: &[u8]) {
        self.ensure_connected();
        if self.conn.is_none()
            || frame.len() > MAX_FRAME
            || self.tx.len() + 4 + frame.len() > TX_BUFFER_LIMIT
        {
            self.dropped += 1;
            return;
        }
        self.tx.extend((frame.len() as u32).to_be_bytes());
        self.tx.extend(frame);
        self.flush_tx();
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.ensure_connected();
        self.flush_tx();
        loop {
            if self.discard > 0 {
                let n = self.discard.min(self.rx.len() as u64) as usize;
                self.rx.drain(..n);
                self.discard -= n as u64;
                if self.discard > 0 {
                    if !self.fill() {
                        return None;
                    }
                    continue;
                }
            }
            if let Some(hdr) = self.rx.get(..4) {
                let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                if len > MAX_FRAME || len > buf.len() {
                    self.dropped += 1;
                    self.rx.drain(..4);
                    self.discard = len as u64;
                    continue;
                }
                if let (Some(frame), Some(dst)) = (self.rx.get(4..4 + len), buf.get_mut(..len)) {
                    dst.copy_from_slice(frame);
                    self.rx.drain(..4 + len);
                    if len == 0 {
                        continue;
                    }
                    return Some(len);
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then `ifr_flags` in the union
/// (linux/if.h; the union is 24 bytes on 64-bit hosts).
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A Linux tap interface (`-netdev tap,ifname=NAME`). The interface must exist and be
/// accessible (or the process must have CAP_NET_ADMIN to create it).
pub struct TapBackend {
    file: File,
    dropped: u64,
}

impl TapBackend {
    pub fn open(ifname: &str) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        if ifname.len() >= libc::IFNAMSIZ || ifname.bytes().any(|b| b == 0) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("tap interface name '{ifname}' is too long or contains NUL"),
            ));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        for (d, s) in req.name.iter_mut().zip(ifname.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads (and writes back the name of) a `struct ifreq`, which
        // `IfReq` lays out with its full 40-byte size; the fd is a valid open tun device.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(TapBackend { file, dropped: 0 })
    }
}

impl NetBackend for TapBackend {
    fn send(&mut self, frame: &[u8]) {
        if frame.len() > MAX_FRAME || self.file.write(frame).is_err() {
            self.dropped += 1;
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self.file.read(buf) {
            Ok(n) if n > 0 => Some(n),
            Ok(_) => None,
            Err(e) => {
                if e.kind() != ErrorKind::WouldBlock {
                    log::warn!("tap: read failed: {e}");
                }
                None
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_cross_a_socketpair_in_qemu_format() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut peer = b;
        let mut be = StreamBackend::from_connection(Box::new(a));
        be.send(b"hello");
        let mut wire = [0u8; 9];
        peer.read_exact(&mut wire).unwrap();
        assert_eq!(&wire, b"\0\0\0\x05hello");
        // An oversize frame is skipped, then a good one arrives; split writes are joined.
        let big = (MAX_FRAME as u32 + 1).to_be_bytes();
        peer.write_all(&big).unwrap();
        peer.write_all(&vec![7u8; MAX_FRAME + 1]).unwrap();
        peer.write_all(b"\0\0\0\x03a").unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let mut got = None;
        for _ in 0..100 {
            if let Some(n) = be.recv(&mut buf) {
                got = Some(n);
                break;
            }
            peer.write_all(b"bc").unwrap();
        }
        assert_eq!(got, Some(3));
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(be.dropped(), 1);
        drop(peer);
        assert_eq!(be.recv(&mut buf), None);
        assert!(!be.is_connected());
    }
}
