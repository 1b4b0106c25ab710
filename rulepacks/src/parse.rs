//! The text syntax of formulas: the reference implementation's query language.
//!
//! ```text
//! formula  := or (("->" | "<->") formula)?
//! or       := and ("OR" and)*
//! and      := unary ("AND" unary)*
//! unary    := "NOT" unary | ("FORALL" | "EXISTS") IDENT "IN" "{" ints "}" ":" formula
//!           | "(" formula ")" | "TRUE" | "FALSE" | term CMP term
//! term     := factor (("+" | "-") factor)*
//! factor   := atom (("*" | "/") atom)*
//! atom     := NUMBER | STRING | "-" atom | "(" term ")" | IDENT "[" (INT | IDENT | "*") "]"
//!           | IDENT "(" term ("," term)* ")" | IDENT
//! ```
//!
//! Keywords are case-insensitive.  A parenthesis at the start of a comparison may open
//! either a formula or a term (`(a + b) <= c`); the parser tries the formula first and
//! falls back to the term.  `MAX(family[*])` is an aggregate over a whole window family.

use crate::formula::{ArithOp, CmpOp, Formula, Func, Index, Term};
use crate::value::Value;

/// A formula text that does not parse, with the byte offset where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at character {offset} of `{text}`: {message}")]
pub struct ParseError {
    pub text: String,
    pub offset: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Arrow,
    Iff,
    Cmp(CmpOp),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Comma,
    Colon,
    Arith(ArithOp),
    Int(i64),
    Real(f64),
    Str(String),
    Ident(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Arrow => "`->`".into(),
            Tok::Iff => "`<->`".into(),
            Tok::Cmp(op) => format!("`{op}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LBrack => "`[`".into(),
            Tok::RBrack => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Arith(op) => format!("`{}`", op.symbol()),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Real(r) => format!("`{r}`"),
            Tok::Str(s) => format!("`'{s}'`"),
            Tok::Ident(s) => format!("`{s}`"),
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }
}

const KEYWORDS: [&str; 8] = [
    "and", "or", "not", "forall", "exists", "in", "true", "false",
];

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, message: String| ParseError {
        text: text.into(),
        offset,
        message,
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text.get(i..i + 3) == Some("<->") {
            out.push((start, Tok::Iff));
            i += 3;
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let tok = match two {
            "->" => Some(Tok::Arrow),
            ">=" => Some(Tok::Cmp(CmpOp::Ge)),
            "<=" => Some(Tok::Cmp(CmpOp::Le)),
            "!=" => Some(Tok::Cmp(CmpOp::Ne)),
            "==" => Some(Tok::Cmp(CmpOp::Eq)),
            _ => None,
        };
        if let Some(tok) = tok {
            out.push((start, tok));
            i += 2;
            continue;
        }
        let single = match c {
            b'>' => Some(Tok::Cmp(CmpOp::Gt)),
            b'<' => Some(Tok::Cmp(CmpOp::Lt)),
            b'=' => Some(Tok::Cmp(CmpOp::Eq)),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b'[' => Some(Tok::LBrack),
            b']' => Some(Tok::RBrack),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            b'+' => Some(Tok::Arith(ArithOp::Add)),
            b'-' => Some(Tok::Arith(ArithOp::Sub)),
            b'*' => Some(Tok::Arith(ArithOp::Mul)),
            b'/' => Some(Tok::Arith(ArithOp::Div)),
            _ => None,
        };
        if let Some(tok) = single {
            out.push((start, tok));
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let mut real = false;
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                real = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let lit = &text[start..i];
            let tok = if real {
                Tok::Real(
                    lit.parse()
                        .map_err(|_| err(start, format!("bad number `{lit}`")))?,
                )
            } else {
                Tok::Int(
                    lit.parse()
                        .map_err(|_| err(start, format!("number `{lit}` is too large")))?,
                )
            };
            out.push((start, tok));
            continue;
        }
        if c == b'\'' || c == b'"' {
            let Some(len) = text[i + 1..].find(c as char) else {
                return Err(err(start, "unterminated string".into()));
            };
            out.push((start, Tok::Str(text[i + 1..i + 1 + len].to_owned())));
            i += len + 2;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
            out.push((start, Tok::Ident(text[start..i].to_owned())));
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or('?');
        return Err(err(start, format!("unexpected character `{ch}`")));
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of formulas and terms a text may have.
const MAX_DEPTH: usize = 100;
/// Most operators in one chain (`a + b + …`), each of which nests the term one level.
const MAX_CHAIN: usize = 1000;

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |(o, _)| *o)
    }

    fn error<T>(&self, expected: &str) -> PResult<T> {
        let found = self.peek().map_or("the end".to_owned(), Tok::describe);
        Err(ParseError {
            text: self.text.into(),
            offset: self.offset(),
            message: format!("expected {expected}, found {found}"),
        })
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> PResult<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            self.error(expected)
        }
    }

    fn formula(&mut self) -> PResult<Formula> {
        self.enter()?;
        let f = self.formula_inner();
        self.depth -= 1;
        f
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return self.error(&format!("less nesting (at most {MAX_DEPTH} levels)"));
        }
        Ok(())
    }

    fn formula_inner(&mut self) -> PResult<Formula> {
        let left = self.or()?;
        if self.eat(&Tok::Arrow) {
            let right = self.formula()?;
            return Ok(Formula::implies(left, right));
        }
        if self.eat(&Tok::Iff) {
            let right = self.formula()?;
            return Ok(Formula::all(vec![
                Formula::implies(left.clone(), right.clone()),
                Formula::implies(right, left),
            ]));
        }
        Ok(left)
    }

    fn or(&mut self) -> PResult<Formula> {
        let mut values = vec![self.and()?];
        while self.eat_keyword("or") {
            values.push(self.and()?);
        }
        Ok(Formula::any(values))
    }

    fn and(&mut self) -> PResult<Formula> {
        let mut values = vec![self.unary()?];
        while self.eat_keyword("and") {
            values.push(self.unary()?);
        }
        Ok(Formula::all(values))
    }

    fn unary(&mut self) -> PResult<Formula> {
        if self.eat_keyword("not") {
            self.enter()?;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(Formula::negate(inner?));
        }
        if self
            .peek()
            .is_some_and(|t| t.is_keyword("forall") || t.is_keyword("exists"))
        {
            return self.quantified();
        }
        if self.eat_keyword("true") {
            return Ok(Formula::Bool { value: true });
        }
        if self.eat_keyword("false") {
            return Ok(Formula::Bool { value: false });
        }
        if self.peek() == Some(&Tok::LParen) {
            let save = self.pos;
            self.pos += 1;
            let nested = self.formula().and_then(|f| {
                self.expect(&Tok::RParen, "`)`")?;
                Ok(f)
            });
            match nested {
                // `(a + b) <= c`: the parenthesis opened a term, not a formula.
                Ok(f) if !matches!(self.peek(), Some(Tok::Cmp(_) | Tok::Arith(_))) => return Ok(f),
                Ok(_) => self.pos = save,
                Err(e) => {
                    // Report whichever reading got further into the text.
                    self.pos = save;
                    return self
                        .comparison()
                        .map_err(|e2| if e.offset >= e2.offset { e } else { e2 });
                }
            }
        }
        self.comparison()
    }

    fn quantified(&mut self) -> PResult<Formula> {
        let forall = self.peek().is_some_and(|t| t.is_keyword("forall"));
        self.pos += 1;
        let variable = match self.peek() {
            Some(Tok::Ident(name)) if !is_keyword(name) => name.clone(),
            _ => return self.error("a variable name"),
        };
        self.pos += 1;
        if !self.eat_keyword("in") {
            return self.error("`IN`");
        }
        self.expect(&Tok::LBrace, "`{`")?;
        let mut domain = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Int(i)) if *i >= 0 && *i <= i64::from(u32::MAX) => domain.push(*i as u32),
                _ => return self.error("a window position (a non-negative integer)"),
            }
            self.pos += 1;
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RBrace, "`}` or `,`")?;
        self.expect(&Tok::Colon, "`:`")?;
        let body = Box::new(self.formula()?);
        Ok(if forall {
            Formula::Forall {
                variable,
                domain,
                body,
            }
        } else {
            Formula::Exists {
                variable,
                domain,
                body,
            }
        })
    }

    fn comparison(&mut self) -> PResult<Formula> {
        let left = self.term()?;
        let op = match self.peek() {
            Some(Tok::Cmp(op)) => *op,
            _ => return self.error("a comparison operator (=, !=, <, <=, >, >=)"),
        };
        self.pos += 1;
        let right = self.term()?;
        Ok(Formula::compare(op, left, right))
    }

    fn term(&mut self) -> PResult<Term> {
        self.enter()?;
        let t = self.term_inner();
        self.depth -= 1;
        t
    }

    fn term_inner(&mut self) -> PResult<Term> {
        let mut node = self.factor()?;
        let mut ops = 0;
        while let Some(Tok::Arith(op @ (ArithOp::Add | ArithOp::Sub))) = self.peek() {
            let op = *op;
            ops += 1;
            if ops > MAX_CHAIN {
                return self.error(&format!(
                    "fewer operators in one term (at most {MAX_CHAIN})"
                ));
            }
            self.pos += 1;
            node = Term::binary(op, node, self.factor()?);
        }
        Ok(node)
    }

    fn factor(&mut self) -> PResult<Term> {
        let mut node = self.atom()?;
        let mut ops = 0;
        while let Some(Tok::Arith(op @ (ArithOp::Mul | ArithOp::Div))) = self.peek() {
            let op = *op;
            ops += 1;
            if ops > MAX_CHAIN {
                return self.error(&format!(
                    "fewer operators in one term (at most {MAX_CHAIN})"
                ));
            }
            self.pos += 1;
            node = Term::binary(op, node, self.atom()?);
        }
        Ok(node)
    }

    fn atom(&mut self) -> PResult<Term> {
        let Some(tok) = self.peek().cloned() else {
            return self.error("a term");
        };
        self.pos += 1;
        match tok {
            Tok::Int(i) => Ok(Term::constant(i)),
            Tok::Real(r) => Ok(Term::constant(r)),
            Tok::Str(s) => Ok(Term::constant(Value::Str(s))),
            Tok::Arith(ArithOp::Sub) => match self.peek() {
                Some(Tok::Int(i)) => {
                    let v = -*i;
                    self.pos += 1;
                    Ok(Term::constant(v))
                }
                Some(Tok::Real(r)) => {
                    let v = -*r;
                    self.pos += 1;
                    Ok(Term::constant(v))
                }
                _ => Ok(Term::binary(ArithOp::Mul, Term::constant(-1), self.atom()?)),
            },
            Tok::LParen => {
                let inner = self.term()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Ident(name) if !is_keyword(&name) => self.after_ident(name),
            _ => {
                self.pos -= 1;
                self.error("a term")
            }
        }
    }

    fn after_ident(&mut self, name: String) -> PResult<Term> {
        if self.eat(&Tok::LBrack) {
            let index = match self.peek().cloned() {
                Some(Tok::Int(i)) if i >= 0 && i <= i64::from(u32::MAX) => {
                    Index::Position(i as u32)
                }
                Some(Tok::Ident(v)) if !is_keyword(&v) => Index::Variable(v),
                Some(Tok::Arith(ArithOp::Mul)) => {
                    self.pos += 1;
                    self.expect(&Tok::RBrack, "`]`")?;
                    return self.error("a function around the whole family, as in `MAX(name[*])`");
                }
                _ => return self.error("a window position or a variable"),
            };
            self.pos += 1;
            self.expect(&Tok::RBrack, "`]`")?;
            return Ok(Term::Indexed { base: name, index });
        }
        if self.peek() != Some(&Tok::LParen) {
            return Ok(Term::symbol(name));
        }
        let func = Func::parse(&name);
        self.pos += 1;
        if let (Some(Tok::Ident(family)), Some(Tok::LBrack), Some(Tok::Arith(ArithOp::Mul))) = (
            self.toks.get(self.pos).map(|t| &t.1),
            self.toks.get(self.pos + 1).map(|t| &t.1),
            self.toks.get(self.pos + 2).map(|t| &t.1),
        ) {
            let family = family.clone();
            self.pos += 3;
            self.expect(&Tok::RBrack, "`]`")?;
            self.expect(&Tok::RParen, "`)`")?;
            return Ok(match func {
                Some(function) => Term::Aggregate { function, family },
                // Any other name is a user function, bound when the pack is loaded.
                None => Term::User {
                    function: name,
                    family: Some(family),
                    args: Vec::new(),
                },
            });
        }
        let mut args = vec![self.term()?];
        while self.eat(&Tok::Comma) {
            args.push(self.term()?);
        }
        self.expect(&Tok::RParen, "`,` or `)`")?;
        Ok(match func {
            Some(func) => Term::call(func, args),
            None => Term::User {
                function: name,
                family: None,
                args,
            },
        })
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses a formula from its text.
pub fn parse_formula(text: &str) -> Result<Formula, ParseError> {
    let toks = tokenize(text)?;
    let mut parser = Parser {
        text,
        toks,
        pos: 0,
        depth: 0,
    };
    if parser.peek().is_none() {
        return parser.error("a formula");
    }
    let formula = parser.formula()?;
    if parser.pos != parser.toks.len() {
        return parser.error("the end of the formula");
    }
    Ok(formula)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Formula {
        let f = parse_formula(text).unwrap_or_else(|e| panic!("{e}"));
        let again = parse_formula(&f.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f, again, "rendering `{f}` did not parse back");
        f
    }

    #[test]
    fn parses_reference_queries() {
        round_trip("Packets * 65535 >= Bytes");
        round_trip("(DstPt = 138) -> ((DstIpAddr = 1) AND (Flags = 0) AND (Proto = 1))");
        round_trip("MOD(tcp.hdr_len_ctx2, 4) = 0");
        round_trip("NOT ((tcp.flags_ctx0 = 1) OR (tcp.flags_ctx0 = 2))");
        round_trip("forall k in {0, 1, 2}: tcp.len[k] >= 0");
        round_trip("x = 'TCP' or y != \"a b\"");
        round_trip("TRUE -> FALSE");
        let iff = round_trip("a = 1 <-> b = 2");
        assert!(matches!(iff, Formula::And { ref values } if values.len() == 2));
        round_trip("Duration <= 0.5 and Duration >= -1");
    }

    #[test]
    fn a_parenthesis_may_open_a_term() {
        let f = round_trip("(a + b) <= c");
        assert!(matches!(f, Formula::Compare { op: CmpOp::Le, .. }));
        round_trip("((a + b) * 2) = c AND (d = 1)");
    }

    #[test]
    fn aggregates_over_families() {
        let f = round_trip("SUM(IngressBytes[*]) = IngressBytesAgg");
        let Formula::Compare {
            left: Term::Aggregate { function, family },
            ..
        } = f
        else {
            panic!("not an aggregate");
        };
        assert_eq!((function, family.as_str()), (Func::Sum, "IngressBytes"));
    }

    #[test]
    fn implication_is_right_associative() {
        let f = parse_formula("a = 1 -> b = 2 -> c = 3").unwrap();
        let Formula::Implies { right, .. } = f else {
            panic!()
        };
        assert!(matches!(*right, Formula::Implies { .. }));
    }

    #[test]
    fn errors_say_where() {
        let e = parse_formula("a = 1 AND").unwrap_err();
        assert_eq!(e.offset, 9);
        assert!(e.message.contains("expected a term"), "{e}");
        let e = parse_formula("a ? 1").unwrap_err();
        assert!(e.message.contains("unexpected character `?`"), "{e}");
        let e = parse_formula("a 1").unwrap_err();
        assert!(e.message.contains("comparison operator"), "{e}");
        // Other names are user functions, bound (or refused) when resolved.
        let f = parse_formula("FOO(a) = 1").unwrap();
        assert_eq!(f.to_string(), "FOO(a) = 1");
        let f = parse_formula("burstiness(IngressBytes1ms[*]) <= 14.5").unwrap();
        assert_eq!(f.to_string(), "burstiness(IngressBytes1ms[*]) <= 14.5");
        assert!(parse_formula("").is_err());
        let deep = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(
            parse_formula(&deep)
                .unwrap_err()
                .message
                .contains("less nesting")
        );
        let nots = format!("{}a = 1", "NOT ".repeat(100_000));
        assert!(
            parse_formula(&nots)
                .unwrap_err()
                .message
                .contains("less nesting")
        );
        let chain = format!("{} = 1", vec!["a"; 100_000].join(" + "));
        assert!(
            parse_formula(&chain)
                .unwrap_err()
                .message
                .contains("fewer operators")
        );
        let arrows = format!("{}a = 1", "a = 1 -> ".repeat(20_000));
        assert!(
            parse_formula(&arrows)
                .unwrap_err()
                .message
                .contains("less nesting")
        );
        let e = parse_formula("(Proto = UDP").unwrap_err();
        assert!(e.message.contains("expected `)`") && e.offset == 12, "{e}");
        assert!(parse_formula("(a = 1").is_err());
    }
}
