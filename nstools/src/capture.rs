//! Recording a network namespace's traffic in process: what `ns-exec --capture FILE` does while
//! its command runs. Not a capture program: tcpdump and dumpcap need 15-30 ms from exec to
//! capturing (a whole testenv setup takes a few ms), both drop what their ring buffer still
//! holds when SIGTERM ends them (libpcap's TPACKET_V3 blocks: the last ~250 ms), and tcpdump,
//! as root, always changes its user and groups, which a user namespace like Samba's selftest
//! one refuses (setgroups is denied there).
//!
//! One `AF_PACKET` socket for every protocol (`ETH_P_ALL`), opened in the namespace: it sees
//! every interface there, loopback included, and those created later; or one interface, in
//! promiscuous mode (a bridge then shows what it forwards between its ports). An optional
//! filter in tcpdump's syntax, compiled by libpcap (`tcpdump -ddd`), runs in the kernel.
//! Packets go to a pcapng file (the `pcap-file` crate) that tcpdump, tshark and Wireshark read:
//! one Interface Description Block per interface (its name; nanosecond timestamps): at the
//! start for those there, with its first packet for one made later, one Enhanced Packet Block per
//! packet with the kernel's receive timestamp (`SO_TIMESTAMPNS`), the whole packet (up to
//! [`SNAPLEN`] bytes: a veth with segmentation offload delivers up to 64 KiB at once) and its
//! direction.
//!
//! Loopback packets reach such a socket twice, outgoing and incoming; only the incoming copy is
//! kept, as libpcap does. Every interface is recorded as Ethernet: a file holds one link type
//! (libpcap, and so tcpdump, refuses one with interfaces of different types), and the packets of
//! an interface without an Ethernet header (tun, ipip, wireguard) are given one of zeros that
//! carries their protocol. Each interface recorded from the start is described at once, so that
//! a capture that saw no packet is still a file every reader opens.
//!
//! After a small read the capture rests (its socket is not polled) for up to 50 ms, less
//! than the receive buffer takes to fill, so that what arrives meanwhile is read in one batch:
//! on a bridge every namespace sees every broadcast of the others, and one wakeup per packet
//! made N captures cost O(N²) wakeups. No rest after a full batch or a loss.
//!
//! The file is flushed after every batch read, so a capture killed with SIGKILL loses at most
//! what the kernel still held; [`Capture::finish`] reads what is left, then flushes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockType, getsockopt, recvmsg, setsockopt,
    socket, sockopt,
};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

use crate::error::{Error, Result};
use crate::exec::Alongside;
use crate::ifname::quote;
use crate::sys::{self, BpfInstruction};

/// The most bytes of one packet that are recorded (tcpdump's default; Wireshark's limit for
/// Ethernet). Longer packets (BIG TCP) are cut there, their original length kept.
pub const SNAPLEN: usize = 262_144;

/// At most this many packets per read before the file is flushed and signals are looked at.
const BATCH: usize = 256;

/// What the socket asks the kernel to buffer while the capture is busy writing or rests (the
/// kernel doubles it; what waits is held only while it waits).
const RECEIVE_BUFFER: usize = 32 << 20;

/// The longest rest between two reads ([`Alongside::rest`]): what arrives meanwhile is read in
/// one batch. A namespace on a bridge sees every broadcast of the others (ARP, neighbour
/// discovery, multicast), so N captures woken once per packet cost O(N²) wakeups.
const MAX_REST: Duration = Duration::from_millis(50);

/// The rate at which a rest is assumed to fill the receive buffer (its truesize bytes, not the
/// packets' length): a rest is never longer than the granted buffer takes to fill at this rate.
/// `ping -f` on loopback (four packets of about 1 KB of truesize per echo) fills it faster than
/// 1 GB/s on a 2-core VM: 8 MiB rests of 8 ms lost packets there. 4 GB/s leaves a margin.
const FILL_RATE: u64 = 4 << 30;

/// The least of the receive buffer one packet takes (its `sk_buff`, shared info and data).
const MIN_TRUESIZE: u64 = 512;

/// `ETH_P_ALL`-socket packet types (`sll_pkttype`), as `<linux/if_packet.h>`.
const PACKET_HOST: u8 = 0;
const PACKET_BROADCAST: u8 = 1;
const PACKET_MULTICAST: u8 = 2;
const PACKET_OTHERHOST: u8 = 3;
const PACKET_OUTGOING: u8 = 4;

/// The length of an Ethernet header (what a packet of an interface without one is given).
const ETHERNET_HEADER: usize = 14;

/// ARP hardware types (`sll_hatype`) recorded with their Ethernet header.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

/// The file a capture writes, opened before anything is entered: its path means what it means
/// to the caller (a mount namespace entered later does not change it), with the caller's
/// credentials. A file that is there already is overwritten only once the capture starts.
#[derive(Debug)]
pub struct CaptureFile {
    file: File,
    shown: String,
    made: Made,
}

/// The file a capture made: its folder and name, to remove it when dropped before the capture
/// was finished - it could not start, or the command never ran (by folder descriptor: the path
/// may mean something else by then). Empty for a file that was there already.
#[derive(Debug)]
struct Made(Option<(File, std::ffi::OsString)>);

impl Made {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some((folder, name)) = &self.0 {
            let _ = nix::unistd::unlinkat(folder, name.as_os_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
}

impl CaptureFile {
    /// Open (or create) `path` for writing. Errors read `cannot capture to 'PATH': why`.
    pub fn create(path: &Path) -> Result<CaptureFile> {
        let shown = quote(&path.to_string_lossy());
        let fail = |e: &std::io::Error| Error::io(format!("cannot capture to {shown}"), e);
        // rw-r--r-- as tcpdump makes them, whatever the umask (selftest's is 0).
        let (file, made) = match OpenOptions::new().write(true).create_new(true).mode(0o644).open(path) {
            Ok(file) => {
                let folder = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let made = File::open(folder).ok().zip(path.file_name().map(ToOwned::to_owned));
                (file, made)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                (OpenOptions::new().write(true).open(path).map_err(|e| fail(&e))?, None)
            }
            Err(e) => return Err(fail(&e)),
        };
        Ok(CaptureFile { file, shown, made: Made(made) })
    }
}

/// A packet filter in tcpdump's syntax (`tcp port 445`, `icmp or icmp6`), compiled for
/// Ethernet framing by libpcap: `tcpdump -ddd` prints the program (without capturing, so
/// without privileges). Packets of interfaces without an Ethernet header do not have that
/// framing in the kernel.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<BpfInstruction>,
}

impl Filter {
    /// Compile `expression` (tcpdump must be installed).
    pub fn compile(expression: &str) -> Result<Filter> {
        let what = || format!("cannot compile the capture filter {}", quote(expression));
        let out = std::process::Command::new("tcpdump")
            .args(["-ddd", "-y", "EN10MB", "--", expression])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::usage(what()).detail("tcpdump, which compiles filters, is not installed"),
                _ => Error::io(what(), &e),
            })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let why = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("tcpdump failed");
            return Err(Error::usage(what()).detail(why.trim_start_matches("tcpdump: ").to_owned()));
        }
        Filter::parse(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| Error::new(what()).detail("tcpdump -ddd printed something other than a BPF program"))
    }

    /// `tcpdump -ddd`'s output: the instruction count, then `code jt jf k` per line.
    fn parse(text: &str) -> Option<Filter> {
        let mut lines = text.lines();
        let count: usize = lines.next()?.trim().parse().ok()?;
        let program = lines
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f[..] {
                    [code, jt, jf, k] => Some(BpfInstruction {
                        code: code.parse().ok()?,
                        jt: jt.parse().ok()?,
                        jf: jf.parse().ok()?,
                        k: k.parse().ok()?,
                    }),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        (program.len() == count && count > 0).then_some(Filter { program })
    }
}

/// What to record, besides everything.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this interface (in promiscuous mode), not every one.
    pub interface: Option<String>,
    /// Only the packets this filter accepts.
    pub filter: Option<Filter>,
}

/// A running capture of the calling thread's network namespace (see the module documentation).
#[derive(Debug)]
pub struct Capture {
    socket: Option<OwnedFd>,
    out: Writer,
    shown: String,
    made: Made,
    /// Interface index → (pcapng interface number, recorded with an Ethernet header of zeros).
    interfaces: HashMap<i32, (u32, bool)>,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    /// Packets written.
    packets: u64,
    /// The receive buffer granted, in bytes (what the kernel counts, the doubled request).
    buffer: u64,
    /// Whether the last read was small and lost nothing: the capture may rest.
    may_rest: bool,
    /// Packets the kernel dropped so far (reading its count resets it).
    drops: u64,
}

/// The pcapng writer (a newtype: `PcapNgWriter` has no `Debug`).
struct Writer(PcapNgWriter<BufWriter<File>>);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcapNgWriter")
    }
}

impl Capture {
    /// Start recording every interface of the calling thread's network namespace into `file`
    /// (overwriting what it held). Needs CAP_NET_RAW over the namespace. On failure the file is
    /// removed if it was made for this capture, and left untouched otherwise - as when the
    /// capture is dropped without [`Capture::finish`] (the command never ran).
    pub fn start(file: CaptureFile, options: &Options) -> Result<Capture> {
        let (socket, ifindex) = Capture::open(&file, options)?;
        Capture::begin(file, socket, ifindex)
    }

    /// The socket, and the index of the one interface it records (0: every interface).
    fn open(file: &CaptureFile, options: &Options) -> Result<(OwnedFd, i32)> {
        let fail = |what: &str, e: Errno| {
            Error::sys(format!("cannot capture to {}", file.shown), e).detail(format!("{what}: {}", e.desc()))
        };
        // No protocol yet: nothing arrives before the filter is in place and the socket bound.
        let socket =
            socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
                .map_err(|e| {
                    let err = fail("cannot open a packet socket", e);
                    if e == Errno::EPERM {
                        err.hint(
                            "needs CAP_NET_RAW over the network namespace: run as root, or as the user that created it",
                        )
                    } else {
                        err
                    }
                })?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(|e| fail("cannot ask for timestamps", e))?;
        // More than the default, to ride out bursts while the file is written; beyond the
        // system's limit (net.core.rmem_max) only with CAP_NET_ADMIN. What is granted is fine.
        if setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER);
        }
        if let Some(filter) = &options.filter {
            sys::attach_filter(&socket, &filter.program).map_err(|e| fail("cannot attach the filter", e))?;
        }
        let ifindex = match &options.interface {
            Some(name) => {
                let index = rustix::net::netdevice::name_to_index(&socket, name).map_err(|e| {
                    let e = Errno::from_raw(e.raw_os_error());
                    fail(&format!("no interface {} here", quote(name)), e)
                })?;
                let index = index as i32;
                sys::packet_promiscuous(&socket, index).map_err(|e| fail("cannot set promiscuous mode", e))?;
                index
            }
            None => 0,
        };
        sys::packet_bind(&socket, libc::ETH_P_ALL as u16, ifindex)
            .map_err(|e| fail("cannot bind the packet socket", e))?;
        Ok((socket, ifindex))
    }

    fn begin(file: CaptureFile, socket: OwnedFd, ifindex: i32) -> Result<Capture> {
        let CaptureFile { file, shown, made } = file;
        let fail = |e: &std::io::Error| Error::io(format!("cannot capture to {shown}"), e);
        let is_file = file.metadata().map_err(|e| fail(&e))?.is_file();
        if made.0.is_none() && is_file {
            file.set_len(0).map_err(|e| fail(&e))?;
        }
        let section = SectionHeaderBlock {
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "ns-exec --capture (nstools {})",
                env!("CARGO_PKG_VERSION")
            )))],
            ..Default::default()
        };
        // The buffer granted: RcvBufForce needs CAP_NET_ADMIN over the initial namespace,
        // RcvBuf is capped at net.core.rmem_max.
        let buffer = getsockopt(&socket, sockopt::RcvBuf).unwrap_or(0) as u64;
        let writer = BufWriter::with_capacity(64 << 10, file);
        let out = PcapNgWriter::with_section_header(writer, section).map_err(|e| pcap_error(&shown, e))?;
        let mut capture = Capture {
            socket: Some(socket),
            out: Writer(out),
            shown,
            made,
            interfaces: HashMap::new(),
            buf: vec![0; SNAPLEN],
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
            packets: 0,
            buffer,
            may_rest: false,
            drops: 0,
        };
        // Every interface recorded from the start is described at once: a file without any
        // description (nothing came) is one that tcpdump refuses to read.
        for (index, name, hatype) in
            interfaces_here().map_err(|e| e.context(format!("cannot capture to {}", capture.shown)))?
        {
            if ifindex == 0 || index == ifindex {
                capture.describe(index, name, hatype)?;
            }
        }
        capture.out.0.get_mut().flush().map_err(|e| Error::io(format!("cannot capture to {}", capture.shown), &e))?;
        Ok(capture)
    }

    /// Read what the socket holds (at most `limit` packets), write it, flush. Returns the
    /// packets read (those skipped included).
    fn read(&mut self, limit: usize) -> Result<usize> {
        let Some(socket) = self.socket.as_ref().map(|s| s.as_raw_fd()) else { return Ok(0) };
        let mut read = 0;
        for _ in 0..limit {
            let (len, from, stamp) = {
                let mut iov = [IoSliceMut::new(&mut self.buf)];
                let msg = match recvmsg::<LinkAddr>(
                    socket,
                    &mut iov,
                    Some(&mut self.cmsg),
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
                ) {
                    Ok(msg) => msg,
                    Err(Errno::EAGAIN | Errno::EINTR) => break,
                    Err(e) => return Err(Error::sys(format!("capture to {}", self.shown), e)),
                };
                let stamp = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|m| match m {
                        ControlMessageOwned::ScmTimestampns(ts) => {
                            Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
                        }
                        _ => None,
                    })
                });
                (msg.bytes, msg.address, stamp)
            };
            read += 1;
            let Some(from) = from else { continue };
            if from.pkttype() == PACKET_OUTGOING && from.hatype() == ARPHRD_LOOPBACK {
                continue; // its incoming copy follows
            }
            let stamp =
                stamp.unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
            self.write_packet(&from, len, stamp)?;
        }
        self.out.0.get_mut().flush().map_err(|e| Error::io(format!("capture to {}", self.shown), &e))?;
        Ok(read)
    }

    /// Add what the kernel dropped since it was last asked; true if it dropped any.
    fn count_drops(&mut self) -> bool {
        let dropped = self.socket.as_ref().and_then(|s| sys::packet_drops(s).ok()).unwrap_or(0);
        self.drops += u64::from(dropped);
        dropped > 0
    }

    fn write_packet(&mut self, from: &LinkAddr, len: usize, timestamp: Duration) -> Result<()> {
        let index = from.ifindex() as i32;
        let (interface_id, headerless) = match self.interfaces.get(&index) {
            Some(&known) => known,
            None => {
                let name = self
                    .socket
                    .as_ref()
                    .and_then(|s| rustix::net::netdevice::index_to_name(s, index as u32).ok())
                    .unwrap_or_else(|| format!("ifindex {index}"));
                self.describe(index, name, from.hatype())?
            }
        };
        let extra = if headerless { ETHERNET_HEADER } else { 0 };
        let captured = &self.buf[..len.min(SNAPLEN - extra)];
        let data: Cow<'_, [u8]> = if headerless {
            // An Ethernet header of zeros (the sender's address where it has one of six
            // bytes) carrying the packet's protocol (already in network order).
            let mut d = Vec::with_capacity(ETHERNET_HEADER + captured.len());
            d.extend_from_slice(&[0; 6]);
            match from.addr() {
                Some(mac) if from.halen() == 6 => d.extend_from_slice(&mac),
                _ => d.extend_from_slice(&[0; 6]),
            }
            d.extend_from_slice(&from.protocol().to_ne_bytes());
            d.extend_from_slice(captured);
            Cow::Owned(d)
        } else {
            Cow::Borrowed(captured)
        };
        let block = EnhancedPacketBlock {
            interface_id,
            timestamp,
            original_len: u32::try_from(len + extra).unwrap_or(u32::MAX),
            data,
            options: vec![EnhancedPacketOption::Flags(packet_flags(from.pkttype()))],
        };
        self.out.0.write_pcapng_block(block).map_err(|e| pcap_error(&self.shown, e))?;
        self.packets += 1;
        Ok(())
    }

    /// Write the Interface Description Block of interface `index` (at the start, or with its
    /// first packet: one made later).
    fn describe(&mut self, index: i32, name: String, hatype: u16) -> Result<(u32, bool)> {
        let headerless = !matches!(hatype, ARPHRD_ETHER | ARPHRD_LOOPBACK);
        // One snapshot length for all, as libpcap requires.
        let mut block = InterfaceDescriptionBlock::new(DataLink::ETHERNET, SNAPLEN as u32);
        block.options =
            vec![InterfaceDescriptionOption::IfName(Cow::Owned(name)), InterfaceDescriptionOption::IfTsResol(9)];
        self.out.0.write_pcapng_block(block).map_err(|e| pcap_error(&self.shown, e))?;
        let known = (self.interfaces.len() as u32, headerless);
        self.interfaces.insert(index, known);
        Ok(known)
    }

    /// Record while the processes `pids` end (the leftovers of a namespace that was told to
    /// end: they may still send packets), until they are gone or `limit` passes.
    pub fn record_until_gone(&mut self, pids: &[i32], limit: Duration) {
        let pidfds: Vec<OwnedFd> = pids.iter().filter_map(|&pid| sys::pidfd_open(pid).ok()).collect();
        let mut left: Vec<&OwnedFd> = pidfds.iter().collect();
        let end = Instant::now() + limit;
        while !left.is_empty() && self.socket.is_some() {
            let wait = end.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            let ms = PollTimeout::try_from(wait.as_millis().min(10_000) as i32).unwrap_or(PollTimeout::ZERO);
            let readable = {
                let Some(socket) = self.socket.as_ref() else { break };
                let mut fds = vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
                fds.extend(left.iter().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
                if poll(&mut fds, ms).is_err() {
                    continue;
                }
                let gone: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
                drop(fds);
                let mut gone = gone.into_iter();
                let readable = gone.next().unwrap_or(false);
                left.retain(|_| !gone.next().unwrap_or(false));
                readable
            };
            if readable {
                self.ready();
            }
        }
    }

    /// Read what the kernel still holds, flush and close. Returns the packets written, or the
    /// error that stopped the capture.
    pub fn finish(mut self) -> Result<u64> {
        self.made.keep();
        // Everything queued when the command ended (at most what the buffer holds: each packet
        // takes at least MIN_TRUESIZE of it), not what arrives forever after.
        let mut left = (self.buffer / MIN_TRUESIZE).max(64 * BATCH as u64);
        while self.socket.is_some() && left > 0 {
            let read = self.read(BATCH)?;
            if read == 0 {
                break;
            }
            left = left.saturating_sub(read as u64);
        }
        self.count_drops();
        self.socket = None;
        if self.drops > 0 {
            eprintln!("ns-exec: {}", dropped_message(&crate::cli::printable(&self.shown), self.drops, self.buffer));
        }
        let Writer(out) = self.out;
        out.into_inner().into_inner().map_err(|e| Error::io(format!("capture to {}", self.shown), e.error()))?;
        Ok(self.packets)
    }
}

impl Alongside for Capture {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(|s| s.as_fd())
    }

    /// A batch of packets; on failure (a full disk) the capture stops with one line on
    /// stderr, and the command goes on.
    fn ready(&mut self) {
        match self.read(BATCH) {
            Ok(read) => {
                let dropped = self.count_drops();
                self.may_rest = read < BATCH && !dropped;
            }
            Err(e) => {
                eprintln!("ns-exec: {}; the capture stopped", crate::cli::printable(&e.to_string()));
                self.socket = None;
            }
        }
    }

    /// After a small read, as long as the receive buffer safely holds what may arrive meanwhile
    /// (at most [`MAX_REST`]); none after a full batch or a loss, to catch up at once.
    fn rest(&self) -> Option<Duration> {
        let fill = Duration::from_nanos(self.buffer.saturating_mul(1_000_000_000) / FILL_RATE);
        (self.may_rest && self.socket.is_some() && !fill.is_zero()).then(|| fill.min(MAX_REST))
    }

    /// A capture runs until Ctrl-C or SIGTERM, however it was started.
    fn ends_on_interrupt(&self) -> bool {
        true
    }
}

/// What a capture that lost packets says: how many, and where its buffer was capped (the
/// kernel grants twice what is asked, so less than twice [`RECEIVE_BUFFER`] is
/// `net.core.rmem_max`'s doing), what can be done.
fn dropped_message(shown: &str, drops: u64, buffer: u64) -> String {
    let mut said = format!("capture to {shown}: the kernel dropped {drops} packet(s) it could not buffer");
    if buffer < 2 * RECEIVE_BUFFER as u64 {
        said += &format!(
            " (a buffer of {} KiB: without CAP_NET_ADMIN it is capped by net.core.rmem_max; raise that, \
             or keep bulk traffic out with --capture-filter)",
            buffer >> 10
        );
    }
    said
}

/// Index, name and ARP hardware type of every interface of the calling thread's network
/// namespace (one netlink dump).
fn interfaces_here() -> Result<Vec<(i32, String, u16)>> {
    use neli::consts::rtnl::{Ifla, Rtm};
    use neli::rtnl::Ifinfomsg;
    let mut netlink = crate::netlink::Netlink::open()?;
    let request = crate::netlink::link::LinkMessage::new().skip_stats().build();
    request
        .and_then(|r| {
            netlink.dump(Rtm::Getlink, r, |m: &Ifinfomsg| {
                let name = crate::netlink::attr::find(m.rtattrs(), Ifla::Ifname).map(crate::netlink::attr::c_string);
                (*m.ifi_index(), name.unwrap_or_default(), u16::from(*m.ifi_type()))
            })
        })
        .map_err(|e| e.into_error("cannot list the interfaces"))
}

/// pcapng's `epb_flags`: the direction (bits 0-1) and the reception type (bits 2-4).
fn packet_flags(pkttype: u8) -> u32 {
    match pkttype {
        PACKET_HOST => 0b001 << 2 | 1,
        PACKET_MULTICAST => 0b010 << 2 | 1,
        PACKET_BROADCAST => 0b011 << 2 | 1,
        PACKET_OTHERHOST => 0b100 << 2 | 1,
        PACKET_OUTGOING => 2,
        _ => 0,
    }
}

fn pcap_error(shown: &str, e: pcap_file::PcapError) -> Error {
    match e {
        pcap_file::PcapError::IoError(io) => Error::io(format!("capture to {shown}"), &io),
        other => Error::new(format!("capture to {shown}")).detail(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_and_reception_type() {
        assert_eq!(packet_flags(PACKET_HOST), 0b00101);
        assert_eq!(packet_flags(PACKET_BROADCAST), 0b01101);
        assert_eq!(packet_flags(PACKET_MULTICAST), 0b01001);
        assert_eq!(packet_flags(PACKET_OTHERHOST), 0b10001);
        assert_eq!(packet_flags(PACKET_OUTGOING), 0b00010);
    }

    #[test]
    fn reads_tcpdumps_programs() {
        let f = Filter::parse("4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n").unwrap();
        assert_eq!(f.program.len(), 4);
        assert_eq!((f.program[1].code, f.program[1].jt, f.program[1].jf, f.program[1].k), (21, 0, 1, 2048));
        assert!(Filter::parse("3\n6 0 0 0\n").is_none(), "count mismatch");
        assert!(Filter::parse("tcpdump: syntax error\n").is_none());
        assert!(Filter::parse("0\n").is_none());
    }

    #[test]
    fn a_loss_says_where_the_buffer_was_capped() {
        let capped = dropped_message("'f.pcap'", 54, 425_984);
        assert_eq!(
            capped,
            "capture to 'f.pcap': the kernel dropped 54 packet(s) it could not buffer (a buffer of 416 KiB: \
             without CAP_NET_ADMIN it is capped by net.core.rmem_max; raise that, or keep bulk traffic out \
             with --capture-filter)"
        );
        let granted = dropped_message("'f.pcap'", 3, 2 * RECEIVE_BUFFER as u64);
        assert_eq!(granted, "capture to 'f.pcap': the kernel dropped 3 packet(s) it could not buffer");
    }

    #[test]
    fn a_file_that_cannot_be_made_names_itself() {
        let e = CaptureFile::create(Path::new("/nonexistent-dir/x.pcap")).unwrap_err();
        assert_eq!(e.to_string(), "cannot capture to '/nonexistent-dir/x.pcap': No such file or directory (ENOENT)");
    }
}
