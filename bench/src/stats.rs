//! Medians and number formatting.

/// The median (the mean of the middle two for an even count); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

/// Seconds as milliseconds with three significant digits (`0.412`, `4.12`, `41.2`, `412`).
pub fn ms(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    let ms = seconds * 1e3;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// A ratio such as `23.4×` (`-` if undefined).
pub fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "-".into()
    } else if r < 10.0 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1}×")
    }
}

/// Kilobytes as `1,234 kB`.
pub fn kb(kb: u64) -> String {
    let digits = kb.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} kB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn formats() {
        assert_eq!(ms(0.000_412_3), "0.412");
        assert_eq!(ms(0.004_123), "4.12");
        assert_eq!(ms(0.041_23), "41.2");
        assert_eq!(ms(0.4123), "412");
        assert_eq!(ratio(23.44), "23.4×");
        assert_eq!(ratio(1.234), "1.23×");
        assert_eq!(kb(1234), "1,234 kB");
        assert_eq!(kb(123), "123 kB");
    }
}
