//! The tap backend against a real Linux tap interface. Needs /dev/net/tun and CAP_NET_ADMIN;
//! where either is missing the test says why on stderr and passes without checking anything.

use emu_devices::virtio::net_backend::{NetBackend, TapBackend, MAX_FRAME};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> Result<(), String> {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn tap_carries_frames_both_ways() {
    let name = format!("emutap{}", std::process::id() % 100_000);
    let mut tap = match TapBackend::open(&name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED tap_carries_frames_both_ways: /dev/net/tun not usable: {e}");
            return;
        }
    };
    if let Err(e) = ip(&["addr", "add", "10.213.7.1/24", "dev", &name])
        .and_then(|()| ip(&["link", "set", &name, "up"]))
    {
        eprintln!("SKIPPED tap_carries_frames_both_ways: cannot configure {name}: {e}");
        return;
    }
    // The host kernel resolves 10.213.7.2 with an ARP request out of the tap: the guest's side.
    let udp = UdpSocket::bind("10.213.7.1:0").unwrap();
    udp.send_to(b"x", "10.213.7.2:9").unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut arp = None;
    while Instant::now() < deadline && arp.is_none() {
        match tap.recv(&mut buf) {
            // Ethernet type 0x0806, ARP opcode 1 (request), target IP 10.213.7.2.
            Some(n)
                if n >= 42
                    && buf[12..14] == [8, 6]
                    && buf[21] == 1
                    && buf[38..42] == [10, 213, 7, 2] =>
            {
                arp = Some(buf[..n].to_vec())
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let req = arp.expect("an ARP request from the host on the tap");
    // Answer it: 10.213.7.2 is at 52:54:00:12:34:56.
    let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mut reply = Vec::new();
    reply.extend_from_slice(&req[6..12]);
    reply.extend_from_slice(&mac);
    reply.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&mac);
    reply.extend_from_slice(&[10, 213, 7, 2]);
    reply.extend_from_slice(&req[22..28]);
    reply.extend_from_slice(&req[28..32]);
    tap.send(&reply);
    assert_eq!(tap.dropped(), 0);
    // The host learned the neighbour from our frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("ip")
            .args(["neigh", "show", "10.213.7.2", "dev", &name])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("52:54:00:12:34:56") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host never learned the MAC from the tap frame"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
