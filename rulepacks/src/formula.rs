//! Typed rule formulas.
//!
//! The JSON shape is the one of the reference implementation's `rules.json` (`kind`-tagged
//! nodes: `compare`, `and`, `or`, `not`, `implies`, `bool`, `forall`, `exists`; terms
//! `constant`, `symbol`, `indexed`, `binary`, `call`), so that formulas move between the two
//! tools unchanged.  One node is ours: `aggregate` applies MIN/MAX/SUM/AVG to a whole window
//! family by name instead of listing its members.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::value::Value;

/// A comparison operator.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum CmpOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn parse(text: &str) -> Option<CmpOp> {
        CmpOp::ALL.into_iter().find(|op| op.symbol() == text)
    }

    /// Whether the operator needs ordered (numeric) operands.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// The operator that holds exactly when this one does not.
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ArithOp {
    #[serde(rename = "+")]
    Add,
    #[serde(rename = "-")]
    Sub,
    #[serde(rename = "*")]
    Mul,
    #[serde(rename = "/")]
    Div,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// A function of terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Func {
    Min,
    Max,
    Sum,
    Avg,
    /// The remainder of the first argument divided by the second (a positive integer).
    Mod,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Min => "MIN",
            Func::Max => "MAX",
            Func::Sum => "SUM",
            Func::Avg => "AVG",
            Func::Mod => "MOD",
        }
    }

    pub fn parse(name: &str) -> Option<Func> {
        match name.to_ascii_lowercase().as_str() {
            "min" => Some(Func::Min),
            "max" => Some(Func::Max),
            "sum" => Some(Func::Sum),
            "avg" | "mean" => Some(Func::Avg),
            "mod" => Some(Func::Mod),
            _ => None,
        }
    }
}

/// The index of an indexed reference: a window position, or a quantified variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Index {
    Position(u32),
    Variable(String),
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Index::Position(p) => write!(f, "{p}"),
            Index::Variable(v) => f.write_str(v),
        }
    }
}

/// A term: something with a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Term {
    Constant {
        value: Value,
    },
    /// A field of the record, by name.
    Symbol {
        name: String,
    },
    /// A member of a window family: `base[index]`.
    Indexed {
        base: String,
        index: Index,
    },
    Binary {
        op: ArithOp,
        left: Box<Term>,
        right: Box<Term>,
    },
    Call {
        name: Func,
        args: Vec<Term>,
    },
    /// A function applied to every member of a window family.
    Aggregate {
        function: Func,
        family: String,
    },
    /// A user function (a WebAssembly component embedded in the pack), over a window
    /// family — `burstiness(IngressBytes1ms[*])` — or over terms — `classify(SrcPt, DstPt)`.
    User {
        function: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<Term>,
    },
}

impl Term {
    pub fn constant(value: impl Into<Value>) -> Term {
        Term::Constant {
            value: value.into(),
        }
    }

    pub fn symbol(name: impl Into<String>) -> Term {
        Term::Symbol { name: name.into() }
    }

    pub fn binary(op: ArithOp, left: Term, right: Term) -> Term {
        Term::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    pub fn call(name: Func, args: Vec<Term>) -> Term {
        Term::Call { name, args }
    }

    /// Calls `f` on every field name the term mentions directly.
    pub fn visit_symbols<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            Term::Symbol { name } => f(name),
            Term::Binary { left, right, .. } => {
                left.visit_symbols(f);
                right.visit_symbols(f);
            }
            Term::Call { args, .. } | Term::User { args, .. } => {
                args.iter().for_each(|a| a.visit_symbols(f));
            }
            Term::Constant { .. } | Term::Indexed { .. } | Term::Aggregate { .. } => {}
        }
    }
}

/// A formula: something true or false of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Formula {
    Compare {
        op: CmpOp,
        left: Term,
        right: Term,
    },
    Bool {
        value: bool,
    },
    Not {
        value: Box<Formula>,
    },
    And {
        values: Vec<Formula>,
    },
    Or {
        values: Vec<Formula>,
    },
    Implies {
        left: Box<Formula>,
        right: Box<Formula>,
    },
    /// The body holds for every window position in `domain`.
    Forall {
        variable: String,
        domain: Vec<u32>,
        body: Box<Formula>,
    },
    /// The body holds for some window position in `domain`.
    Exists {
        variable: String,
        domain: Vec<u32>,
        body: Box<Formula>,
    },
}

impl Formula {
    pub fn compare(op: CmpOp, left: Term, right: Term) -> Formula {
        Formula::Compare { op, left, right }
    }

    pub fn negate(value: Formula) -> Formula {
        Formula::Not {
            value: Box::new(value),
        }
    }

    pub fn implies(left: Formula, right: Formula) -> Formula {
        Formula::Implies {
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    /// A disjunction, or its only member.
    pub fn any(mut values: Vec<Formula>) -> Formula {
        if values.len() == 1 {
            values.remove(0)
        } else {
            Formula::Or { values }
        }
    }

    /// A conjunction, or its only member.
    pub fn all(mut values: Vec<Formula>) -> Formula {
        if values.len() == 1 {
            values.remove(0)
        } else {
            Formula::And { values }
        }
    }

    /// Calls `f` on every term of every comparison.
    pub fn visit_terms<'a>(&'a self, f: &mut impl FnMut(&'a Term)) {
        match self {
            Formula::Compare { left, right, .. } => {
                f(left);
                f(right);
            }
            Formula::Bool { .. } => {}
            Formula::Not { value } => value.visit_terms(f),
            Formula::And { values } | Formula::Or { values } => {
                values.iter().for_each(|v| v.visit_terms(f));
            }
            Formula::Implies { left, right } => {
                left.visit_terms(f);
                right.visit_terms(f);
            }
            Formula::Forall { body, .. } | Formula::Exists { body, .. } => body.visit_terms(f),
        }
    }
}

// Rendering in the reference query syntax.  Every rendering parses back to an equal formula
// (see `parse`), which the tests check.

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Constant { value } => write!(f, "{value}"),
            Term::Symbol { name } => f.write_str(name),
            Term::Indexed { base, index } => write!(f, "{base}[{index}]"),
            Term::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Term::Call { name, args } => {
                write!(f, "{}(", name.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Term::Aggregate { function, family } => write!(f, "{}({family}[*])", function.name()),
            Term::User {
                function,
                family: Some(family),
                ..
            } => write!(f, "{function}({family}[*])"),
            Term::User { function, args, .. } => {
                write!(f, "{function}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Formula::Compare { op, left, right } => write!(f, "{left} {op} {right}"),
            Formula::Bool { value } => f.write_str(if *value { "TRUE" } else { "FALSE" }),
            Formula::Not { value } => write!(f, "NOT ({value})"),
            Formula::And { values } => join(f, values, " AND "),
            Formula::Or { values } => join(f, values, " OR "),
            Formula::Implies { left, right } => write!(f, "({left}) -> ({right})"),
            Formula::Forall {
                variable,
                domain,
                body,
            } => quantified(f, "FORALL", variable, domain, body),
            Formula::Exists {
                variable,
                domain,
                body,
            } => quantified(f, "EXISTS", variable, domain, body),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, values: &[Formula], sep: &str) -> fmt::Result {
    if values.is_empty() {
        // An empty conjunction is true and an empty disjunction false.
        return f.write_str(if sep == " AND " { "TRUE" } else { "FALSE" });
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "({v})")?;
    }
    Ok(())
}

fn quantified(
    f: &mut fmt::Formatter<'_>,
    word: &str,
    variable: &str,
    domain: &[u32],
    body: &Formula,
) -> fmt::Result {
    let domain: Vec<String> = domain.iter().map(u32::to_string).collect();
    write!(
        f,
        "{word} {variable} IN {{{}}}: ({body})",
        domain.join(", ")
    )
}
