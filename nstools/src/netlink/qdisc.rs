//! Root qdiscs that carry an [`Impairment`]: `tbf` for a rate alone, `netem` for delay, jitter
//! and loss (and a rate with them).
//!
//! The requests are the ones iproute2's `tc` 6.1 sends, byte for byte (the integration tests
//! compare them with strace), for
//!
//! - `tc qdisc replace dev DEV root netem [delay D [J]] [loss L] [rate R]`, and
//! - `tc qdisc replace dev DEV root tbf rate R burst B latency L`, with the burst of
//!   [`tbf_burst`] and the latency of [`tbf_latency`];
//!
//! with `tc`'s arithmetic: psched ticks from `/proc/net/psched`, netem's 32-bit tick fields,
//! tbf's rate table and its limit from the latency, the 64-bit rate attributes above 2^32-1
//! bytes per second. `netem`'s `TCA_OPTIONS` is its `struct tc_netem_qopt` followed directly
//! by attributes (not a nest); `tbf`'s is a nest.
//!
//! Removing sends `RTM_DELQDISC` for the root with `TCA_KIND` naming the kind found there, so
//! the kernel refuses ("must match existing qdisc") if someone replaced it meanwhile: a qdisc
//! that is not ours is never removed. (`tc qdisc del dev DEV root netem` sends the same plus
//! netem's default options, which the kernel ignores on a delete.)
//!
//! Privileges: setting and removing need `CAP_NET_ADMIN` over the link's network namespace (a
//! user namespace's root has it for its own); reading needs nothing.
//!
//! Errors: a kernel without the qdisc answers ENOENT ("Specified qdisc kind is unknown."); the
//! error then names the module and the configuration option (`sch_netem`,
//! `CONFIG_NET_SCH_NETEM`) and how to load it. A missing link is ENODEV.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use super::request_bytes;
use neli::ToBytes;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Rtm, Tca};
use neli::rtnl::{Rtattr, Tcmsg, TcmsgBuilder};
use neli::types::{Buffer, RtBuffer};
use nix::errno::Errno;

use super::attr::{attr, c_string, find, nest, nested, string};
use super::link::{Link, LinkId};
use super::{KernelError, Netlink};
use crate::error::{Error, Result};
use crate::impair::{Impairment, Loss, QdiscKind, Rate};

/// `TC_H_ROOT`: the parent of a link's root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;

/// `TCA_TBF_PARMS`: `struct tc_tbf_qopt`.
const TCA_TBF_PARMS: u16 = 1;
/// `TCA_TBF_RTAB`: the rate table, 256 u32.
const TCA_TBF_RTAB: u16 = 2;
/// `TCA_TBF_RATE64`: the rate when it does not fit 32 bits.
const TCA_TBF_RATE64: u16 = 4;
/// `TCA_TBF_BURST`: the burst in bytes.
const TCA_TBF_BURST: u16 = 6;

/// `TCA_NETEM_RATE`: `struct tc_netem_rate`.
const TCA_NETEM_RATE: u16 = 6;
/// `TCA_NETEM_RATE64`: the rate when it does not fit 32 bits.
const TCA_NETEM_RATE64: u16 = 8;
/// `TCA_NETEM_LATENCY64`: the delay in nanoseconds (the kernel reports it; tc 6.1 sends ticks).
const TCA_NETEM_LATENCY64: u16 = 10;
/// `TCA_NETEM_JITTER64`: the jitter in nanoseconds.
const TCA_NETEM_JITTER64: u16 = 11;

/// `TC_LINKLAYER_ETHERNET`, what tc assumes.
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// netem's queue limit in packets when `tc` is given none.
const NETEM_LIMIT: u32 = 1000;
/// `sizeof(struct tc_netem_qopt)`.
const NETEM_QOPT_LEN: usize = 24;
/// tc's time unit is the microsecond.
const TIME_UNITS_PER_SEC: f64 = 1_000_000.0;
/// The rate table's cell size (log2) for tc's default MTU of 2047: `2047 >> 3 <= 255`.
const RTAB_CELL_LOG: u8 = 3;
/// Ethernet header: what a packet weighs on top of the MTU when a qdisc measures it.
const ETH_HLEN: u32 = 14;

/// The shortest tbf `latency`.
pub const TBF_MIN_LATENCY: Duration = Duration::from_millis(50);

/// tbf's burst for `rate` on a link with `mtu`: 10 ms of traffic, and at least one full-size
/// frame (MTU plus the Ethernet header: tbf drops a packet larger than its burst).
///
/// Why: the burst is what may pass at line speed after an idle moment, so it inflates the rate
/// measured over a short transfer by `burst / size` (1% for 1 MB at 8mbit); kernels use
/// high-resolution timers, so a burst far below `rate / HZ` still keeps the rate.
pub fn tbf_burst(rate: Rate, mtu: u32) -> u32 {
    let ten_ms = rate.bytes_per_sec() / 100;
    u32::try_from(ten_ms.max(u64::from(frame(mtu)))).unwrap_or(u32::MAX)
}

/// tbf's `latency` for `rate` on a link with `mtu`: how long a packet may wait in its queue.
/// The queue limit follows from it as `tc` computes it, `rate x latency + burst` bytes. It is
/// 50 ms, or the time two full-size frames take at `rate` (rounded up to the millisecond) when
/// that is longer.
///
/// Why: the queue absorbs what TCP sends beyond the rate until it backs off. Measured with TCP
/// between two namespaces, a queue of about two full frames (50 ms at 256kbit) drops so often
/// that TCP's payload gets 76% of the rate; with three, 96% (the rest is its headers).
pub fn tbf_latency(rate: Rate, mtu: u32) -> Duration {
    let two_frames_us = 2 * u64::from(frame(mtu)) * 1_000_000 / rate.bytes_per_sec().max(1);
    TBF_MIN_LATENCY.max(Duration::from_millis(two_frames_us.div_ceil(1000)))
}

/// A full-size frame as a qdisc measures it: MTU plus the Ethernet header.
fn frame(mtu: u32) -> u32 {
    mtu.saturating_add(ETH_HLEN)
}

/// The kernel's packet scheduler clock, as `/proc/net/psched` gives it: tc converts times to
/// its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psched {
    t2us: u32,
    us2t: u32,
    clock_res: u32,
}

impl Psched {
    /// What every kernel since 2.6.32 reports: 64 ns ticks, nanosecond clock.
    pub const KERNEL: Psched = Psched { t2us: 1000, us2t: 64, clock_res: 1_000_000 };

    /// Read `/proc/net/psched`; [`Psched::KERNEL`] if it cannot be read.
    pub fn read() -> Psched {
        std::fs::read_to_string("/proc/net/psched").ok().and_then(|t| Psched::parse(&t)).unwrap_or(Psched::KERNEL)
    }

    /// Parse the contents of `/proc/net/psched` (four hex numbers; tc reads the first three).
    pub fn parse(text: &str) -> Option<Psched> {
        let mut words = text.split_whitespace().map(|w| u32::from_str_radix(w, 16).ok());
        let (t2us, us2t, clock_res) = (words.next()??, words.next()??, words.next()??);
        (us2t != 0 && clock_res != 0).then_some(Psched { t2us, us2t, clock_res })
    }

    /// Ticks per microsecond, as tc computes it (`tc_core_init`).
    fn ticks_per_us(&self) -> f64 {
        // tc's compatibility rule: a nanosecond clock advertises 1000 but means 1.
        let t2us = if self.clock_res == 1_000_000_000 { self.us2t } else { self.t2us };
        f64::from(t2us) / f64::from(self.us2t) * (f64::from(self.clock_res) / TIME_UNITS_PER_SEC)
    }

    /// Microseconds to ticks (`tc_core_time2tick`); `None` if it does not fit 32 bits.
    fn ticks(&self, us: u32) -> Option<u32> {
        let ticks = f64::from(us) * self.ticks_per_us();
        (ticks < 4_294_967_296.0).then_some(ticks as u32)
    }

    /// Ticks back to a time, to the nearest microsecond.
    fn time(&self, ticks: u32) -> Duration {
        Duration::from_micros((f64::from(ticks) / self.ticks_per_us()).round() as u64)
    }

    /// Ticks to send `size` bytes at `rate` bytes per second (`tc_calc_xmittime`: microseconds
    /// truncated, then ticks truncated).
    fn xmit_ticks(&self, rate: u32, size: u32) -> u32 {
        let us = (TIME_UNITS_PER_SEC * (f64::from(size) / f64::from(rate))) as u32;
        (f64::from(us) * self.ticks_per_us()) as u32
    }
}

/// Native-endian struct bytes, field by field.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn buffer(self) -> Buffer {
        Buffer::from(self.0)
    }
}

/// A rate that fits the 32-bit fields: `~0` when it does not (then a 64-bit attribute follows).
fn rate32(rate: Rate) -> u32 {
    u32::try_from(rate.bytes_per_sec()).unwrap_or(u32::MAX)
}

fn too_big(what: &str, time: Duration) -> Error {
    Error::usage(format!("{what} {} is too large for the kernel's clock", crate::impair::format_time(time)))
}

/// Microseconds as tc keeps them (u32), then ticks.
fn time_ticks(what: &str, time: Duration, clock: &Psched) -> Result<u32> {
    u32::try_from(time.as_micros()).ok().and_then(|us| clock.ticks(us)).ok_or_else(|| too_big(what, time))
}

/// `TCA_OPTIONS` of tbf: `tc ... tbf rate R burst B latency L`.
fn tbf_options(rate: Rate, burst: u32, latency: Duration, clock: &Psched) -> Rtattr<Tca, Buffer> {
    let r32 = rate32(rate);
    // tc keeps the latency in microseconds, as u32.
    let latency_us = f64::from(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    // tc: limit = rate64 * latency / TIME_UNITS_PER_SEC + burst, truncated.
    let limit = (rate.bytes_per_sec() as f64 * latency_us / TIME_UNITS_PER_SEC + f64::from(burst)) as u32;
    let ratespec = Bytes::default()
        .u8(RTAB_CELL_LOG)
        .u8(TC_LINKLAYER_ETHERNET)
        .u16(0) // overhead
        .i16(-1) // cell_align
        .u16(0) // mpu
        .u32(r32);
    // struct tc_tbf_qopt: rate, peakrate (none), limit, buffer (ticks), mtu (none).
    let qopt = Bytes::default().raw(&ratespec.0).raw(&[0; 12]).u32(limit).u32(clock.xmit_ticks(r32, burst)).u32(0);
    let rtab = (0..256u32).fold(Bytes::default(), |b, i| b.u32(clock.xmit_ticks(r32, (i + 1) << RTAB_CELL_LOG)));
    let mut children = vec![attr(TCA_TBF_PARMS, qopt.buffer()), attr(TCA_TBF_BURST, burst)];
    if r32 == u32::MAX {
        children.push(attr(TCA_TBF_RATE64, rate.bytes_per_sec()));
    }
    children.push(attr(TCA_TBF_RTAB, rtab.buffer()));
    nest(Tca::Options, &children)
}

/// `TCA_OPTIONS` of netem: `struct tc_netem_qopt`, then attributes (not a nest).
fn netem_options(imp: &Impairment, clock: &Psched) -> Result<Rtattr<Tca, Buffer>> {
    let latency = imp.delay.map(|d| time_ticks("--delay", d, clock)).transpose()?.unwrap_or(0);
    let jitter = imp.jitter.map(|j| time_ticks("--jitter", j, clock)).transpose()?.unwrap_or(0);
    // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter.
    let mut options =
        Bytes::default().u32(latency).u32(NETEM_LIMIT).u32(imp.loss.map_or(0, Loss::scaled)).u32(0).u32(0).u32(jitter);
    if let Some(rate) = imp.rate {
        let r32 = rate32(rate);
        let mut attrs = Vec::new();
        if r32 == u32::MAX {
            attrs.push(attr(TCA_NETEM_RATE64, rate.bytes_per_sec()));
        }
        // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
        attrs.push(attr(TCA_NETEM_RATE, Bytes::default().u32(r32).u32(0).u32(0).u32(0).buffer()));
        for a in attrs {
            let mut out = Cursor::new(Vec::new());
            a.to_bytes(&mut out).expect("serialising into memory cannot fail");
            options = options.raw(out.get_ref());
        }
    }
    Ok(attr(Tca::Options, options.buffer()))
}

fn tcmsg(index: u32, parent: u32, attrs: Vec<Rtattr<Tca, Buffer>>) -> Tcmsg {
    TcmsgBuilder::default()
        .tcm_family(0) // AF_UNSPEC
        .tcm_ifindex(index as i32)
        .tcm_handle(0)
        .tcm_parent(parent)
        .tcm_info(0)
        .rtattrs(attrs.into_iter().collect::<RtBuffer<_, _>>())
        .build()
        .expect("all fields of a Tcmsg are set")
}

/// The `RTM_NEWQDISC` payload replacing the root qdisc of `index` with `imp`'s. `mtu` is the
/// link's (for tbf's burst).
fn replace_msg(index: u32, imp: &Impairment, mtu: u32, clock: &Psched) -> Result<Tcmsg> {
    imp.check()?;
    let kind = imp.qdisc().ok_or_else(|| Error::usage("no impairment to set"))?;
    let options = match (kind, imp.rate) {
        (QdiscKind::Tbf, Some(rate)) => tbf_options(rate, tbf_burst(rate, mtu), tbf_latency(rate, mtu), clock),
        (QdiscKind::Netem, _) => netem_options(imp, clock)?,
        (QdiscKind::Tbf, None) => unreachable!("tbf is chosen for a rate"),
    };
    Ok(tcmsg(index, TC_H_ROOT, vec![string(Tca::Kind, kind.name()), options]))
}

/// The `RTM_DELQDISC` payload removing the root qdisc of `index` if it is of `kind`.
fn delete_msg(index: u32, kind: QdiscKind) -> Tcmsg {
    tcmsg(index, TC_H_ROOT, vec![string(Tca::Kind, kind.name())])
}

/// Flags of a replace: create the qdisc, or replace the one there (tc's `replace`).
fn replace_flags() -> NlmF {
    NlmF::CREATE | NlmF::REPLACE
}

/// The bytes of the request [`Netlink::set_impairment`] sends for link `index` (with `mtu`),
/// sequence number and port id 0: what `tc qdisc replace dev DEV root netem ...` (or
/// `tbf rate R burst B latency L`, see [`tbf_burst`] and [`tbf_latency`]) sends for the same
/// values.
pub fn replace_request(index: u32, imp: &Impairment, mtu: u32, clock: &Psched) -> Result<Vec<u8>> {
    request_bytes(Rtm::Newqdisc, replace_flags(), replace_msg(index, imp, mtu, clock)?)
        .map_err(|e| e.into_error("cannot build the request"))
}

/// The bytes of the request [`Netlink::clear_impairment`] sends to remove a root qdisc of
/// `kind` from link `index`.
pub fn delete_request(index: u32, kind: QdiscKind) -> Vec<u8> {
    request_bytes(Rtm::Delqdisc, NlmF::empty(), delete_msg(index, kind)).expect("a delete request always builds")
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_of(b: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

/// Nanoseconds (netem's 64-bit times) to the nearest microsecond.
fn nanos(b: &[u8]) -> Option<Duration> {
    let ns = i64::from_ne_bytes(b.get(..8)?.try_into().ok()?);
    u64::try_from(ns).ok().map(|ns| Duration::from_micros(ns.saturating_add(500) / 1000))
}

fn some_time(t: Duration) -> Option<Duration> {
    (!t.is_zero()).then_some(t)
}

/// The kind of a qdisc message.
fn kind_of(msg: &Tcmsg) -> String {
    find(msg.rtattrs(), Tca::Kind).map(c_string).unwrap_or_default()
}

/// The impairment a tbf or netem qdisc carries; `None` for other kinds or malformed options.
fn decode(msg: &Tcmsg, clock: &Psched) -> Option<Impairment> {
    let kind = QdiscKind::from_name(&kind_of(msg))?;
    let options = find(msg.rtattrs(), Tca::Options)?;
    match kind {
        QdiscKind::Tbf => {
            let attrs = nested::<u16>(options)?;
            let parms = find(&attrs, TCA_TBF_PARMS)?;
            let rate = find(&attrs, TCA_TBF_RATE64).and_then(u64_of).or(u32_at(parms, 8).map(u64::from))?;
            Some(Impairment { rate: Some(Rate::from_bytes_per_sec(rate)), ..Impairment::default() })
        }
        QdiscKind::Netem => {
            let qopt = options.get(..NETEM_QOPT_LEN)?;
            let attrs = nested::<u16>(&options[NETEM_QOPT_LEN..])?;
            let delay = find(&attrs, TCA_NETEM_LATENCY64).and_then(nanos).unwrap_or(clock.time(u32_at(qopt, 0)?));
            let jitter = find(&attrs, TCA_NETEM_JITTER64).and_then(nanos).unwrap_or(clock.time(u32_at(qopt, 20)?));
            let loss = u32_at(qopt, 8)?;
            let rate = find(&attrs, TCA_NETEM_RATE).and_then(|r| u32_at(r, 0));
            let rate = find(&attrs, TCA_NETEM_RATE64).and_then(u64_of).or(rate.map(u64::from)).filter(|&r| r != 0);
            Some(Impairment {
                delay: some_time(delay),
                jitter: some_time(jitter),
                loss: (loss != 0).then(|| Loss::from_scaled(loss)),
                rate: rate.map(Rate::from_bytes_per_sec),
            })
        }
    }
}

/// The error for a failed qdisc change: a missing qdisc kind names its module and option.
fn qdisc_error(err: KernelError, kind: QdiscKind, what: String) -> Error {
    let unknown_kind =
        err.errno == Errno::ENOENT && err.extack.as_deref().is_none_or(|text| text.contains("qdisc kind is unknown"));
    if unknown_kind {
        return Error::sys(what, Errno::ENOENT)
            .detail(format!("the kernel has no {kind} qdisc ({}, {})", kind.module(), kind.config()))
            .hint(format!(
                "load it as root: 'modprobe {}' (a user namespace cannot load modules: rootless use needs it loaded already)",
                kind.module()
            ));
    }
    if err.errno == Errno::ENODEV {
        return no_such_link(what);
    }
    err.into_error(what)
}

fn no_such_link(what: String) -> Error {
    Error::sys(what, Errno::ENODEV).detail("no such interface")
}

impl Netlink {
    fn qdisc_link(&mut self, link: LinkId<'_>, what: impl Fn() -> String) -> Result<Link> {
        self.get_link(link)?.ok_or_else(|| no_such_link(what()))
    }

    /// The root qdisc of link `index` (`noqueue` or `noop` when none was set), from a dump: the
    /// kernel answers a plain `RTM_GETQDISC` only to `NLM_F_ECHO`, and then with EINVAL for its
    /// built-in defaults.
    fn root_qdisc(&mut self, index: u32) -> std::result::Result<Option<Tcmsg>, KernelError> {
        let all = self.dump(Rtm::Getqdisc, tcmsg(index, 0, vec![]), |m: &Tcmsg| {
            (*m.tcm_ifindex() as u32 == index && *m.tcm_parent() == TC_H_ROOT).then(|| m.clone())
        })?;
        Ok(all.into_iter().flatten().next())
    }

    /// Impair what `link` sends: replace its root qdisc with the tbf or netem that carries
    /// `imp` (an empty `imp` clears it). Whatever root qdisc was there is replaced; on failure it
    /// stays as it was.
    ///
    /// Errors: the link does not exist (ENODEV); the kernel has no netem or tbf (ENOENT, the
    /// message names `sch_netem` / `CONFIG_NET_SCH_NETEM`); EPERM without `CAP_NET_ADMIN`;
    /// invalid values (exit code 2, before any request).
    pub fn set_impairment(&mut self, link: LinkId<'_>, imp: &Impairment) -> Result<()> {
        let what = || format!("cannot set {imp} on {link}");
        imp.check()?;
        let Some(kind) = imp.qdisc() else {
            return self.clear_impairment(link).map(drop);
        };
        let l = self.qdisc_link(link, what)?;
        // The kernel changes a netem in place field by field, and keeps a rate it is not sent
        // (TCA_NETEM_RATE is optional; tc has the same effect): a netem with a rate goes first
        // when the new one has none, so that exactly `imp` is left.
        if kind == QdiscKind::Netem && imp.rate.is_none() {
            let clock = Psched::read();
            let root = self.root_qdisc(l.index).map_err(|e| e.into_error(what()))?;
            if root.and_then(|r| decode(&r, &clock)).is_some_and(|old| old.qdisc() == Some(kind) && old.rate.is_some())
            {
                self.request(Rtm::Delqdisc, NlmF::empty(), delete_msg(l.index, kind))
                    .map_err(|e| qdisc_error(e, kind, what()))?;
            }
        }
        // A link without an MTU attribute is not Ethernet-like; 1500 is as good as any.
        let msg = replace_msg(l.index, imp, l.mtu.unwrap_or(1500), &Psched::read())?;
        self.request(Rtm::Newqdisc, replace_flags(), msg).map_err(|e| qdisc_error(e, kind, what()))
    }

    /// Remove the impairment of `link`: delete its root qdisc if it is a tbf or a netem, so the
    /// kernel's default comes back. Returns whether there was one; a link without one (or
    /// with another kind of root qdisc, left alone) is not an error. ENODEV if the link does
    /// not exist.
    pub fn clear_impairment(&mut self, link: LinkId<'_>) -> Result<bool> {
        let what = || format!("cannot clear the impairments of {link}");
        let index = self.qdisc_link(link, what)?.index;
        let root = self.root_qdisc(index).map_err(|e| e.into_error(what()))?;
        let Some(kind) = root.and_then(|r| QdiscKind::from_name(&kind_of(&r))) else {
            return Ok(false);
        };
        match self.request(Rtm::Delqdisc, NlmF::empty(), delete_msg(index, kind)) {
            Ok(()) => Ok(true),
            Err(KernelError { errno: Errno::ENOENT, .. }) => Ok(false), // gone meanwhile
            Err(e) => Err(qdisc_error(e, kind, what())),
        }
    }

    /// The impairment of `link`, `None` if its root qdisc is not a tbf or a netem.
    pub fn get_impairment(&mut self, link: LinkId<'_>) -> Result<Option<Impairment>> {
        let what = || format!("cannot read the impairments of {link}");
        let index = self.qdisc_link(link, what)?.index;
        let root = self.root_qdisc(index).map_err(|e| e.into_error(what()))?;
        Ok(root.and_then(|r| decode(&r, &Psched::read())))
    }

    /// The impairments of every link of the namespace that has one (a root tbf or netem), by
    /// interface index.
    pub fn dump_impairments(&mut self) -> Result<BTreeMap<u32, Impairment>> {
        // The clock only for a tbf or netem: most namespaces (ns-ls reads them all) have none.
        let clock = std::cell::OnceCell::new();
        let all = self
            .dump(Rtm::Getqdisc, tcmsg(0, 0, vec![]), |m: &Tcmsg| {
                let ours = *m.tcm_parent() == TC_H_ROOT && QdiscKind::from_name(&kind_of(m)).is_some();
                ours.then(|| decode(m, clock.get_or_init(Psched::read)).map(|imp| (*m.tcm_ifindex() as u32, imp)))
            })
            .map_err(|e| e.into_error("cannot list qdiscs"))?;
        Ok(all.into_iter().flatten().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::FromBytesWithInput;

    /// Hex of what iproute2 6.1's tc sent on this project's reference machine (strace), for
    /// ifindex 3 with `/proc/net/psched` = `000003e8 00000040 000f4240 3b9aca00`; the
    /// sequence number (bytes 8..12) set to zero.
    const TC_NETEM: &str = "60000000240005050000000000000000000000000300000000000000ffffffff000000000a0001006e6574656d0000003000020084d71700e8030000295c8f0200000000000000005a62020014000600d0121300000000000000000000000000";
    const TC_NETEM_40GBIT: &str = "6c000000240005050000000000000000000000000300000000000000ffffffff000000000a0001006e6574656d0000003c0002005a620200e8030000000000000000000000000000000000000c00080000f2052a0100000014000600ffffffff000000000000000000000000";

    /// `tc qdisc replace dev DEV root tbf rate 8mbit burst 10000 latency 50ms`.
    const TC_TBF_8MBIT: &str = concat!(
        "64040000240005050000000000000000000000000300000000000000ffffffff00000000080001007462660038040200",
        "2800010003010000ffff000040420f0000000000000000000000000060ea00005a620200000000000800060010270000",
        "040402007d000000fa00000077010000f401000071020000ee0200006b030000e803000065040000e20400005f050000",
        "dc05000059060000d606000053070000d00700004d080000ca08000047090000c4090000410a0000be0a00003b0b0000",
        "b80b0000350c0000b20c00002f0d0000ac0d0000290e0000a60e0000230f0000a00f00001d1000009a10000017110000",
        "94110000111200008e1200000b130000881300000514000082140000ff1400007c150000f915000076160000f3160000",
        "70170000ed1700006a180000e718000064190000e11900005e1a0000db1a0000581b0000d51b0000521c0000cf1c0000",
        "4c1d0000c91d0000461e0000c31e0000401f0000bd1f00003a200000b720000034210000b12100002e220000ab220000",
        "28230000a5230000222400009f2400001c250000992500001626000093260000102700008d2700000a28000087280000",
        "0429000081290000fe2900007b2a0000f82a0000752b0000f22b00006f2c0000ec2c0000692d0000e62d0000632e0000",
        "e02e00005d2f0000da2f000057300000d430000051310000ce3100004b320000c832000045330000c23300003f340000",
        "bc34000039350000b635000033360000b03600002d370000aa37000027380000a4380000213900009e3900001b3a0000",
        "983a0000153b0000923b00000f3c00008c3c0000093d0000863d0000033e0000803e0000fd3e00007a3f0000f73f0000",
        "74400000f14000006e410000eb41000068420000e542000062430000df4300005c440000d944000056450000d3450000",
        "50460000cd4600004a470000c747000044480000c14800003e490000bb490000384a0000b54a0000324b0000af4b0000",
        "2c4c0000a94c0000264d0000a34d0000204e00009d4e00001a4f0000974f000014500000915000000e5100008b510000",
        "0852000085520000025300007f530000fc53000079540000f654000073550000f05500006d560000ea56000067570000",
        "e457000061580000de5800005b590000d8590000555a0000d25a00004f5b0000cc5b0000495c0000c65c0000435d0000",
        "c05d00003d5e0000ba5e0000375f0000b45f000031600000ae6000002b610000a861000025620000a26200001f630000",
        "9c630000196400009664000013650000906500000d6600008a6600000767000084670000016800007e680000fb680000",
        "78690000f5690000726a0000ef6a00006c6b0000e96b0000666c0000e36c0000606d0000dd6d00005a6e0000d76e0000",
        "546f0000d16f00004e700000cb70000048710000c571000042720000bf7200003c730000b973000036740000b3740000",
        "30750000ad7500002a760000a776000024770000a17700001e7800009b7800001879000085790000127a00007f7a0000",
        "0c7b0000897b0000067c0000837c0000007d0000",
    );

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn imp(d: Option<&str>, j: Option<&str>, l: Option<&str>, r: Option<&str>) -> Impairment {
        Impairment::from_flags(d, j, l, r).unwrap()
    }

    #[test]
    fn psched_ticks_as_tc_computes_them() {
        let c = Psched::parse("000003e8 00000040 000f4240 3b9aca00\n").unwrap();
        assert_eq!(c, Psched::KERNEL);
        assert_eq!(c.ticks_per_us(), 15.625);
        assert_eq!(c.ticks(100_000), Some(1_562_500));
        assert_eq!(c.ticks(1), Some(15));
        assert_eq!(c.ticks(u32::MAX), None);
        assert_eq!(c.time(1_562_500), Duration::from_millis(100));
        assert_eq!(c.time(15), Duration::from_micros(1));
        // tc_calc_xmittime(1000000, 10000): 10000 us, 156250 ticks.
        assert_eq!(c.xmit_ticks(1_000_000, 10_000), 156_250);
        // Old kernels: microsecond ticks; a nanosecond clock advertising 1000.
        let old = Psched::parse("00000001 00000001 000f4240 00000064").unwrap();
        assert_eq!(old.ticks_per_us(), 1.0);
        let hack = Psched::parse("000003e8 00000001 3b9aca00 00000064").unwrap();
        assert_eq!(hack.ticks_per_us(), 1000.0);
        assert_eq!(Psched::parse("garbage"), None);
        assert_eq!(Psched::parse("3e8 0 f4240"), None);
    }

    #[test]
    fn netem_request_is_tcs() {
        let i = imp(Some("100ms"), Some("10ms"), Some("1%"), Some("10mbit"));
        assert_eq!(hex(&replace_request(3, &i, 1500, &Psched::KERNEL).unwrap()), TC_NETEM);
        let i = imp(Some("10ms"), None, None, Some("40gbit"));
        assert_eq!(hex(&replace_request(3, &i, 1500, &Psched::KERNEL).unwrap()), TC_NETEM_40GBIT);
    }

    #[test]
    fn tbf_request_layout() {
        let rate = Rate::from_bytes_per_sec(1_000_000);
        assert_eq!(tbf_burst(rate, 1500), 10_000);
        assert_eq!(tbf_burst(Rate::from_bytes_per_sec(1_000), 1500), 1_514);
        assert_eq!(tbf_burst(Rate::from_bytes_per_sec(1_000), 65_536), 65_550);
        assert_eq!(tbf_latency(rate, 1500), Duration::from_millis(50));
        // 256kbit: two frames take 94.625 ms.
        assert_eq!(tbf_latency(Rate::from_bytes_per_sec(32_000), 1500), Duration::from_millis(95));
        assert_eq!(tbf_latency(Rate::from_bytes_per_sec(1_000), 65_536), Duration::from_millis(131_100));
        assert_eq!(tbf_latency(Rate::from_bytes_per_sec(12_500_000_000), 1500), Duration::from_millis(50));
        let i = imp(None, None, None, Some("8mbit"));
        let bytes = replace_request(3, &i, 1500, &Psched::KERNEL).unwrap();
        // nlmsghdr 16, tcmsg 20, kind "tbf" 8, options: 4 + parms 40 + burst 8 + rtab 1028.
        assert_eq!(bytes.len(), 16 + 20 + 8 + 4 + 40 + 8 + 1028);
        assert_eq!(hex(&bytes), TC_TBF_8MBIT);
        // The last rate table entry: 2048 bytes at 1 MB/s, 2048 us, 32000 ticks.
        assert_eq!(u32_at(&bytes, bytes.len() - 4), Some(32_000));
        // Above 2^32-1 bytes per second: ~0 in the 32-bit field and TCA_TBF_RATE64.
        let fast = replace_request(3, &imp(None, None, None, Some("40gbit")), 1500, &Psched::KERNEL).unwrap();
        // tc: limit 300000000 (5e9 x 50ms + 5e7), buffer and rate table from the 32-bit rate.
        let head = "080001007462660044040200280001000301000\
                    0ffff0000ffffffff00000000000000000000000000a3e11182c60200000000000800060080f0fa02\
                    0c00040000f2052a0100000004040200";
        assert_eq!(hex(&fast[36..36 + head.len() / 2]), head);
        assert!(fast[36 + head.len() / 2..].iter().all(|&b| b == 0), "2048 bytes take no tick at 4 GB/s");
    }

    #[test]
    fn delete_request_names_the_kind() {
        let bytes = delete_request(3, QdiscKind::Netem);
        assert_eq!(
            hex(&bytes),
            "30000000250005000000000000000000000000000300000000000000ffffffff000000000a0001006e6574656d000000"
        );
        assert_eq!(hex(&delete_request(7, QdiscKind::Tbf))[72..], *"0800010074626600");
    }

    fn as_tcmsg(request: &[u8]) -> Tcmsg {
        let payload = &request[16..];
        Tcmsg::from_bytes_with_input(&mut Cursor::new(payload), payload.len()).unwrap()
    }

    #[test]
    fn encode_decode_round_trip() {
        for (d, j, l, r) in [
            (None, None, None, Some("8mbit")),
            (None, None, None, Some("40gbit")),
            (None, None, None, Some("8.8kbit")),
            (Some("100ms"), Some("10ms"), Some("1%"), Some("10mbit")),
            (Some("1us"), None, None, None),
            (Some("1.234567s"), Some("999999us"), None, None),
            (None, None, Some("100%"), None),
            (None, None, Some("0.0001%"), Some("100gbit")),
            (Some("60s"), Some("60s"), Some("33.3333%"), Some("1gibit")),
        ] {
            let i = imp(d, j, l, r);
            let msg = as_tcmsg(&replace_request(5, &i, 1500, &Psched::KERNEL).unwrap());
            assert_eq!(decode(&msg, &Psched::KERNEL), Some(i), "{i}");
            assert_eq!(*msg.tcm_ifindex(), 5);
        }
    }

    #[test]
    fn decodes_the_kernels_64_bit_times() {
        // A netem dump as the kernel writes it: qopt (ticks), LATENCY64, JITTER64, RATE.
        let mut options = Bytes::default().u32(1_562_500).u32(1000).u32(0).u32(0).u32(0).u32(156_250);
        for a in [
            attr(TCA_NETEM_LATENCY64, 100_000_000i64),
            attr(TCA_NETEM_JITTER64, 10_000_000i64),
            attr(TCA_NETEM_RATE, Bytes::default().u32(0).u32(0).u32(0).u32(0).buffer()),
        ] {
            let mut out = Cursor::new(Vec::new());
            a.to_bytes(&mut out).unwrap();
            options = options.raw(out.get_ref());
        }
        let msg = tcmsg(4, TC_H_ROOT, vec![string(Tca::Kind, "netem"), attr(Tca::Options, options.buffer())]);
        let got = decode(&msg, &Psched::KERNEL).unwrap();
        assert_eq!(got, imp(Some("100ms"), Some("10ms"), None, None));
        assert_eq!(got.to_string(), "delay 100ms jitter 10ms");
        // Not ours: no impairment.
        let other = tcmsg(4, TC_H_ROOT, vec![string(Tca::Kind, "noqueue")]);
        assert_eq!(decode(&other, &Psched::KERNEL), None);
        let malformed = tcmsg(4, TC_H_ROOT, vec![string(Tca::Kind, "netem"), attr(Tca::Options, 1u32)]);
        assert_eq!(decode(&malformed, &Psched::KERNEL), None);
    }

    #[test]
    fn missing_qdisc_names_the_module() {
        let unknown = KernelError { errno: Errno::ENOENT, extack: Some("Specified qdisc kind is unknown.".into()) };
        let e = qdisc_error(unknown, QdiscKind::Netem, "cannot set delay 100ms on veth21".into());
        assert_eq!(
            e.to_string(),
            "cannot set delay 100ms on veth21: the kernel has no netem qdisc (sch_netem, CONFIG_NET_SCH_NETEM) \
             (ENOENT); load it as root: 'modprobe sch_netem' (a user namespace cannot load modules: rootless use \
             needs it loaded already)"
        );
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.exit_code(), crate::error::exit::FAILURE);
        let other = KernelError { errno: Errno::EINVAL, extack: Some("Invalid qdisc name".into()) };
        assert_eq!(qdisc_error(other, QdiscKind::Tbf, "x".into()).to_string(), "x: Invalid qdisc name (EINVAL)");
        let gone = KernelError { errno: Errno::ENODEV, extack: None };
        assert_eq!(qdisc_error(gone, QdiscKind::Tbf, "x".into()).to_string(), "x: no such interface (ENODEV)");
    }
}
