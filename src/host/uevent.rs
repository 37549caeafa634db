//! Waking up when the kernel or udev announces a device (NETLINK_KOBJECT_UEVENT), so that
//! device discovery reacts to the attach instead of sleeping in a fixed loop.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Multicast group of the kernel's own uevents.
const KERNEL_GROUP: u32 = 1;
/// Multicast group udev re-broadcasts on once it has processed an event (links exist then).
const UDEV_GROUP: u32 = 2;

/// A subscription to device events.
#[derive(Debug)]
pub struct Uevents {
    fd: AsyncFd<OwnedFd>,
}

impl Uevents {
    /// Subscribes to kernel and udev device events; fails where netlink is not allowed (then
    /// callers fall back to polling).
    pub fn subscribe() -> std::io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP | UDEV_GROUP))?;
        // SAFETY: the OwnedFd is open, owned by the AsyncFd from here on and never replaced, so
        // its raw descriptor stays valid and the same for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { fd })
    }

    /// Waits at most `limit` for the next batch of events; returns how many arrived (0 when
    /// the limit passed first).
    pub async fn next_batch(&self, limit: Duration) -> usize {
        let Ok(guard) = tokio::time::timeout(limit, self.fd.readable()).await else {
            return 0;
        };
        let Ok(mut guard) = guard else { return 0 };
        let mut buffer = vec![0u8; 16 * 1024];
        let mut count = 0;
        // Drain everything queued: one rescan answers them all.
        while let Ok(n) = recv(self.fd.get_ref().as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT) {
            if n == 0 {
                break;
            }
            count += 1;
        }
        guard.clear_ready();
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_device_event_wakes_the_subscriber() {
        if !crate::host::testing::root_or_skip("a_device_event_wakes_the_subscriber") {
            return;
        }
        let events = Uevents::subscribe().expect("root may subscribe to uevents");
        // Asking the kernel to re-announce a device is the cheapest harmless event.
        std::fs::write("/sys/class/mem/null/uevent", "change").unwrap();
        assert!(events.next_batch(Duration::from_secs(30)).await > 0);
    }
}
