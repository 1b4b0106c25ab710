//! Sets of values of one field: what the enforcement engine allows next.
//!
//! Numbers live on a grid: integers, or reals with a fixed number of decimals scaled to
//! integers (`0.004` with 3 decimals is 4).  A [`Grid`] set is a list of disjoint closed
//! ranges of grid points, optionally restricted to multiples of a step.  Categorical
//! fields use a bitmask over their choices.

use std::fmt;

/// Disjoint, sorted, closed ranges of grid points, restricted to multiples of `step`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Grid {
    ranges: Vec<(i128, i128)>,
    step: i128,
}

impl fmt::Debug for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grid{:?}", self.ranges)?;
        if self.step > 1 {
            write!(f, " step {}", self.step)?;
        }
        Ok(())
    }
}

fn ceil_to(x: i128, step: i128) -> i128 {
    -(-x).div_euclid(step) * step
}

fn floor_to(x: i128, step: i128) -> i128 {
    x.div_euclid(step) * step
}

impl Grid {
    pub fn empty(step: i128) -> Grid {
        Grid {
            ranges: vec![],
            step: step.max(1),
        }
    }

    /// All multiples of `step` in `[lo, hi]`.
    pub fn range(lo: i128, hi: i128, step: i128) -> Grid {
        let step = step.max(1);
        let (lo, hi) = (ceil_to(lo, step), floor_to(hi, step));
        Grid {
            ranges: if lo <= hi { vec![(lo, hi)] } else { vec![] },
            step,
        }
    }

    pub fn point(v: i128, step: i128) -> Grid {
        Grid::range(v, v, step)
    }

    pub fn step(&self) -> i128 {
        self.step
    }

    pub fn ranges(&self) -> &[(i128, i128)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, v: i128) -> bool {
        v.rem_euclid(self.step) == 0 && self.ranges.iter().any(|(a, b)| *a <= v && v <= *b)
    }

    /// Whether some member lies in `[lo, hi]`.
    pub fn meets(&self, lo: i128, hi: i128) -> bool {
        self.ranges.iter().any(|&(a, b)| {
            let (l, h) = (a.max(lo), b.min(hi));
            l <= h && ceil_to(l, self.step) <= h
        })
    }

    /// Some member (the smallest), if any.
    pub fn first(&self) -> Option<i128> {
        self.ranges.first().map(|r| r.0)
    }

    /// How many members (saturating).
    pub fn len(&self) -> u128 {
        self.ranges
            .iter()
            .map(|(a, b)| ((b - a) / self.step + 1) as u128)
            .fold(0, u128::saturating_add)
    }

    fn normalise(mut ranges: Vec<(i128, i128)>, step: i128) -> Grid {
        ranges.retain(|(a, b)| a <= b);
        ranges.sort_unstable();
        let mut out: Vec<(i128, i128)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(step) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Grid { ranges: out, step }
    }

    pub fn union(&self, other: &Grid) -> Grid {
        let ranges = self.ranges.iter().chain(&other.ranges).copied().collect();
        Grid::normalise(ranges, self.step.max(other.step))
    }

    pub fn intersect(&self, other: &Grid) -> Grid {
        let step = lcm(self.step, other.step);
        let mut out = Vec::new();
        for &(a, b) in &self.ranges {
            for &(c, d) in &other.ranges {
                let (lo, hi) = (ceil_to(a.max(c), step), floor_to(b.min(d), step));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        Grid::normalise(out, step)
    }

    /// The members of `within` that are not in `self`.
    pub fn complement_in(&self, within: &Grid) -> Grid {
        let mut out = Vec::new();
        for &(a, b) in &within.ranges {
            let mut cursor = a;
            for &(c, d) in &self.ranges {
                if d < cursor || c > b {
                    continue;
                }
                if c > cursor {
                    out.push((cursor, c - 1));
                }
                cursor = cursor.max(d.saturating_add(1));
            }
            if cursor <= b {
                out.push((cursor, b));
            }
        }
        let g = Grid::normalise(out, within.step);
        // Re-snap ends to the step.
        let ranges = g
            .ranges
            .iter()
            .map(|&(a, b)| (ceil_to(a, g.step), floor_to(b, g.step)))
            .collect();
        Grid::normalise(ranges, g.step)
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: i128, b: i128) -> i128 {
    (a / gcd(a, b).max(1)) * b
}

/// The grid points (scaled by `10^decimals`) whose text starts with `prefix`, as ranges
/// within `[lo, hi]`.  Texts are integers without leading zeros, or with `decimals > 0`
/// an integer part, `.` and exactly `decimals` digits.  `None` when no text of this shape
/// starts with `prefix`.
pub fn prefix_ranges(prefix: &str, decimals: u32, lo: i128, hi: i128) -> Option<Vec<(i128, i128)>> {
    let (negative, body) = match prefix.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, prefix),
    };
    let (int_part, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || frac.is_some_and(|f| !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if frac.is_some() && (decimals == 0 || int_part.is_empty()) {
        return None;
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        return None;
    }
    let scale = 10i128.checked_pow(decimals)?;
    let mag_hi = if negative { -lo } else { hi }.max(0);
    // Magnitudes (scaled) whose text starts with the body.
    let mut mags: Vec<(i128, i128)> = Vec::new();
    match frac {
        Some(f) => {
            if f.len() > decimals as usize {
                return None;
            }
            let i: i128 = int_part.parse().ok()?;
            let fv: i128 = if f.is_empty() { 0 } else { f.parse().ok()? };
            let unit = 10i128.pow(decimals - f.len() as u32);
            let base = i * scale + fv * unit;
            mags.push((base, base + unit - 1));
        }
        None if int_part.is_empty() => mags.push((0, mag_hi)),
        None if int_part == "0" => mags.push((0, scale - 1)),
        None => {
            let q: i128 = int_part.parse().ok()?;
            let mut width: i128 = 1;
            loop {
                let first = q.checked_mul(width)?;
                if first.checked_mul(scale).is_none_or(|f| f > mag_hi) {
                    break;
                }
                let last = first + width - 1;
                mags.push((first * scale, (last + 1) * scale - 1));
                match width.checked_mul(10) {
                    Some(w) => width = w,
                    None => break,
                }
            }
        }
    }
    let ranges: Vec<(i128, i128)> = if negative {
        // "-0…" texts: only "-0.x" with decimals; "-0" alone is not a number's text.
        mags.into_iter()
            .map(|(a, b)| (-b, -a))
            .filter(|(a, _)| *a < 0)
            .map(|(a, b)| (a, b.min(-1)))
            .collect()
    } else {
        mags
    };
    Some(
        ranges
            .into_iter()
            .map(|(a, b)| (a.max(lo), b.min(hi)))
            .filter(|(a, b)| a <= b)
            .collect(),
    )
}

/// Whether a grid set has a member whose text starts with `prefix`.
pub fn has_prefix(set: &Grid, prefix: &str, decimals: u32) -> bool {
    let Some((lo, hi)) = set
        .ranges
        .first()
        .zip(set.ranges.last())
        .map(|(a, b)| (a.0, b.1))
    else {
        return false;
    };
    prefix_ranges(prefix, decimals, lo, hi)
        .is_some_and(|rs| rs.iter().any(|&(a, b)| set.meets(a, b)))
}

/// The text of a grid point.
pub fn grid_text(k: i128, decimals: u32) -> String {
    if decimals == 0 {
        return k.to_string();
    }
    let scale = 10i128.pow(decimals);
    let sign = if k < 0 { "-" } else { "" };
    let m = k.abs();
    format!(
        "{sign}{}.{:0width$}",
        m / scale,
        m % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(set: &Grid, decimals: u32) -> Vec<String> {
        set.ranges
            .iter()
            .flat_map(|&(a, b)| (a..=b).filter(|k| k % set.step == 0))
            .map(|k| grid_text(k, decimals))
            .collect()
    }

    #[test]
    fn set_algebra() {
        let a = Grid::range(0, 10, 1);
        let b = Grid::range(5, 20, 1);
        assert_eq!(a.union(&b), Grid::range(0, 20, 1));
        assert_eq!(a.intersect(&b), Grid::range(5, 10, 1));
        assert_eq!(b.complement_in(&a), Grid::range(0, 4, 1));
        let evens = Grid::range(0, 20, 2);
        assert_eq!(evens.intersect(&Grid::range(3, 9, 1)), Grid::range(4, 8, 2));
        assert!(evens.meets(3, 4) && !evens.meets(3, 3));
        assert_eq!(
            Grid::range(1, 3, 1).union(&Grid::range(4, 6, 1)),
            Grid::range(1, 6, 1)
        );
    }

    /// Prefix queries agree with filtering every text.
    #[test]
    fn prefixes_match_text_filtering() {
        for decimals in [0, 1, 2] {
            let set = Grid::range(-250, 1234, 1).complement_in(&Grid::range(-300, 1300, 1));
            let all = Grid::range(-300, 1300, 1);
            let inside = texts(
                &Grid::range(-250, 1234, 1)
                    .complement_in(&all)
                    .complement_in(&all),
                decimals,
            );
            let _ = set;
            for prefix in [
                "", "-", "1", "12", "123", "0", "0.", "1.", "1.2", "-1", "-0.", "13", "9", "-2",
                "01",
            ] {
                let expected = inside.iter().any(|t| t.starts_with(prefix));
                let got = has_prefix(&Grid::range(-250, 1234, 1), prefix, decimals);
                assert_eq!(got, expected, "prefix `{prefix}` with {decimals} decimals");
            }
        }
    }

    #[test]
    fn grid_texts() {
        assert_eq!(grid_text(4, 3), "0.004");
        assert_eq!(grid_text(-15, 1), "-1.5");
        assert_eq!(grid_text(120, 0), "120");
    }
}
