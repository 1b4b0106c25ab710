//! Random decoding under a mask, for tests and benchmarks: a vocabulary like the trainer's,
//! and a seeded choice among the allowed tokens, so that the mask does all the work.

use plugin::compiled::Compiled;
use plugin::engine::Vocab;
use rulepacks::record::Spelling;

/// The end-of-sequence token of [`vocab`].
pub const EOS: usize = 1;

/// A vocabulary of whole field names, whole categorical values, single digits, `.`, `-`
/// and the separator, like the trainer's; token 0 is BOS and 1 is EOS.
pub fn vocab(c: &Compiled) -> Vocab {
    let mut texts: Vec<Option<String>> = vec![None, None];
    let mut push = |t: String| {
        if !texts.contains(&Some(t.clone())) {
            texts.push(Some(t));
        }
    };
    for s in c.format.slots() {
        push(format!("{}=", s.name));
        if let Spelling::Choice(choices) = &s.spelling {
            for (t, _) in choices {
                push(t.clone());
            }
        }
    }
    for t in [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", "-", " ",
    ] {
        push(t.to_owned());
    }
    Vocab {
        texts,
        eos: vec![EOS as u32],
    }
}

/// Uniform choices among allowed tokens from a seeded xorshift generator.
#[derive(Debug)]
pub struct RandomChoice(u64);

impl RandomChoice {
    pub fn new(seed: u64) -> RandomChoice {
        RandomChoice(seed.max(1))
    }

    fn below(&mut self, k: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % k as u64) as usize
    }

    /// A token `mask` allows, ending the value (separator or EOS) half the time when it
    /// may, so numbers stay short; `None` when nothing is allowed (a dead end).
    pub fn pick(&mut self, mask: &[bool], vocab: &Vocab) -> Option<usize> {
        let allowed: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        if allowed.is_empty() {
            return None;
        }
        let enders: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|&i| i == EOS || vocab.texts[i].as_deref() == Some(" "))
            .collect();
        Some(if !enders.is_empty() && self.below(2) == 0 {
            enders[self.below(enders.len())]
        } else {
            allowed[self.below(allowed.len())]
        })
    }
}
