//! Pure-Rust reference implementations of aggregation functions.
//!
//! These are the contracts that components are checked against: a component that
//! claims to compute one of these must return the same value, bit for bit, on the
//! same input.

/// Burstiness of a window: its peak-to-mean ratio, `max(values) / mean(values)`.
///
/// Contract:
/// - an empty list gives `0.0`;
/// - a list whose mean is `0` (an all-zero window of non-negative samples) gives `0.0`;
/// - otherwise the result is `max / mean`, with the sum accumulated left to right and
///   the mean taken as `sum / len`.  For non-negative samples that are not all zero
///   the result lies in `[1, len]`;
/// - a NaN anywhere in the input gives NaN (which the host then refuses as a result).
///
/// Components implementing burstiness (the hand-written WAT one and the Python one in
/// this crate's tests) follow exactly this evaluation order, so that their results are
/// identical, not merely close.
#[must_use]
pub fn burstiness(values: &[f64]) -> f64 {
    let Some(&first) = values.first() else {
        return 0.0;
    };
    let mut sum = 0.0_f64;
    let mut peak = first;
    for &v in values {
        sum += v;
        peak = max_like_wasm(peak, v);
    }
    // The length of any slice of f64 fits a f64 exactly up to 2^53 elements.
    #[allow(clippy::cast_precision_loss)]
    let mean = sum / values.len() as f64;
    if mean == 0.0 {
        return 0.0;
    }
    peak / mean
}

/// IEEE 754-2019 `maximum`, as WebAssembly's `f64.max`: NaN wins, and `+0` beats `-0`.
/// (`f64::max` instead ignores NaN, and may return either zero.)
fn max_like_wasm(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        // Equal: only the sign of a zero can differ.
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::burstiness;

    #[test]
    fn empty_and_all_zero_windows_are_zero() {
        assert_eq!(burstiness(&[]).to_bits(), 0.0_f64.to_bits());
        assert_eq!(burstiness(&[0.0; 50]).to_bits(), 0.0_f64.to_bits());
    }

    #[test]
    fn flat_window_is_one_and_single_spike_is_len() {
        assert_eq!(burstiness(&[7.0; 10]), 1.0);
        let mut spike = [0.0; 50];
        spike[17] = 1234.0;
        assert_eq!(burstiness(&spike), 50.0);
    }

    #[test]
    fn ordinary_window() {
        // max 4, mean 2.5
        assert_eq!(burstiness(&[1.0, 2.0, 3.0, 4.0]), 1.6);
    }

    #[test]
    fn max_follows_wasm_on_zeros() {
        assert!(super::max_like_wasm(-0.0, 0.0).is_sign_positive());
        assert!(super::max_like_wasm(0.0, -0.0).is_sign_positive());
        assert!(super::max_like_wasm(-0.0, -0.0).is_sign_negative());
        assert!(super::max_like_wasm(f64::NAN, 1.0).is_nan());
        assert!(super::max_like_wasm(1.0, f64::NAN).is_nan());
    }

    #[test]
    fn nan_propagates() {
        assert!(burstiness(&[1.0, f64::NAN, 3.0]).is_nan());
    }
}
