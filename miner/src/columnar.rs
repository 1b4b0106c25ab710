//! Evaluation of resolved formulas over a block of records at once.
//!
//! A term evaluates to a lane of values for the whole block: integers as `i128` (exact,
//! with overflow moving the lane to exact rationals), reals as `f64`, text as interned ids.
//! A comparison turns two lanes into bits.  This is the miner's hot loop: evidence for a
//! million records and a few hundred predicates is a few hundred million comparisons.

use rulepacks::eval::apply;
use rulepacks::resolve::{Expr, Prop};
use rulepacks::{ArithOp, CmpOp, Func, Num, Value};

use crate::bitset::words_for;
use crate::prepare::Dataset;
use crate::table::ColumnData;

enum Lane {
    Int(Vec<i128>),
    Real(Vec<f64>),
    Exact(Vec<Num>),
    Text(Vec<u32>),
}

impl Lane {
    fn nums(self) -> Vec<Num> {
        match self {
            Lane::Int(v) => v.into_iter().map(Num::Int).collect(),
            Lane::Real(v) => v.into_iter().map(Num::Real).collect(),
            Lane::Exact(v) => v,
            Lane::Text(v) => v.into_iter().map(|_| Num::Real(f64::NAN)).collect(),
        }
    }

    fn reals(self) -> Vec<f64> {
        match self {
            Lane::Int(v) => v.into_iter().map(|x| x as f64).collect(),
            Lane::Real(v) => v,
            Lane::Exact(v) => v.into_iter().map(Num::to_f64).collect(),
            Lane::Text(v) => vec![f64::NAN; v.len()],
        }
    }
}

/// Evaluates formulas over blocks of `dataset`'s records.
#[derive(Debug)]
pub struct Evaluator<'a> {
    dataset: &'a Dataset,
}

impl<'a> Evaluator<'a> {
    pub fn new(dataset: &'a Dataset) -> Self {
        Evaluator { dataset }
    }

    /// Truth of `prop` on records `start..start + n`, as bits (one word per 64 records).
    pub fn prop(&self, prop: &Prop, start: usize, n: usize) -> Vec<u64> {
        match prop {
            Prop::Const(b) => pack(&vec![*b; n]),
            Prop::Cmp(op, l, r) => {
                let (a, b) = (self.expr(l, start, n), self.expr(r, start, n));
                pack(&compare(*op, a, b))
            }
            Prop::Not(p) => {
                let mut w = self.prop(p, start, n);
                w.iter_mut().for_each(|x| *x = !*x);
                trim(&mut w, n);
                w
            }
            Prop::And(ps) | Prop::Or(ps) => {
                let and = matches!(prop, Prop::And(_));
                let mut acc = if and {
                    vec![u64::MAX; words_for(n)]
                } else {
                    vec![0; words_for(n)]
                };
                for p in ps {
                    let w = self.prop(p, start, n);
                    acc.iter_mut()
                        .zip(w)
                        .for_each(|(a, b)| if and { *a &= b } else { *a |= b });
                }
                trim(&mut acc, n);
                acc
            }
        }
    }

    fn expr(&self, e: &Expr, start: usize, n: usize) -> Lane {
        match e {
            Expr::Const(v) => match v {
                Value::Bool(b) => Lane::Int(vec![i128::from(*b); n]),
                Value::Int(i) => Lane::Int(vec![i128::from(*i); n]),
                Value::Real(r) => Lane::Real(vec![*r; n]),
                Value::Str(s) => {
                    Lane::Text(vec![self.dataset.strings.get(s).unwrap_or(u32::MAX); n])
                }
            },
            Expr::Field(id) => match &self.dataset.columns[id.index()] {
                ColumnData::Int(v) => {
                    Lane::Int(v[start..start + n].iter().map(|x| i128::from(*x)).collect())
                }
                ColumnData::Real(v) => Lane::Real(v[start..start + n].to_vec()),
                ColumnData::Text(v) => Lane::Text(v[start..start + n].to_vec()),
            },
            Expr::Arith(op, l, r) => arith(*op, self.expr(l, start, n), self.expr(r, start, n)),
            Expr::Func(f, args) => {
                let lanes: Vec<Lane> = args.iter().map(|a| self.expr(a, start, n)).collect();
                func(*f, lanes, n)
            }
            // A user function, record by record.  A record it fails on gets NaN, which
            // satisfies no comparison but `!=`; derived fields that call functions are
            // computed (and their failures reported) when the data is prepared.
            Expr::User(call) => {
                let cols: Vec<Vec<f64>> = call
                    .args
                    .iter()
                    .map(|a| self.expr(a, start, n).reals())
                    .collect();
                Lane::Real(
                    (0..n)
                        .map(|i| {
                            let args: Vec<f64> = cols.iter().map(|c| c[i]).collect();
                            call.function.call(call.over, &args).unwrap_or(f64::NAN)
                        })
                        .collect(),
                )
            }
        }
    }
}

fn arith(op: ArithOp, a: Lane, b: Lane) -> Lane {
    match (a, b) {
        (Lane::Int(x), Lane::Int(y)) if op != ArithOp::Div => {
            let f = match op {
                ArithOp::Add => i128::checked_add,
                ArithOp::Sub => i128::checked_sub,
                _ => i128::checked_mul,
            };
            let out: Option<Vec<i128>> = x.iter().zip(&y).map(|(p, q)| f(*p, *q)).collect();
            match out {
                Some(v) => Lane::Int(v),
                None => exact(op, Lane::Int(x).nums(), Lane::Int(y).nums()),
            }
        }
        (a @ Lane::Real(_), b) | (a, b @ Lane::Real(_)) => {
            let (x, y) = (a.reals(), b.reals());
            Lane::Real(
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| match op {
                        ArithOp::Add => p + q,
                        ArithOp::Sub => p - q,
                        ArithOp::Mul => p * q,
                        ArithOp::Div => p / q,
                    })
                    .collect(),
            )
        }
        (a, b) => exact(op, a.nums(), b.nums()),
    }
}

fn exact(op: ArithOp, x: Vec<Num>, y: Vec<Num>) -> Lane {
    Lane::Exact(
        x.into_iter()
            .zip(y)
            .map(|(p, q)| {
                let r = match op {
                    ArithOp::Add => p.checked_add(q),
                    ArithOp::Sub => p.checked_sub(q),
                    ArithOp::Mul => p.checked_mul(q),
                    ArithOp::Div => p.checked_div(q),
                };
                r.unwrap_or(Num::Real(f64::NAN))
            })
            .collect(),
    )
}

fn func(f: Func, lanes: Vec<Lane>, n: usize) -> Lane {
    if f != Func::Avg && lanes.iter().all(|l| matches!(l, Lane::Int(_))) {
        let cols: Vec<&[i128]> = lanes
            .iter()
            .map(|l| match l {
                Lane::Int(v) => v.as_slice(),
                _ => &[],
            })
            .collect();
        let ints: Option<Vec<i128>> = (0..n)
            .map(|i| {
                let mut it = cols.iter().map(|c| c[i]);
                let first = it.next().unwrap_or(0);
                match f {
                    Func::Min => Some(it.fold(first, i128::min)),
                    Func::Max => Some(it.fold(first, i128::max)),
                    Func::Sum => it.try_fold(first, i128::checked_add),
                    _ => Some(first.rem_euclid(cols[1][i].max(1))),
                }
            })
            .collect();
        if let Some(v) = ints {
            return Lane::Int(v);
        }
    }
    let cols: Vec<Vec<Num>> = lanes.into_iter().map(Lane::nums).collect();
    Lane::Exact(
        (0..n)
            .map(|i| {
                let args: Vec<Num> = cols.iter().map(|c| c[i]).collect();
                apply(f, &args).unwrap_or(Num::Real(f64::NAN))
            })
            .collect(),
    )
}

fn compare(op: CmpOp, a: Lane, b: Lane) -> Vec<bool> {
    match (a, b) {
        (Lane::Int(x), Lane::Int(y)) => x.iter().zip(&y).map(|(p, q)| op.holds(p.cmp(q))).collect(),
        (Lane::Text(x), Lane::Text(y)) => x
            .iter()
            .zip(&y)
            .map(|(p, q)| op.holds(p.cmp(q)) && op.holds_eq_only())
            .collect(),
        (Lane::Real(x), b) => reals_cmp(op, &x, &b.reals()),
        (a, Lane::Real(y)) => reals_cmp(op, &a.reals(), &y),
        (a, b) => a
            .nums()
            .iter()
            .zip(b.nums())
            .map(|(p, q)| p.cmp_num(&q).map_or(op == CmpOp::Ne, |o| op.holds(o)))
            .collect(),
    }
}

fn reals_cmp(op: CmpOp, x: &[f64], y: &[f64]) -> Vec<bool> {
    x.iter()
        .zip(y)
        .map(|(p, q)| p.partial_cmp(q).map_or(op == CmpOp::Ne, |o| op.holds(o)))
        .collect()
}

trait EqOnly {
    /// Text compares for equality only: its ids carry no order.
    fn holds_eq_only(self) -> bool;
}

impl EqOnly for CmpOp {
    fn holds_eq_only(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

fn pack(bits: &[bool]) -> Vec<u64> {
    let mut words = vec![0u64; words_for(bits.len())];
    for (i, b) in bits.iter().enumerate() {
        if *b {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    words
}

fn trim(words: &mut [u64], n: usize) {
    let rem = n % 64;
    if rem != 0
        && let Some(last) = words.last_mut()
    {
        *last &= (1u64 << rem) - 1;
    }
}
