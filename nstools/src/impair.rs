//! Link impairments: delay, jitter, loss and rate, as `veth-pair --delay/--jitter/--loss/--rate`
//! takes them and `ns-ls` shows them.
//!
//! Values are spelled as `tc` spells them, and parsed with `tc`'s own arithmetic so that the
//! kernel gets the same numbers from both:
//!
//! - times: a decimal number and a unit, `s`/`sec`/`secs`, `ms`/`msec`/`msecs`,
//!   `us`/`usec`/`usecs` (any case), kept to the microsecond (`tc` truncates the same way);
//! - loss: a percentage, `1%`, `0.5%` (a bare number is a percentage too, as with `tc`);
//! - rate: a number and a unit: bits per second `bit`, `kbit`, `mbit`, `gbit`, `tbit` (SI,
//!   powers of 1000), `kibit`, `mibit`, `gibit`, `tibit` (powers of 1024), or bytes per second
//!   `bps`, `kbps`, `mbps`, `gbps`, `tbps`, `kibps`... (any case: `tc` reads `bps` as *bytes*).
//!
//! Unlike `tc`, a bare number is refused for times and rates: `tc` reads `--delay 100` as 100
//! microseconds and `--rate 100` as 100 bits per second, which nobody means.
//!
//! A rate alone is shaped by the token bucket filter (`tbf`); delay, jitter and loss need
//! `netem`, which then carries the rate too ([`Impairment::qdisc`]).
//!
//! The text form ([`Impairment`]'s `Display`) is `tc`-like and reads back through the parsers:
//! `delay 100ms jitter 10ms loss 1% rate 10Mbit`.

use std::fmt;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ifname::quote;

/// The longest delay or jitter accepted (`netem` could carry about 274 s).
pub const MAX_TIME: Duration = Duration::from_secs(60);
/// The lowest rate accepted: 8kbit (1000 bytes per second). Below it a full-size packet takes
/// longer than a second, and the kernel's 32-bit tick fields overflow for big MTUs.
pub const MIN_RATE: Rate = Rate(1_000);
/// The highest rate accepted: 100gbit.
pub const MAX_RATE: Rate = Rate(12_500_000_000);

/// The queueing discipline an impairment needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QdiscKind {
    /// Token bucket filter: a rate alone.
    Tbf,
    /// Network emulator: delay, jitter, loss (and a rate with them).
    Netem,
}

impl QdiscKind {
    /// The kernel's name of the qdisc (`TCA_KIND`).
    pub fn name(self) -> &'static str {
        match self {
            QdiscKind::Tbf => "tbf",
            QdiscKind::Netem => "netem",
        }
    }

    /// The kernel module that provides it.
    pub fn module(self) -> &'static str {
        match self {
            QdiscKind::Tbf => "sch_tbf",
            QdiscKind::Netem => "sch_netem",
        }
    }

    /// The kernel configuration option that builds it.
    pub fn config(self) -> &'static str {
        match self {
            QdiscKind::Tbf => "CONFIG_NET_SCH_TBF",
            QdiscKind::Netem => "CONFIG_NET_SCH_NETEM",
        }
    }

    /// The kind named `name` by the kernel, if it is one of ours.
    pub fn from_name(name: &str) -> Option<QdiscKind> {
        [QdiscKind::Tbf, QdiscKind::Netem].into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for QdiscKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A loss probability, in the kernel's scale: `u32::MAX` is 100%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loss(u32);

impl Loss {
    /// 100%: every packet is dropped.
    pub const ALL: Loss = Loss(u32::MAX);

    /// From the kernel's scale.
    pub fn from_scaled(scaled: u32) -> Loss {
        Loss(scaled)
    }

    /// From a percentage (0 to 100), rounded to the kernel's scale as `tc` rounds it; `None`
    /// out of range.
    pub fn from_percent(percent: f64) -> Option<Loss> {
        let fraction = percent / 100.0;
        (0.0..=1.0).contains(&fraction).then(|| Loss((fraction * f64::from(u32::MAX)).round_ties_even() as u32))
    }

    /// In the kernel's scale.
    pub fn scaled(self) -> u32 {
        self.0
    }

    /// As a percentage: the shortest decimal that is this value on the kernel's scale (1% set
    /// reads back as 1, not as 1.0000000011641532).
    pub fn percent(self) -> f64 {
        let exact = self.exact_percent();
        (0..=10)
            .map(|digits| {
                let scale = 10f64.powi(digits);
                (exact * scale).round() / scale
            })
            .find(|&p| Loss::from_percent(p) == Some(self))
            .unwrap_or(exact)
    }

    /// The kernel's value as a percentage, unrounded (what `tc` prints to six digits).
    fn exact_percent(self) -> f64 {
        100.0 * f64::from(self.0) / f64::from(u32::MAX)
    }
}

impl fmt::Display for Loss {
    /// `1%`, `0.5%`, `33.3333%` (six significant digits, as `tc` prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", significant(self.exact_percent(), 6))
    }
}

/// A rate in bytes per second (the kernel's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    /// From bytes per second.
    pub fn from_bytes_per_sec(bytes: u64) -> Rate {
        Rate(bytes)
    }

    /// Bytes per second.
    pub fn bytes_per_sec(self) -> u64 {
        self.0
    }

    /// Bits per second.
    pub fn bits_per_sec(self) -> u128 {
        u128::from(self.0) * 8
    }
}

impl fmt::Display for Rate {
    /// Exact, in the largest unit it reaches: `10Mbit`, `1.5Gbit`, `8.8Kbit`, `800bit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.bits_per_sec();
        let (unit, name) = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "K")]
            .into_iter()
            .find(|&(unit, _)| bits >= unit)
            .unwrap_or((1, ""));
        write!(f, "{}{name}bit", decimal(bits, unit))
    }
}

/// Delay, jitter, loss and rate of a link (of its egress: what it sends). All `None`: no
/// impairment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Impairment {
    /// Added delay (`--delay`).
    pub delay: Option<Duration>,
    /// Random variation of the delay, plus or minus (`--jitter`); needs a delay.
    pub jitter: Option<Duration>,
    /// Random loss (`--loss`).
    pub loss: Option<Loss>,
    /// Rate limit (`--rate`).
    pub rate: Option<Rate>,
}

impl Impairment {
    /// Parse and check the values of `--delay`, `--jitter`, `--loss` and `--rate` (each
    /// optional). Zero values (`0ms`, `0%`) mean "none". Errors exit with code 2 and name the
    /// flag.
    pub fn from_flags(
        delay: Option<&str>,
        jitter: Option<&str>,
        loss: Option<&str>,
        rate: Option<&str>,
    ) -> Result<Impairment> {
        let imp = Impairment {
            delay: delay.map(|t| parse_time("--delay", t)).transpose()?.filter(|d| !d.is_zero()),
            jitter: jitter.map(|t| parse_time("--jitter", t)).transpose()?.filter(|d| !d.is_zero()),
            loss: loss.map(|t| parse_loss("--loss", t)).transpose()?.filter(|l| l.0 != 0),
            rate: rate.map(|t| parse_rate("--rate", t)).transpose()?,
        };
        imp.check()?;
        Ok(imp)
    }

    /// No impairment at all.
    pub fn is_empty(&self) -> bool {
        self.delay.is_none() && self.jitter.is_none() && self.loss.is_none() && self.rate.is_none()
    }

    /// The qdisc that implements it: `tbf` for a rate alone, `netem` as soon as there is a
    /// delay, jitter or loss; `None` when empty.
    pub fn qdisc(&self) -> Option<QdiscKind> {
        if self.delay.is_some() || self.jitter.is_some() || self.loss.is_some() {
            Some(QdiscKind::Netem)
        } else if self.rate.is_some() {
            Some(QdiscKind::Tbf)
        } else {
            None
        }
    }

    /// Check the combination and the bounds (exit code 2 when wrong): jitter needs a delay and
    /// cannot exceed it (the delay would go negative: packets reordered, not delayed), times
    /// up to [`MAX_TIME`], rates from [`MIN_RATE`] to [`MAX_RATE`].
    pub fn check(&self) -> Result<()> {
        for (flag, time) in [("--delay", self.delay), ("--jitter", self.jitter)] {
            if let Some(t) = time {
                check_time(flag, t)?;
            }
        }
        match (self.delay, self.jitter) {
            (None | Some(Duration::ZERO), Some(j)) if !j.is_zero() => {
                return Err(Error::usage("--jitter needs --delay")
                    .detail("jitter varies the delay around its value, e.g. --delay 100ms --jitter 10ms"));
            }
            (Some(d), Some(j)) if j > d => {
                return Err(Error::usage(format!(
                    "--jitter {} is larger than --delay {}",
                    format_time(j),
                    format_time(d)
                ))
                .detail("the delay would go below zero; use a jitter up to the delay"));
            }
            _ => {}
        }
        if let Some(r) = self.rate {
            check_rate("--rate", r, &r.to_string())?;
        }
        Ok(())
    }
}

impl fmt::Display for Impairment {
    /// `delay 100ms jitter 10ms loss 1% rate 10Mbit`, the parts that are set; `none` if empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", format_time(d)));
        }
        if let Some(j) = self.jitter {
            parts.push(format!("jitter {}", format_time(j)));
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}"));
        }
        if let Some(r) = self.rate {
            parts.push(format!("rate {r}"));
        }
        if parts.is_empty() { f.write_str("none") } else { f.write_str(&parts.join(" ")) }
    }
}

impl Serialize for Impairment {
    /// `{"qdisc": "netem", "delay_us": 100000, "jitter_us": 10000, "loss_percent": 1.0,
    /// "rate_bits_per_sec": 10000000}`; absent values are `null`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Impairment", 5)?;
        st.serialize_field("qdisc", &self.qdisc().map(QdiscKind::name))?;
        st.serialize_field("delay_us", &self.delay.map(|d| d.as_micros() as u64))?;
        st.serialize_field("jitter_us", &self.jitter.map(|d| d.as_micros() as u64))?;
        st.serialize_field("loss_percent", &self.loss.map(Loss::percent))?;
        st.serialize_field("rate_bits_per_sec", &self.rate.map(|r| r.bits_per_sec() as u64))?;
        st.end()
    }
}

/// Split `text` into a non-negative decimal number (`12`, `1.5`, `.5`) and the rest.
fn number(text: &str) -> Option<(f64, &str)> {
    let end = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (num, rest) = text.split_at(end);
    let digits = num.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || num.bytes().filter(|&b| b == b'.').count() > 1 {
        return None;
    }
    num.parse::<f64>().ok().map(|v| (v, rest))
}

fn invalid(flag: &str, text: &str) -> Error {
    Error::usage(format!("invalid {flag} {}", quote(text)))
}

/// Time units as `tc` reads them, with their factor to microseconds.
const TIME_UNITS: &[(&[&str], f64)] =
    &[(&["s", "sec", "secs"], 1_000_000.0), (&["ms", "msec", "msecs"], 1_000.0), (&["us", "usec", "usecs"], 1.0)];

/// Parse a time (`100ms`, `1.5s`, `250us`) for `flag`, truncated to the microsecond as `tc`
/// does. Errors (exit code 2) name the flag and the value.
pub fn parse_time(flag: &str, text: &str) -> Result<Duration> {
    let hint = "a number and a unit, s, ms or us, e.g. 100ms";
    let (value, unit) = number(text).ok_or_else(|| invalid(flag, text).detail(format!("expected {hint}")))?;
    if unit.is_empty() {
        return Err(invalid(flag, text).detail(format!("the unit is missing: expected {hint}")));
    }
    let factor = TIME_UNITS
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(unit)))
        .map(|&(_, f)| f)
        .ok_or_else(|| invalid(flag, text).detail(format!("unknown unit {}: expected {hint}", quote(unit))))?;
    let micros = value * factor;
    if micros > MAX_TIME.as_micros() as f64 {
        return Err(invalid(flag, text).detail(format!("at most {}", format_time(MAX_TIME))));
    }
    let time = Duration::from_micros(micros as u64);
    if time.is_zero() && value != 0.0 {
        return Err(invalid(flag, text).detail("less than 1us: use 0 for none, or at least 1us"));
    }
    Ok(time)
}

fn check_time(flag: &str, time: Duration) -> Result<()> {
    if time > MAX_TIME {
        return Err(Error::usage(format!("invalid {flag} {}", format_time(time)))
            .detail(format!("at most {}", format_time(MAX_TIME))));
    }
    Ok(())
}

/// Parse a loss percentage (`1%`, `0.5%`, `100%`; a bare number is a percentage too) for
/// `flag`, rounded to the kernel's scale as `tc` does.
pub fn parse_loss(flag: &str, text: &str) -> Result<Loss> {
    let (value, unit) =
        number(text).ok_or_else(|| invalid(flag, text).detail("expected a percentage from 0 to 100, e.g. 1%"))?;
    if !unit.is_empty() && unit != "%" {
        return Err(invalid(flag, text).detail(format!("unknown unit {}: expected a percentage, e.g. 1%", quote(unit))));
    }
    Loss::from_percent(value).ok_or_else(|| invalid(flag, text).detail("a percentage goes from 0% to 100%"))
}

/// Rate units as `tc` reads them (case does not matter), in bits per second.
const RATE_UNITS: &[(&str, f64)] = &[
    ("bit", 1.),
    ("kibit", 1024.),
    ("kbit", 1000.),
    ("mibit", 1024. * 1024.),
    ("mbit", 1_000_000.),
    ("gibit", 1024. * 1024. * 1024.),
    ("gbit", 1_000_000_000.),
    ("tibit", 1024. * 1024. * 1024. * 1024.),
    ("tbit", 1_000_000_000_000.),
    ("bps", 8.),
    ("kibps", 8. * 1024.),
    ("kbps", 8000.),
    ("mibps", 8. * 1024. * 1024.),
    ("mbps", 8_000_000.),
    ("gibps", 8. * 1024. * 1024. * 1024.),
    ("gbps", 8_000_000_000.),
    ("tibps", 8. * 1024. * 1024. * 1024. * 1024.),
    ("tbps", 8_000_000_000_000.),
];

/// Parse a rate (`10mbit`, `512kbit`, `1gbit`, `125kbps` = 1mbit) for `flag`, into bytes per
/// second as `tc` computes it.
pub fn parse_rate(flag: &str, text: &str) -> Result<Rate> {
    let hint = "a number and a unit such as kbit, mbit, gbit (bits per second) or kbps, mbps \
                (bytes per second), e.g. 10mbit";
    let (value, unit) = number(text).ok_or_else(|| invalid(flag, text).detail(format!("expected {hint}")))?;
    if unit.is_empty() {
        return Err(invalid(flag, text).detail(format!("the unit is missing: expected {hint}")));
    }
    let scale = RATE_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .map(|&(_, s)| s)
        .ok_or_else(|| invalid(flag, text).detail(format!("unknown unit {}: expected {hint}", quote(unit))))?;
    let bytes = value * scale / 8.0;
    if bytes > MAX_RATE.0 as f64 {
        return Err(invalid(flag, text).detail(format!("at most {MAX_RATE}")));
    }
    let rate = Rate(bytes as u64);
    check_rate(flag, rate, text)?;
    Ok(rate)
}

fn check_rate(flag: &str, rate: Rate, text: &str) -> Result<()> {
    if rate < MIN_RATE {
        return Err(invalid(flag, text).detail(format!("at least {MIN_RATE}")));
    }
    if rate > MAX_RATE {
        return Err(invalid(flag, text).detail(format!("at most {MAX_RATE}")));
    }
    Ok(())
}

/// A time in the largest unit it reaches, exact: `100ms`, `1.5s`, `250us`, `1.234567s`.
pub fn format_time(time: Duration) -> String {
    let ns = time.as_nanos();
    let (unit, name) = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
        .into_iter()
        .find(|&(unit, _)| ns >= unit)
        .unwrap_or((1, "ns"));
    format!("{}{name}", decimal(ns, unit))
}

/// `n / unit` written exactly (`unit` a power of ten), without trailing zeros.
fn decimal(n: u128, unit: u128) -> String {
    let (whole, frac) = (n / unit, n % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.to_string().len() - 1;
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `x` with up to `digits` significant digits, trailing zeros removed (`printf("%g")` without
/// the exponent form).
fn significant(x: f64, digits: i32) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn times_as_tc_reads_them() {
        assert_eq!(parse_time("--delay", "100ms").unwrap(), ms(100));
        assert_eq!(parse_time("--delay", "1.5s").unwrap(), ms(1500));
        assert_eq!(parse_time("--delay", "1S").unwrap(), ms(1000));
        assert_eq!(parse_time("--delay", "2secs").unwrap(), ms(2000));
        assert_eq!(parse_time("--delay", "10msec").unwrap(), ms(10));
        assert_eq!(parse_time("--delay", "10MSECS").unwrap(), ms(10));
        assert_eq!(parse_time("--delay", "250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_time("--delay", "250usec").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_time("--delay", ".5ms").unwrap(), Duration::from_micros(500));
        // Truncated to the microsecond, as tc does.
        assert_eq!(parse_time("--delay", "1.9us").unwrap(), Duration::from_micros(1));
        assert_eq!(parse_time("--delay", "0.0001s").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_time("--delay", "0ms").unwrap(), Duration::ZERO);
        assert_eq!(parse_time("--delay", "60s").unwrap(), MAX_TIME);
    }

    #[test]
    fn bad_times_name_the_flag_and_exit_2() {
        for (text, why) in [
            ("100", "the unit is missing"),
            ("100xs", "unknown unit 'xs'"),
            ("100ns", "unknown unit 'ns'"),
            ("ms", "expected a number and a unit"),
            ("-5ms", "expected a number and a unit"),
            ("1.2.3ms", "expected a number and a unit"),
            ("", "expected a number and a unit"),
            ("61s", "at most 60s"),
            ("0.5us", "less than 1us"),
            (" 5ms", "expected"),
        ] {
            let e = parse_time("--jitter", text).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{text}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("invalid --jitter {}", quote(text))), "{msg}");
            assert!(msg.contains(why), "{text}: {msg}");
            assert!(!msg.contains('\n'));
        }
    }

    #[test]
    fn loss_reads_back_as_it_was_set() {
        // What ns-ls --json says of a loss the kernel holds in its scale.
        for p in [1.0, 0.5, 20.0, 33.3333, 0.0001, 0.1, 100.0, 0.0, 99.9999] {
            assert_eq!(Loss::from_percent(p).unwrap().percent(), p);
        }
        let odd = Loss::from_scaled(12_345_678);
        assert_eq!(Loss::from_percent(odd.percent()), Some(odd));
    }

    #[test]
    fn loss_as_tc_scales_it() {
        // tc: rint(percent / 100 * UINT32_MAX)
        assert_eq!(parse_loss("--loss", "1%").unwrap().scaled(), 42_949_673);
        assert_eq!(parse_loss("--loss", "1").unwrap().scaled(), 42_949_673);
        assert_eq!(parse_loss("--loss", "100%").unwrap(), Loss::ALL);
        assert_eq!(parse_loss("--loss", "0%").unwrap().scaled(), 0);
        assert_eq!(parse_loss("--loss", "50%").unwrap().scaled(), 2_147_483_648);
        assert_eq!(parse_loss("--loss", "0.1%").unwrap().scaled(), 4_294_967);
        for (text, why) in
            [("101%", "0% to 100%"), ("-1%", "expected a percentage"), ("1 %", "unknown unit"), ("5x", "unknown unit")]
        {
            let e = parse_loss("--loss", text).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE);
            assert!(e.to_string().starts_with(&format!("invalid --loss {}", quote(text))), "{e}");
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn rates_as_tc_reads_them() {
        let r = |t: &str| parse_rate("--rate", t).unwrap().bytes_per_sec();
        assert_eq!(r("10mbit"), 1_250_000);
        assert_eq!(r("10Mbit"), 1_250_000);
        assert_eq!(r("8kbit"), 1_000);
        assert_eq!(r("1gbit"), 125_000_000);
        assert_eq!(r("1.5gbit"), 187_500_000);
        assert_eq!(r("8kibit"), 1_024);
        assert_eq!(r("1mibit"), 131_072);
        assert_eq!(r("1gibit"), 134_217_728);
        // bps is bytes per second, as in tc.
        assert_eq!(r("1000bps"), 1_000);
        assert_eq!(r("125kbps"), 125_000);
        assert_eq!(r("1MBps"), 1_000_000);
        assert_eq!(r("1kibps"), 1_024);
        assert_eq!(r("100gbit"), MAX_RATE.bytes_per_sec());
        // Truncated to whole bytes per second, as tc does.
        assert_eq!(r("8.004kbit"), 1_000);
        assert_eq!(r("8.007kbit"), 1_000);
        assert_eq!(r("8.009kbit"), 1_001);
    }

    #[test]
    fn bad_rates_name_the_flag_and_exit_2() {
        for (text, why) in [
            ("10", "the unit is missing"),
            ("10mbps2", "unknown unit 'mbps2'"),
            ("fast", "expected a number and a unit"),
            ("0mbit", "at least 8Kbit"),
            ("7kbit", "at least 8Kbit"),
            ("101gbit", "at most 100Gbit"),
            ("1tbit", "at most 100Gbit"),
            ("-1mbit", "expected"),
        ] {
            let e = parse_rate("--rate", text).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE);
            assert!(e.to_string().starts_with(&format!("invalid --rate {}", quote(text))), "{e}");
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn text_forms() {
        assert_eq!(format_time(ms(100)), "100ms");
        assert_eq!(format_time(ms(1500)), "1.5s");
        assert_eq!(format_time(Duration::from_micros(1_234_567)), "1.234567s");
        assert_eq!(format_time(Duration::from_micros(250)), "250us");
        assert_eq!(format_time(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(format_time(Duration::from_nanos(1_500)), "1.5us");
        assert_eq!(format_time(Duration::from_nanos(15)), "15ns");
        assert_eq!(Rate(1_250_000).to_string(), "10Mbit");
        assert_eq!(Rate(187_500_000).to_string(), "1.5Gbit");
        assert_eq!(Rate(1_100).to_string(), "8.8Kbit");
        assert_eq!(Rate(100).to_string(), "800bit");
        assert_eq!(Rate(5_000_000_000).to_string(), "40Gbit");
        assert_eq!(Loss::from_percent(1.0).unwrap().to_string(), "1%");
        assert_eq!(Loss::from_percent(0.5).unwrap().to_string(), "0.5%");
        assert_eq!(Loss::from_percent(100.0 / 3.0).unwrap().to_string(), "33.3333%");
        assert_eq!(Loss::ALL.to_string(), "100%");
        // 0.0001% is 4295 in the kernel's scale, shown as tc shows it.
        assert_eq!(Loss::from_percent(0.0001).unwrap().to_string(), "0.000100001%");
        let imp = Impairment::from_flags(Some("100ms"), Some("10ms"), Some("1%"), Some("10mbit")).unwrap();
        assert_eq!(imp.to_string(), "delay 100ms jitter 10ms loss 1% rate 10Mbit");
        assert_eq!(Impairment::default().to_string(), "none");
    }

    #[test]
    fn text_form_reads_back() {
        for (d, j, l, r) in [
            ("100ms", "10ms", "1%", "10mbit"),
            ("1.5s", "250us", "0.5%", "8.8kbit"),
            ("3ms", "3ms", "100%", "40gbit"),
            ("1.234567s", "1us", "0.0001%", "1.5gbit"),
        ] {
            let imp = Impairment::from_flags(Some(d), Some(j), Some(l), Some(r)).unwrap();
            let text = imp.to_string();
            let words: Vec<&str> = text.split(' ').collect();
            let again = Impairment::from_flags(Some(words[1]), Some(words[3]), Some(words[5]), Some(words[7])).unwrap();
            assert_eq!(again, imp, "{text}");
        }
    }

    #[test]
    fn which_qdisc() {
        let f = |d, j, l, r| Impairment::from_flags(d, j, l, r).unwrap();
        assert_eq!(f(None, None, None, None).qdisc(), None);
        assert!(f(None, None, None, None).is_empty());
        assert_eq!(f(None, None, None, Some("1mbit")).qdisc(), Some(QdiscKind::Tbf));
        assert_eq!(f(Some("1ms"), None, None, None).qdisc(), Some(QdiscKind::Netem));
        assert_eq!(f(None, None, Some("1%"), Some("1mbit")).qdisc(), Some(QdiscKind::Netem));
        assert_eq!(f(Some("1ms"), Some("1ms"), None, None).qdisc(), Some(QdiscKind::Netem));
        // Zero means none.
        let zero = f(Some("0ms"), None, Some("0%"), None);
        assert!(zero.is_empty(), "{zero:?}");
        assert_eq!(QdiscKind::from_name("netem"), Some(QdiscKind::Netem));
        assert_eq!(QdiscKind::from_name("noqueue"), None);
        assert_eq!(QdiscKind::Netem.module(), "sch_netem");
        assert_eq!(QdiscKind::Netem.config(), "CONFIG_NET_SCH_NETEM");
    }

    #[test]
    fn combinations_are_checked() {
        let e = Impairment::from_flags(None, Some("10ms"), None, None).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().starts_with("--jitter needs --delay"), "{e}");
        let e = Impairment::from_flags(Some("0ms"), Some("10ms"), None, None).unwrap_err();
        assert!(e.to_string().starts_with("--jitter needs --delay"), "{e}");
        let e = Impairment::from_flags(Some("5ms"), Some("10ms"), None, None).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().starts_with("--jitter 10ms is larger than --delay 5ms"), "{e}");
        // A jitter of zero is no jitter.
        assert!(Impairment::from_flags(None, Some("0ms"), None, None).unwrap().is_empty());
        // Built by hand, out of bounds.
        let far = Impairment { delay: Some(Duration::from_secs(61)), ..Impairment::default() };
        assert!(far.check().unwrap_err().to_string().contains("at most 60s"));
        let slow = Impairment { rate: Some(Rate(999)), ..Impairment::default() };
        assert!(slow.check().unwrap_err().to_string().starts_with("invalid --rate '7.992Kbit': at least 8Kbit"));
    }

    #[test]
    fn json_fields() {
        let imp = Impairment::from_flags(Some("100ms"), Some("10ms"), Some("1%"), Some("10mbit")).unwrap();
        let v = serde_json::to_value(imp).unwrap();
        assert_eq!(v["qdisc"], "netem");
        assert_eq!(v["delay_us"], 100_000);
        assert_eq!(v["jitter_us"], 10_000);
        assert_eq!(v["loss_percent"], 1.0, "{v}");
        assert_eq!(v["rate_bits_per_sec"], 10_000_000);
        let v = serde_json::to_value(Impairment::from_flags(None, None, None, Some("1mbit")).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"qdisc": "tbf", "delay_us": null, "jitter_us": null, "loss_percent": null, "rate_bits_per_sec": 1_000_000})
        );
    }
}
