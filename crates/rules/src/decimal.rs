//! Decimal arithmetic on doubles. AWS computes with decimals, so
//! `0.1 + 0.2` is `0.3` there while binary doubles give
//! `0.30000000000000004`. Each operand is taken at its shortest decimal
//! form (at most 17 digits), the operation is done exactly on integers
//! (`i128` coefficient, base-10 exponent), and the exact result is rounded
//! once to the nearest double. When the coefficients would overflow, the
//! plain double operation is the fallback.

/// `x = coefficient × 10^exponent`, from the shortest representation.
fn parts(x: f64) -> Option<(i128, i32)> {
    if !x.is_finite() {
        return None;
    }
    let text = format!("{x:e}");
    let (mantissa, exp) = text.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut coef: i128 = 0;
    for d in int.bytes().chain(frac.bytes()) {
        coef = coef * 10 + i128::from(d - b'0');
    }
    let frac_len = i32::try_from(frac.len()).ok()?;
    Some((if negative { -coef } else { coef }, exp - frac_len))
}

fn to_f64(coef: i128, exp: i32) -> f64 {
    format!("{coef}e{exp}").parse().unwrap_or(f64::NAN)
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Both coefficients scaled to the smaller exponent.
fn align(a: f64, b: f64) -> Option<(i128, i128, i32)> {
    let (ma, ea) = parts(a)?;
    let (mb, eb) = parts(b)?;
    let e = ea.min(eb);
    let ma = ma.checked_mul(pow10(u32::try_from(ea - e).ok()?)?)?;
    let mb = mb.checked_mul(pow10(u32::try_from(eb - e).ok()?)?)?;
    Some((ma, mb, e))
}

pub(crate) fn add(a: f64, b: f64) -> f64 {
    align(a, b)
        .and_then(|(ma, mb, e)| Some(to_f64(ma.checked_add(mb)?, e)))
        .unwrap_or(a + b)
}

pub(crate) fn sub(a: f64, b: f64) -> f64 {
    align(a, b)
        .and_then(|(ma, mb, e)| Some(to_f64(ma.checked_sub(mb)?, e)))
        .unwrap_or(a - b)
}

pub(crate) fn mul(a: f64, b: f64) -> f64 {
    let exact = || {
        let (ma, ea) = parts(a)?;
        let (mb, eb) = parts(b)?;
        Some(to_f64(ma.checked_mul(mb)?, ea.checked_add(eb)?))
    };
    exact().unwrap_or(a * b)
}

/// Remainder with the sign of the dividend (Java's `BigDecimal.remainder`);
/// NaN for a zero divisor.
pub(crate) fn rem(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return f64::NAN;
    }
    align(a, b)
        .and_then(|(ma, mb, e)| Some(to_f64(ma.checked_rem(mb)?, e)))
        .unwrap_or(a % b)
}

/// Quotient to at least 19 significant digits before the final rounding;
/// NaN for a zero divisor.
pub(crate) fn div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return f64::NAN;
    }
    let exact = || {
        let (ma, ea) = parts(a)?;
        let (mb, eb) = parts(b)?;
        let digits = ma.unsigned_abs().checked_ilog10().unwrap_or(0) + 1;
        let k = 36u32.saturating_sub(digits);
        let q = ma.checked_mul(pow10(k)?)?.checked_div(mb)?;
        let exp = ea.checked_sub(eb)?.checked_sub(i32::try_from(k).ok()?)?;
        Some(to_f64(q, exp))
    };
    exact().unwrap_or(a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_results_round_once() {
        assert_eq!(add(0.1, 0.2), 0.3);
        assert_eq!(sub(0.3, 0.1), 0.2);
        assert_eq!(mul(1.1, 1.1), 1.21);
        assert_eq!(div(0.3, 0.1), 3.0);
        assert_eq!(div(1.0, 3.0), 1.0 / 3.0);
        assert_eq!(rem(5.5, 2.0), 1.5);
        assert_eq!(rem(-5.5, 2.0), -1.5);
        assert!(div(1.0, 0.0).is_nan());
        assert!(rem(1.0, 0.0).is_nan());
        assert_eq!(add(1e300, 1e-300), 1e300);
        assert_eq!(mul(1e200, 1e200), f64::INFINITY);
    }
}
